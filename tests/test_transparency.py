"""Transparency: the frameworks' own tests and public behaviour, with the agent and without.

Each test runs the same thing twice in fresh processes, plain and under
``AUTOLOG=1`` (the store in a temporary folder), and fails when any outcome
differs: per-test outcomes from pytest's JUnit XML for scikit-learn's own test
suite (shipped in its wheel) and for XGBoost's shipped checks
(``xgboost.testing``, the bodies of XGBoost's own tests); the exact output, exit
status and stderr of a PyTorch script that exercises its public behaviour.

The CI share is small (see docs/reliability.md). The full version runs more of
each suite, chosen by environment variables:

    TRANSPARENCY_SKLEARN="sklearn.tests sklearn.linear_model sklearn.tree ..." \\
    TRANSPARENCY_XGBOOST=full .venv/bin/python -m pytest -m transparency
"""

from __future__ import annotations

import os
import textwrap
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest
from conftest import clean_env, list_runs, run_python

pytestmark = pytest.mark.transparency

SKLEARN_DEFAULT = "sklearn.tests.test_base"


def _env(agent: bool, store: Path) -> dict[str, str]:
    if not agent:
        return clean_env()
    return clean_env(AUTOLOG="1", AUTOLOG_TRACKING_URI=str(store))


def _outcomes(junit: Path) -> dict[str, str]:
    """``{test id: passed | failed | error | skipped}`` from a JUnit XML report."""
    outcomes = {}
    for case in ElementTree.parse(junit).iter("testcase"):
        kinds = [child.tag for child in case if child.tag in ("failure", "error", "skipped")]
        outcome = {"failure": "failed", "error": "error", "skipped": "skipped"}.get(
            kinds[0] if kinds else "", "passed"
        )
        outcomes[f"{case.get('classname')}::{case.get('name')}"] = outcome
    return outcomes


def _pytest_both_ways(tmp_path: Path, args: list[str]) -> tuple[dict, dict, Path]:
    """Run ``pytest ARGS`` plain and under the agent; return both outcome maps and the store."""
    store = tmp_path / "store"
    results = []
    for agent in (False, True):
        junit = tmp_path / f"{'agent' if agent else 'plain'}.xml"
        result = run_python(
            ["-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={junit}", *args],
            cwd=tmp_path,
            env=_env(agent, store),
            timeout=3600,
        )
        assert result.returncode in (0, 1), result.stdout[-3000:] + result.stderr[-3000:]
        results.append(_outcomes(junit))
    return results[0], results[1], store


def _assert_same(plain: dict[str, str], agent: dict[str, str]) -> None:
    assert plain, "no test ran"
    assert "passed" in plain.values()
    differing = {
        test: (plain.get(test), agent.get(test))
        for test in plain.keys() | agent.keys()
        if plain.get(test) != agent.get(test)
    }
    assert not differing, f"outcomes differ (plain, agent): {differing}"


def test_sklearn_own_test_suite_has_the_same_outcomes(tmp_path: Path) -> None:
    """scikit-learn's own tests (``--pyargs``): every test's outcome as without the agent."""
    modules = os.environ.get("TRANSPARENCY_SKLEARN", SKLEARN_DEFAULT).split()
    plain, agent, store = _pytest_both_ways(tmp_path, ["--pyargs", *modules])
    _assert_same(plain, agent)
    assert list_runs(tmp_path, str(store)), "the agent recorded nothing: it was not on"


XGBOOST_CHECKS = """
import os

import xgboost as xgb
from sklearn.datasets import make_classification
from xgboost.testing import (
    basic_models, callbacks, continuation, intercept, metrics, predict, with_skl,
)

FULL = os.environ.get("TRANSPARENCY_XGBOOST") == "full"


def _binary():
    X, y = make_classification(n_samples=300, n_features=8, random_state=0)
    return xgb.DMatrix(X[:200], y[:200]), xgb.DMatrix(X[200:], y[200:])


def test_eta_decay():
    callbacks.run_eta_decay("hist", *_binary(), "cpu")


def test_custom_objective():
    basic_models.run_custom_objective("hist", "cpu", *_binary())


def test_boost_from_prediction():
    X, y = make_classification(n_samples=300, n_features=8, random_state=0)
    with_skl.run_boost_from_prediction_binary("hist", "cpu", X, y, None)


def test_exp_family():
    intercept.run_exp_family("cpu")


def test_logistic_degenerate():
    intercept.run_logistic_degenerate("cpu")


def test_base_margin_vs_base_score():
    predict.run_base_margin_vs_base_score("cpu")


def test_roc_auc_binary():
    metrics.run_roc_auc_binary("hist", 100, "cpu")


def test_pr_auc_binary():
    metrics.run_pr_auc_binary("hist", "cpu")


if FULL:
    def test_recoding():
        with_skl.run_recoding("cpu")

    def test_training_continuation():
        continuation.run_training_continuation_model_output("cpu", "hist")

    def test_intercept():
        with_skl.run_intercept("cpu")

    def test_init_estimation():
        intercept.run_init_estimation("hist", "cpu")

    def test_adaptive():
        intercept.run_adaptive("hist", True, "cpu")

    def test_predict_leaf():
        predict.run_predict_leaf("cpu", xgb.DMatrix)

    def test_roc_auc_multi():
        metrics.run_roc_auc_multi("hist", 100, 3, "cpu")
"""


def test_xgboost_shipped_checks_have_the_same_outcomes(tmp_path: Path) -> None:
    """XGBoost's own test bodies (``xgboost.testing``) pass and fail as without the agent."""
    (tmp_path / "test_xgboost_checks.py").write_text(textwrap.dedent(XGBOOST_CHECKS))
    plain, agent, store = _pytest_both_ways(tmp_path, ["test_xgboost_checks.py"])
    _assert_same(plain, agent)
    assert set(plain.values()) == {"passed"}
    assert list_runs(tmp_path, str(store)), "the agent recorded nothing: it was not on"


TORCH_BEHAVIOUR = """
import copy
import inspect
import io
import pickle
import sys
import warnings

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)
torch.set_num_threads(1)
X = torch.randn(256, 10)
y = (X[:, 0] + 0.5 * X[:, 1] > 0).long()
loader = DataLoader(TensorDataset(X, y), batch_size=32, shuffle=True, num_workers=2,
                    generator=torch.Generator().manual_seed(0))


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(10, 16), nn.ReLU(), nn.Dropout(0.1), nn.Linear(16, 2))

    def forward(self, x, scale: float = 1.0):
        return self.body(x) * scale


def record_shape(module, args, out):
    seen.append(tuple(out.shape))


model = Net()
seen = []
model.body[0].register_forward_hook(record_shape)
optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.5)
loss_fn = nn.CrossEntropyLoss()
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    for epoch in range(4):
        total = 0.0
        for xb, yb in loader:
            optimizer.zero_grad()
            loss = loss_fn(model(xb), yb)
            loss.backward()
            optimizer.step()
            total += loss.item()
        scheduler.step()
        print("epoch", epoch, repr(total), scheduler.get_last_lr())
print("warnings", [str(w.message) for w in caught])
print("hook calls", len(seen), seen[0])

model.eval()
with torch.no_grad():
    logits = model(X)
print("accuracy", repr((logits.argmax(1) == y).float().mean().item()))
print("signature", inspect.signature(model.forward))
print("repr", repr(model).replace("\\n", " "))
buffer = io.BytesIO()
torch.save(model.state_dict(), buffer)
buffer.seek(0)
restored = Net()
restored.load_state_dict(torch.load(buffer))
restored.eval()
print("reloaded equal", torch.equal(restored(X), logits))
print("pickle equal", torch.equal(pickle.loads(pickle.dumps(model))(X), logits))
print("deepcopy equal", torch.equal(copy.deepcopy(model)(X), logits))
print("optimizer state", sorted(optimizer.state_dict()))
try:
    model(torch.randn(3, 7))
except RuntimeError as error:
    print("error", type(error).__name__, str(error).splitlines()[0])
print("grad mode", torch.is_grad_enabled())
sys.exit(3)
"""


def test_torch_public_behaviour_is_unchanged(tmp_path: Path) -> None:
    """A PyTorch training script: same output to the bit, same stderr, same exit status."""
    script = tmp_path / "torch_behaviour.py"
    script.write_text(TORCH_BEHAVIOUR)
    store = tmp_path / "store"
    plain = run_python([str(script)], cwd=tmp_path, env=_env(False, store))
    agent = run_python([str(script)], cwd=tmp_path, env=_env(True, store))
    assert plain.returncode == 3, plain.stderr
    assert "epoch 3" in plain.stdout
    assert (agent.returncode, agent.stdout, agent.stderr) == (
        plain.returncode,
        plain.stdout,
        plain.stderr,
    )
    assert list_runs(tmp_path, str(store)), "the agent recorded nothing: it was not on"
