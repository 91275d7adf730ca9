"""Case ``torch_loop``: what autologging costs a plain PyTorch training loop, per step.

A loop of small steps (a 20-64-2 MLP, batches of 16, one thread) is where the
agent's per-step hooks weigh most: keeping the loss of ``backward()``, counting
the optimizer's step, watching the learning rate. The child times the loop alone
(``loop_s``) plain and under ``python -m autologagent``; the row gives the median
ratio and the overhead per step in microseconds. MLflow logs nothing for a plain
loop, so there is no MLflow column.

The scalar loop (``micro_s``) measures the hooks' cost per step, in the steady
state: it starts ``SETTLE_S`` after the child started, in both variants, once the
agent's one-time work for a new run (its start, then git's facts two seconds in,
about 60 ms of GIL time in all) is behind it. That one-time work stays in the
MLP loop's figure.

This module is also the child: ``python case_torch.py child EPOCHS`` runs the
loop and prints ``{"loop_s": ..., "steps": ..., "micro_s": ...}``;
``python case_torch.py micro STEPS`` runs only that many scalar steps (for
``case_torch_instructions``).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _harness import (
    AGENT,
    BASELINE,
    REPORT,
    RUN_DIR,
    Case,
    CaseResult,
    Context,
    Row,
    Variant,
    agent_activation_error,
    cell,
    fmt_ms,
    verdict,
)

ROWS, BATCH = 2048, 16  # 128 steps per epoch
EPOCHS, QUICK_EPOCHS = 20, 5
RATIO_TARGET = 1.05
MICRO_STEPS = 20_000
SETTLE_S = 3.5
_STARTED = time.perf_counter()


def _scalar_loop() -> Callable[[int], tuple[float, float]]:
    """The smallest step there is (one scalar weight): what is left is mostly the hooks.

    Returns a function that runs that many steps and returns their wall time and
    the training thread's CPU time: on a shared VM the wall time also counts what
    other machines' load took from this one.
    """
    import torch

    torch.set_num_threads(1)
    weight = torch.zeros((), requires_grad=True)
    tiny = torch.optim.SGD([weight], lr=0.01)

    def run(steps: int) -> tuple[float, float]:
        start, cpu_start = time.perf_counter(), time.thread_time()
        for _ in range(steps):
            tiny.zero_grad()
            (weight * 2.0 - 1.0).abs().backward()
            tiny.step()
        return time.perf_counter() - start, time.thread_time() - cpu_start

    return run


def _scalar_steps(steps: int) -> tuple[float, float]:
    return _scalar_loop()(steps)


def _blocks(steps: int, loop: str) -> None:
    """The ``loop`` (``scalar`` or ``mlp``) in blocks of ``steps``, one per ``go`` line
    on stdin, each block's wall time printed (for ``_interleaved_steps``)."""
    run = _mlp_loop() if loop == "mlp" else _scalar_loop()
    run(500)
    print("ready", flush=True)
    for line in sys.stdin:
        if line.strip() != "go":
            break
        print(run(steps)[0], flush=True)


def _mlp() -> tuple[Any, Any, Any, Any, Any]:
    """The tiny model of ``torch_loop``: data ``X``, ``y``, model, optimizer, loss function."""
    import torch
    from torch import nn

    torch.set_num_threads(1)
    torch.manual_seed(0)
    X = torch.randn(ROWS, 20)
    y = (X[:, :5].sum(dim=1) > 0).long()
    model = nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 2))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    return X, y, model, optimizer, nn.CrossEntropyLoss()


def _mlp_loop() -> Callable[[int], tuple[float, float]]:
    """The tiny model's step on one batch of ``BATCH`` rows, data loading left out: the
    issue's "loop's own step about 100 µs". Returns a function as ``_scalar_loop`` does."""
    X, y, model, optimizer, loss_fn = _mlp()
    xb, yb = X[:BATCH], y[:BATCH]

    def run(steps: int) -> tuple[float, float]:
        start, cpu_start = time.perf_counter(), time.thread_time()
        for _ in range(steps):
            optimizer.zero_grad()
            loss_fn(model(xb), yb).backward()
            optimizer.step()
        return time.perf_counter() - start, time.thread_time() - cpu_start

    return run


def _child(epochs: int) -> None:
    """The timed loop: what a user's script does, without any logging code."""
    from torch.utils.data import DataLoader, TensorDataset

    X, y, model, optimizer, loss_fn = _mlp()
    loader = DataLoader(TensorDataset(X, y), batch_size=BATCH, shuffle=True)
    steps = 0
    start = time.perf_counter()
    for _epoch in range(epochs):
        for xb, yb in loader:
            optimizer.zero_grad()
            loss = loss_fn(model(xb), yb)
            loss.backward()
            optimizer.step()
            steps += 1
    loop_s = time.perf_counter() - start
    time.sleep(max(0.0, SETTLE_S - (time.perf_counter() - _STARTED)))
    micro_s, micro_cpu_s = _scalar_steps(MICRO_STEPS)
    print(
        json.dumps(
            {"loop_s": loop_s, "steps": steps, "micro_s": micro_s, "micro_cpu_s": micro_cpu_s}
        )
    )


def variants(ctx: Context) -> list[Variant]:
    """Plain, then under the command door; the same loop, the same epochs."""
    epochs = str(QUICK_EPOCHS if ctx.quick else EPOCHS)
    argv = [__file__, "child", epochs]
    warmup = [__file__, "child", "1"]
    env = {"AUTOLOG_TRACKING_URI": f"{RUN_DIR}/autologruns"}
    return [
        Variant(BASELINE, [ctx.python, *argv], warmup_argv=[ctx.python, *warmup]),
        Variant(
            AGENT,
            [ctx.python, "-m", "autologagent", *argv],
            env=env,
            warmup_argv=[ctx.python, "-m", "autologagent", *warmup],
        ),
    ]


def check(ctx: Context) -> str | None:
    """The agent activates, and torch imports in its interpreter."""
    import subprocess

    error = agent_activation_error(ctx)
    if error:
        return error
    proc = subprocess.run(
        [ctx.python, "-c", "import torch"], capture_output=True, timeout=120, check=False
    )
    return None if proc.returncode == 0 else f"torch not installed in {ctx.python}"


def evaluate(outcome: CaseResult, ctx: Context) -> list[Row]:
    """Median loop time, agent against baseline, and the difference per step.

    The scalar loop's row is information only: its two processes run one after
    the other, and here the VM's speed drifts between them by more than the hooks
    cost; ``torch_steps_scalar`` times the same loop in turns and gives the verdict.
    """
    b = outcome.get(BASELINE).summary("loop_s")
    a = outcome.get(AGENT).summary("loop_s")
    steps = outcome.get(BASELINE).summary("steps").median
    ratio = a.median / b.median
    per_step_us = (a.median - b.median) / steps * 1e6
    mb = outcome.get(BASELINE).summary("micro_s")
    ma = outcome.get(AGENT).summary("micro_s")
    micro_us = (ma.median - mb.median) / MICRO_STEPS * 1e6
    micro_min_us = (ma.min - mb.min) / MICRO_STEPS * 1e6
    micro_ratio = ma.median / mb.median
    plain_rate, agent_rate = MICRO_STEPS / mb.median, MICRO_STEPS / ma.median
    return [
        Row(
            f"torch_loop ({steps:,.0f} steps, loop time)",
            cell(b, fmt_ms),
            cell(a, fmt_ms),
            f"×{ratio:.3f} ({per_step_us:+.1f} µs/step)",
            "— (MLflow logs nothing for a plain loop)",
            f"≤ ×{RATIO_TARGET} (median ratio)",
            verdict(ratio <= RATIO_TARGET),
        ),
        Row(
            f"torch_loop hooks ({MICRO_STEPS:,} scalar steps)",
            cell(mb, fmt_ms),
            cell(ma, fmt_ms),
            f"×{micro_ratio:.3f}, {micro_us:+.1f} µs/step (min: {micro_min_us:+.1f}); "
            f"{plain_rate:,.0f} against {agent_rate:,.0f} steps/s",
            "—",
            "— (information: one process after the other, see torch_steps_scalar)",
            "—",
        ),
    ]


INTERLEAVED = str(Path(__file__).with_name("_interleaved_steps.py"))
SETS, QUICK_SETS, ROUNDS, BLOCK_STEPS = 8, 3, 24, 1000


LOOPS = {
    "mlp": "the tiny model's step (the 20-64-2 MLP, one batch of 16, no data loading)",
    "scalar": "the scalar SGD step (the hooks alone)",
}


def interleaved_variants(kind: str) -> Callable[[Context], list[Variant]]:
    """One driver runs both: the plain and the agent processes take turns."""

    def make(ctx: Context) -> list[Variant]:
        sets = str(QUICK_SETS if ctx.quick else SETS)
        argv = [ctx.python, INTERLEAVED, sets, str(ROUNDS), str(BLOCK_STEPS), ctx.python]
        env = {"AUTOLOG_TRACKING_URI": f"{RUN_DIR}/autologruns"}
        return [Variant(AGENT, [*argv, __file__, kind], env=env)]

    return make


def interleaved_evaluate(kind: str) -> Callable[[CaseResult, Context], list[Row]]:
    """The median paired difference per step, and the ratio it makes to the plain step."""

    def evaluate(outcome: CaseResult, ctx: Context) -> list[Row]:
        result = outcome.get(AGENT)
        plain = result.summary("plain_us").median
        agent = result.summary("agent_us").median
        diff = result.summary("diff_us").median
        low, high = result.summary("diff_min_us").median, result.summary("diff_max_us").median
        ratio = (plain + diff) / plain
        return [
            Row(
                f"{_interleaved_name(kind)} ({LOOPS[kind]}, {BLOCK_STEPS:,}-step blocks in turns)",
                f"{plain:.1f} µs/step ({1e6 / plain:,.0f} steps/s)",
                f"{agent:.1f} µs/step ({1e6 / agent:,.0f} steps/s)",
                f"×{ratio:.3f} ({diff:+.1f} µs/step; sets from {low:+.1f} to {high:+.1f})",
                "— (MLflow logs nothing for a plain loop)",
                f"≤ ×{RATIO_TARGET} (median paired difference)",
                verdict(ratio <= RATIO_TARGET),
            )
        ]

    return evaluate


def _interleaved_name(kind: str) -> str:
    return "torch_steps" if kind == "mlp" else f"torch_steps_{kind}"


def _interleaved_case(kind: str, target: str) -> Case:
    return Case(
        name=_interleaved_name(kind),
        description=(
            f"{LOOPS[kind][0].upper()}{LOOPS[kind][1:]}, in blocks of {BLOCK_STEPS:,} steps "
            f"(`case_torch.py blocks {BLOCK_STEPS} {kind}`), a plain process and one under "
            f"`python -m autologagent` taking turns, {ROUNDS} blocks each, in {SETS} sets of "
            f"new processes ({QUICK_SETS} with --quick), by `benchmarks/_interleaved_steps.py`. "
            "Overhead per step = the median over the sets of each set's median paired "
            "difference; the ratio is to the plain step."
        ),
        target=target,
        variants=interleaved_variants(kind),
        evaluate=interleaved_evaluate(kind),
        measure=REPORT,
        runs=1,
        quick_runs=1,
        warmup=0,
        timeout_s=900,
        check=check,
        required=(AGENT,),
    )


CASES = [
    _interleaved_case("mlp", f"≤ ×{RATIO_TARGET} (the issue's tiny model, a ~100 µs step)"),
    _interleaved_case("scalar", f"≤ ×{RATIO_TARGET} (stricter than the issue: a smaller step)"),
    Case(
        name="torch_loop",
        description=(
            f"A plain PyTorch loop (`benchmarks/case_torch.py child`): a 20-64-2 MLP, SGD "
            f"with momentum, {ROWS} rows in batches of {BATCH} from a DataLoader, "
            f"{EPOCHS} epochs ({QUICK_EPOCHS} with --quick), one torch thread. The child "
            "times the loop alone (`loop_s`), plain and under `python -m autologagent`, "
            "which logs the optimizer's params, `train_loss` per step, `lr`, and the "
            "epochs. Overhead per step = difference of the medians / steps. Then "
            f"{MICRO_STEPS:,} steps of SGD on one scalar weight (`micro_s`), started "
            f"{SETTLE_S} s into the process (after the agent's one-time work for the run): "
            "the step itself costs little, so the difference per step is the hooks' own cost."
        ),
        target=f"≤ ×{RATIO_TARGET} on the loop and on the hooks alone (median ratios)",
        variants=variants,
        evaluate=evaluate,
        measure=REPORT,
        runs=7,
        quick_runs=3,
        warmup=1,
        timeout_s=600,
        check=check,
    ),
]


if __name__ == "__main__" and len(sys.argv) > 2 and sys.argv[1] == "child":
    _child(int(sys.argv[2]))
elif __name__ == "__main__" and len(sys.argv) > 2 and sys.argv[1] == "micro":
    _scalar_steps(int(sys.argv[2]))
elif __name__ == "__main__" and len(sys.argv) > 2 and sys.argv[1] == "blocks":
    _blocks(int(sys.argv[2]), sys.argv[3] if len(sys.argv) > 3 else "scalar")
