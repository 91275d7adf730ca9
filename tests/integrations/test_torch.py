"""PyTorch plain loops, autologged from the calls every loop makes, in real processes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import WORKLOADS, clean_env, cli, list_runs, run_python, show_run, write_script

pytest.importorskip("torch")

LOOP = """
import json, sys
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)
X = torch.randn(128, 8)
y = (X[:, :3].sum(dim=1) > 0).long()
loader = DataLoader(TensorDataset(X, y), batch_size=16, shuffle=True, num_workers=WORKERS)
model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2))
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
loss_fn = nn.CrossEntropyLoss()
LOSSES = []
if __name__ == "__main__":
    for epoch in range(3):
        for xb, yb in loader:
            optimizer.zero_grad()
            loss = loss_fn(model(xb), yb)
            loss.backward()
            optimizer.step()
            LOSSES.append(loss.item())
            if len(LOSSES) == FAIL_AT:
                raise RuntimeError("diverged")
        scheduler.step()
    json.dump(LOSSES, open("losses.json", "w"))
"""


def _autolog_env(**extra: str) -> dict[str, str]:
    return clean_env(AUTOLOG="1", AUTOLOG_TESTING="1", AUTOLOG_SYSTEM_METRICS="false", **extra)


def _history(workdir: Path, run_id: str, key: str) -> list[dict[str, Any]]:
    return cli(workdir, "runs", "history", run_id, key)


def _loop(workdir: Path, workers: int = 0, fail_at: int = -1) -> Path:
    source = LOOP.replace("WORKERS", str(workers)).replace("FAIL_AT", str(fail_at))
    return write_script(workdir, "loop.py", source)


def test_workload_logs_optimizer_params_losses_epochs_and_checkpoint(workdir: Path) -> None:
    """The shared workload: SGD's params, 48 loss points equal to the script's own losses,
    3 epochs with their mean loss, the checkpoint and the model summary; output unchanged."""
    source = (WORKLOADS / "torch_loop.py").read_text()
    step_line = "        optimizer.step()\n"
    assert step_line in source
    source = source.replace(step_line, step_line + "        LOSSES.append(loss.item())\n")
    source = source.replace("epochs = int(", "LOSSES = []\nepochs = int(", 1)
    source += "\nimport json\njson.dump(LOSSES, open('losses.json', 'w'))\n"
    script = write_script(workdir, "torch_loop.py", source)
    plain = run_python([str(script)], cwd=workdir, check=True)
    expected = json.loads((workdir / "losses.json").read_text())
    logged = run_python([str(script)], cwd=workdir, env=_autolog_env(), check=True)
    assert logged.stdout == plain.stdout
    assert json.loads((workdir / "losses.json").read_text()) == expected

    runs = list_runs(workdir)
    assert [run["name"] for run in runs] == ["torch_loop.py"]
    run = show_run(workdir)
    assert run["status"] == "FINISHED"
    params = run["params"]
    assert params["optimizer_name"] == "SGD"
    assert params["lr"] == "0.05" and params["momentum"] == "0.9"
    assert params["weight_decay"] == "0"
    assert params["num_params"] == str(20 * 64 + 64 + 64 * 2 + 2)
    points = _history(workdir, run["run_id"], "train_loss")
    assert [point["step"] for point in points] == list(range(48))
    assert [point["value"] for point in points] == expected
    epochs = _history(workdir, run["run_id"], "epoch")
    assert [(point["step"], point["value"]) for point in epochs] == [(0, 0), (1, 1), (2, 2)]
    means = [point["value"] for point in _history(workdir, run["run_id"], "train_loss_epoch")]
    assert means == pytest.approx([sum(expected[i : i + 16]) / 16 for i in (0, 16, 32)])
    assert [point["value"] for point in _history(workdir, run["run_id"], "lr")] == [0.05]
    assert {"model.pt", "model_summary.txt"} <= set(run["artifacts"])
    artifacts = workdir / "autologruns" / "artifacts" / run["run_id"]
    assert (artifacts / "model.pt").read_bytes() == (workdir / "model.pt").read_bytes()
    summary = (artifacts / "model_summary.txt").read_text()
    assert "Linear(in_features=20, out_features=64, bias=True)" in summary


def test_scheduler_changes_the_logged_learning_rate_and_sampling(workdir: Path) -> None:
    """StepLR halves the lr each epoch: three lr points; every 4th step's loss is kept."""
    script = _loop(workdir)
    run_python(
        [str(script)], cwd=workdir, env=_autolog_env(AUTOLOG_LOG_EVERY_N_STEPS="4"), check=True
    )
    run = show_run(workdir)
    lrs = _history(workdir, run["run_id"], "lr")
    assert [(point["step"], point["value"]) for point in lrs] == [(0, 0.1), (8, 0.05), (16, 0.025)]
    expected = json.loads((workdir / "losses.json").read_text())
    points = _history(workdir, run["run_id"], "train_loss")
    assert [point["step"] for point in points] == list(range(0, 24, 4))
    assert [point["value"] for point in points] == expected[::4]
    means = [point["value"] for point in _history(workdir, run["run_id"], "train_loss_epoch")]
    assert means == pytest.approx([sum(expected[i : i + 8]) / 8 for i in (0, 8, 16)])


def test_dataloader_workers_make_no_runs(workdir: Path) -> None:
    """num_workers=2 (forked workers): one run, with every step of the parent's loop."""
    script = _loop(workdir, workers=2)
    run_python([str(script)], cwd=workdir, env=_autolog_env(), check=True)
    runs = list_runs(workdir)
    assert len(runs) == 1
    points = _history(workdir, runs[0]["run_id"], "train_loss")
    assert [point["step"] for point in points] == list(range(24))
    assert len(_history(workdir, runs[0]["run_id"], "epoch")) == 3


def test_failing_loop_ends_failed_with_every_step_so_far(workdir: Path) -> None:
    """An uncaught exception mid-epoch: FAILED, its class and message as tags, 11 points kept,
    and the same exit status and traceback as without the agent."""
    script = _loop(workdir, fail_at=11)
    plain = run_python([str(script)], cwd=workdir)
    logged = run_python([str(script)], cwd=workdir, env=_autolog_env())
    assert logged.returncode == plain.returncode == 1
    assert logged.stderr.splitlines()[-1] == "RuntimeError: diverged"
    assert "autologagent" not in logged.stderr
    run = show_run(workdir)
    assert run["status"] == "FAILED"
    assert run["tags"]["autolog.exception_class"] == "RuntimeError"
    points = _history(workdir, run["run_id"], "train_loss")
    assert [point["step"] for point in points] == list(range(11))


def test_backward_error_passes_through_untouched(workdir: Path) -> None:
    """backward() on a tensor without grad raises torch's own error, with no agent frame."""
    script = write_script(
        workdir,
        "bad.py",
        """
        import torch
        try:
            torch.zeros(()).backward()
        except RuntimeError as exc:
            import traceback
            print(type(exc).__name__, "".join(traceback.format_tb(exc.__traceback__)))
        """,
    )
    plain = run_python([str(script)], cwd=workdir, check=True)
    logged = run_python([str(script)], cwd=workdir, env=_autolog_env(), check=True)
    assert logged.stdout == plain.stdout
    assert list_runs(workdir) == []


def test_disabled_torch_logs_nothing(workdir: Path) -> None:
    """AUTOLOG_DISABLE=torch leaves the loop alone: no run at all."""
    script = _loop(workdir)
    run_python([str(script)], cwd=workdir, env=_autolog_env(AUTOLOG_DISABLE="torch"), check=True)
    assert list_runs(workdir) == []


def test_loop_inside_the_users_run_logs_there(workdir: Path) -> None:
    """Under ``start_run``, the loop's records go to the user's run: no process run."""
    script = write_script(
        workdir,
        "mine.py",
        """
        import torch
        import autologagent
        w = torch.zeros(3, requires_grad=True)
        with autologagent.start_run(run_name="mine"):
            optimizer = torch.optim.Adam([w], lr=0.01)
            for _ in range(4):
                optimizer.zero_grad()
                loss = (w - 1.0).pow(2).sum()
                loss.backward()
                optimizer.step()
        """,
    )
    run_python([str(script)], cwd=workdir, env=_autolog_env(), check=True)
    runs = list_runs(workdir)
    assert [run["name"] for run in runs] == ["mine"]
    run = show_run(workdir)
    assert run["params"]["optimizer_name"] == "Adam" and run["params"]["num_params"] == "3"
    points = _history(workdir, run["run_id"], "train_loss")
    assert [point["step"] for point in points] == [0, 1, 2, 3]
    assert points[0]["value"] == 3.0


def test_gradient_accumulation_logs_the_mean_of_each_steps_losses(workdir: Path) -> None:
    """Two backward() per optimizer step: the step's ``train_loss`` is their mean.

    One of the two is a float64 loss, so the step mixes dtypes as real code can.
    """
    script = write_script(
        workdir,
        "accumulate.py",
        """
        import json
        import torch
        torch.manual_seed(0)
        w = torch.randn(4, requires_grad=True)
        optimizer = torch.optim.SGD([w], lr=0.05)
        means = []
        for step in range(5):
            optimizer.zero_grad()
            first = (w - 1.0).pow(2).sum()
            first.backward()
            second = (w.double() + 0.5).abs().sum()
            second.backward()
            optimizer.step()
            means.append((first.item() + second.item()) / 2)
        json.dump(means, open("means.json", "w"))
        """,
    )
    run_python([str(script)], cwd=workdir, env=_autolog_env(), check=True)
    run = show_run(workdir)
    points = _history(workdir, run["run_id"], "train_loss")
    expected = json.loads((workdir / "means.json").read_text())
    assert [point["step"] for point in points] == [0, 1, 2, 3, 4]
    assert [point["value"] for point in points] == pytest.approx(expected, rel=1e-6)


def test_epochs_are_the_training_loaders_even_with_a_validation_loader(workdir: Path) -> None:
    """Each epoch iterates the training loader, then a validation loader with no optimizer
    step: two epochs (the last one ended at exit), each with the mean of its own losses."""
    script = write_script(
        workdir,
        "validate.py",
        """
        import json
        import torch
        from torch import nn
        from torch.utils.data import DataLoader, TensorDataset
        torch.manual_seed(0)
        X, y = torch.randn(64, 4), torch.randn(64, 1)
        train = DataLoader(TensorDataset(X[:48], y[:48]), batch_size=8)
        validation = DataLoader(TensorDataset(X[48:], y[48:]), batch_size=8)
        model = nn.Linear(4, 1)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
        losses = []
        for epoch in range(2):
            epoch_losses = []
            for xb, yb in train:
                optimizer.zero_grad()
                loss = nn.functional.mse_loss(model(xb), yb)
                loss.backward()
                optimizer.step()
                epoch_losses.append(loss.item())
            losses.append(epoch_losses)
            with torch.no_grad():
                for xb, yb in validation:
                    model(xb)
        json.dump(losses, open("losses.json", "w"))
        """,
    )
    run_python([str(script)], cwd=workdir, env=_autolog_env(), check=True)
    run = show_run(workdir)
    losses = json.loads((workdir / "losses.json").read_text())
    epochs = _history(workdir, run["run_id"], "epoch")
    assert [(point["step"], point["value"]) for point in epochs] == [(0, 0.0), (1, 1.0)]
    means = _history(workdir, run["run_id"], "train_loss_epoch")
    assert [point["step"] for point in means] == [0, 1]
    assert [point["value"] for point in means] == pytest.approx([sum(e) / 6 for e in losses])
    points = _history(workdir, run["run_id"], "train_loss")
    assert [point["value"] for point in points] == pytest.approx(losses[0] + losses[1])


def test_learning_rates_set_by_hand_or_by_a_plateau_scheduler_are_logged(workdir: Path) -> None:
    """A rate set by hand is seen at the next conversion (the loop pauses 1.5 s after
    setting it, so one is due): logged at the step that used it. ReduceLROnPlateau's
    own ``step()`` is followed: its cut is logged at the next step. The loss points'
    times (read once a conversion, spread over its steps) are in order, within the run."""
    script = write_script(
        workdir,
        "rates.py",
        """
        import time
        import torch
        w = torch.zeros(2, requires_grad=True)
        optimizer = torch.optim.SGD([w], lr=0.1)
        plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.5, patience=0)
        for step in range(12):
            if step == 4:
                for group in optimizer.param_groups:
                    group["lr"] = 0.2
                time.sleep(1.5)
            optimizer.zero_grad()
            (w - 1.0).pow(2).sum().backward()
            optimizer.step()
            if step == 8:
                plateau.step(1.0)
                plateau.step(1.0)  # no better: the rate is halved
        """,
    )
    run_python([str(script)], cwd=workdir, env=_autolog_env(), check=True)
    run = show_run(workdir)
    lrs = _history(workdir, run["run_id"], "lr")
    assert [(point["step"], point["value"]) for point in lrs] == [(0, 0.1), (4, 0.2), (9, 0.1)]
    points = _history(workdir, run["run_id"], "train_loss")
    assert [point["step"] for point in points] == list(range(12))
    times = [point["timestamp"] for point in points]
    assert times == sorted(times)
    assert run["start_time"] <= times[0] and times[-1] <= run["end_time"]
    assert times[-1] - times[0] >= 1000  # the pause (stamps are exact to a second)


def test_scheduler_step_returns_and_raises_as_without_the_agent(workdir: Path) -> None:
    """The patched ``step()`` of a scheduler: the same return value, and the same
    exception with the same traceback (no agent frame) for a bad call."""
    script = write_script(
        workdir,
        "sched.py",
        """
        import traceback
        import torch
        w = torch.zeros(2, requires_grad=True)
        optimizer = torch.optim.SGD([w], lr=0.1)
        step_lr = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
        plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer)
        print(step_lr.step(), step_lr.get_last_lr())
        try:
            plateau.step()  # the metric is missing
        except TypeError as exc:
            print(type(exc).__name__, exc, "".join(traceback.format_tb(exc.__traceback__)))
        """,
    )
    plain = run_python([str(script)], cwd=workdir, check=True)
    logged = run_python([str(script)], cwd=workdir, env=_autolog_env(), check=True)
    assert logged.stdout == plain.stdout
    assert "TypeError" in plain.stdout and "autologagent" not in logged.stdout
