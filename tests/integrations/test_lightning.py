"""Lightning: ``Trainer.fit`` as a training call, in real processes, from both packages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import clean_env, cli, list_runs, run_python, show_run, write_script

MODEL = """
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
import PACKAGE as L

class Model(L.LightningModule):
    def __init__(self, hidden=16, lr=0.1):
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Sequential(nn.Linear(8, hidden), nn.ReLU(), nn.Linear(hidden, 2))

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = nn.functional.cross_entropy(self.net(x), y)
        self.log("train_loss", loss, on_step=True, on_epoch=True)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", nn.functional.cross_entropy(self.net(x), y))

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)

torch.manual_seed(0)
X = torch.randn(128, 8)
y = (X[:, :3].sum(1) > 0).long()
train = DataLoader(TensorDataset(X, y), batch_size=16)
val = DataLoader(TensorDataset(X[:32], y[:32]), batch_size=16)
trainer = L.Trainer(
    max_epochs=3, logger=False, enable_progress_bar=False, enable_model_summary=False,
)
trainer.fit(Model(), train, val)
print("callbacks", len(trainer.callbacks))
"""


def _history(workdir: Path, run_id: str, key: str) -> list[dict[str, Any]]:
    return cli(workdir, "runs", "history", run_id, key)


@pytest.mark.parametrize("package", ["lightning.pytorch", "pytorch_lightning"])
def test_fit_makes_one_run_with_hparams_metrics_summary_and_checkpoint(
    workdir: Path, package: str
) -> None:
    """One run per fit: hparams, Adam's params, the step and epoch series of ``self.log``,
    the summary and the best checkpoint; the plain-loop hooks log nothing inside fit."""
    pytest.importorskip(package)
    script = write_script(workdir, "fit.py", MODEL.replace("PACKAGE", package))
    (workdir / "plain").mkdir()
    plain = run_python([str(script)], cwd=workdir / "plain", check=True)
    env = clean_env(AUTOLOG="1", AUTOLOG_TESTING="1", AUTOLOG_SYSTEM_METRICS="false")
    logged = run_python([str(script)], cwd=workdir, env=env, check=True)
    assert logged.stdout == plain.stdout  # the agent's callback is gone after fit
    runs = list_runs(workdir)
    assert [run["name"] for run in runs] == ["Model"]
    run = show_run(workdir)
    assert run["status"] == "FINISHED"
    assert run["tags"]["autolog.integration"] == "lightning"
    params = run["params"]
    assert params["hidden"] == "16" and params["lr"] == "0.1" and params["epochs"] == "3"
    assert params["optimizer_name"] == "Adam" and params["betas"] == "(0.9, 0.999)"
    steps = _history(workdir, run["run_id"], "train_loss_step")
    assert [point["step"] for point in steps] == list(range(1, 25))
    epochs = _history(workdir, run["run_id"], "train_loss_epoch")
    assert [point["step"] for point in epochs] == [0, 1, 2]
    for epoch, point in enumerate(epochs):
        own = [p["value"] for p in steps[epoch * 8 : epoch * 8 + 8]]
        assert point["value"] == pytest.approx(sum(own) / 8, rel=1e-5)
    assert [point["step"] for point in _history(workdir, run["run_id"], "val_loss")] == [0, 1, 2]
    assert "epoch" not in run["metrics"] and "lr" not in run["metrics"]  # plain-loop hooks
    assert "model_summary.txt" in run["artifacts"]
    assert "checkpoints/epoch=2-step=24.ckpt" in run["artifacts"]
