"""XGBoost: the native API and the scikit-learn wrappers, trained in real processes."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

from conftest import WORKLOADS, clean_env, cli, list_runs, run_python, show_run, write_script

DATA = """
import json
import xgboost as xgb
from sklearn.datasets import make_classification
X, y = make_classification(
    n_samples=240, n_features=6, n_informative=4, n_classes=3, random_state=0
)
X_train, X_val, y_train, y_val = X[:160], X[160:], y[:160], y[160:]
"""
IMPORTANCE_TYPES = ("weight", "gain", "cover", "total_gain", "total_cover")


def _autolog_env(**extra: str) -> dict[str, str]:
    return clean_env(AUTOLOG="1", AUTOLOG_TESTING="1", **extra)


def _history(workdir: Path, run_id: str, key: str) -> list[dict[str, Any]]:
    return cli(workdir, "runs", "history", run_id, key)


def _inputs(workdir: Path, run_id: str) -> list[tuple[str, str, str]]:
    database = workdir / "autologruns" / "runs.db"
    with closing(sqlite3.connect(database)) as connection:
        rows = connection.execute(
            "SELECT name, context, profile FROM inputs WHERE run_id = ? ORDER BY context DESC",
            (run_id,),
        ).fetchall()
    return [tuple(row) for row in rows]


def test_native_workload_logs_series_importance_data_and_a_loadable_booster(
    workdir: Path,
) -> None:
    """The shared workload: one run, 20 points per series equal to XGBoost's own evals_result,
    every importance type, the DMatrix inputs, and a booster that loads back in a fresh process."""
    source = (WORKLOADS / "xgboost_native.py").read_text()
    call = 'evals=[(dtrain, "train"), (dval, "val")])'
    assert call in source
    source = source.replace(call, 'evals=[(dtrain, "train"), (dval, "val")], evals_result=EVALS)')
    source = source.replace("params = {", "EVALS = {}\nparams = {", 1)
    source += (
        "\nimport json, numpy\n"
        "json.dump(EVALS, open('evals_result.json', 'w'))\n"
        "numpy.save('X_val.npy', X_val)\n"
        "numpy.save('predictions.npy', booster.predict(dval))\n"
    )
    script = write_script(workdir, "xgboost_native.py", source)
    run_python(
        ["-m", "autologagent", str(script)],
        cwd=workdir,
        env=clean_env(AUTOLOG_TESTING="1"),
        check=True,
    )
    runs = list_runs(workdir)
    assert [run["name"] for run in runs] == ["xgboost.train"]
    run = show_run(workdir)
    assert run["status"] == "FINISHED"
    assert run["tags"]["autolog.integration"] == "xgboost"
    params = run["params"]
    assert params["objective"] == "multi:softprob"
    assert params["num_class"] == "3" and params["max_depth"] == "4" and params["eta"] == "0.3"
    assert params["num_boost_round"] == "20"
    assert params["early_stopping_rounds"] == "None"
    evals_result = json.loads((workdir / "evals_result.json").read_text())
    for data in ("train", "val"):
        points = _history(workdir, run["run_id"], f"{data}-mlogloss")
        assert [point["step"] for point in points] == list(range(20))
        assert [point["value"] for point in points] == evals_result[data]["mlogloss"]
    assert "best_iteration" not in run["metrics"]  # no early stopping
    artifacts = set(run["artifacts"])
    for kind in IMPORTANCE_TYPES:
        assert f"feature_importance_{kind}.json" in artifacts
        assert f"feature_importance_{kind}.png" in artifacts
    assert {"model/model.ubj", "model/MLmodel", "model/requirements.txt"} <= artifacts
    folder = workdir / "autologruns" / "artifacts" / run["run_id"]
    gain = json.loads((folder / "feature_importance_gain.json").read_text())
    assert set(gain) <= {f"f{i}" for i in range(20)} and all(v > 0 for v in gain.values())
    assert (folder / "feature_importance_gain.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    mlmodel = json.loads((folder / "model" / "MLmodel").read_text())
    assert mlmodel["flavors"]["xgboost"]["model_class"] == "xgboost.core.Booster"
    assert "xgboost==" in (folder / "model" / "requirements.txt").read_text()
    inputs = _inputs(workdir, run["run_id"])
    assert [(name, context) for name, context, _ in inputs] == [
        ("dtrain", "train"),
        ("val", "eval"),
    ]
    assert json.loads(inputs[0][2])["shape"] == [800, 20]

    check = write_script(
        workdir,
        "reload.py",
        f"""
        import numpy, xgboost
        import autologagent
        booster = autologagent.load_model({run["run_id"]!r})
        assert type(booster) is xgboost.Booster, type(booster)
        predictions = booster.predict(xgboost.DMatrix(numpy.load("X_val.npy")))
        assert numpy.array_equal(predictions, numpy.load("predictions.npy"))
        print("same")
        """,
    )
    assert run_python([str(check)], cwd=workdir, check=True).stdout == "same\n"


def test_early_stopping_keeps_user_callbacks_and_records_the_best_iteration(
    workdir: Path,
) -> None:
    script = write_script(
        workdir,
        "train.py",
        DATA
        + """
calls = []
class Recorder(xgb.callback.TrainingCallback):
    def __init__(self, tag):
        self.tag = tag
    def after_iteration(self, model, epoch, evals_log):
        calls.append([self.tag, epoch])
        return False
callbacks = [Recorder("first"), Recorder("second")]
evals_result = {}
dtrain = xgb.DMatrix(X_train, label=y_train)
dval = xgb.DMatrix(X_val, label=y_val)
params = {"objective": "multi:softprob", "num_class": 3, "eta": 0.9, "max_depth": 6}
booster = xgb.train(params, dtrain, num_boost_round=200, evals=[(dtrain, "train"), (dval, "val")],
                    early_stopping_rounds=3, evals_result=evals_result, callbacks=callbacks,
                    verbose_eval=False)
json.dump({"calls": calls, "evals": evals_result, "best": booster.best_iteration,
           "best_score": booster.best_score, "callbacks": [c.tag for c in callbacks]},
          open("out.json", "w"))
""",
    )
    run_python([str(script)], cwd=workdir, env=_autolog_env(), check=True)
    out = json.loads((workdir / "out.json").read_text())
    rounds = len(out["evals"]["val"]["mlogloss"])
    assert rounds < 200  # early stopping still stops
    assert out["callbacks"] == ["first", "second"]  # the user's list is untouched
    expected_calls = [[tag, epoch] for epoch in range(rounds) for tag in ("first", "second")]
    assert out["calls"] == expected_calls  # called every round, in order
    run = show_run(workdir)
    metrics = run["metrics"]
    assert metrics["best_iteration"] == out["best"]
    assert metrics["stopped_iteration"] == rounds - 1
    assert metrics["best_score"] == out["best_score"]
    assert run["params"]["early_stopping_rounds"] == "3"
    points = _history(workdir, run["run_id"], "val-mlogloss")
    # each round, then the best iteration's value one step after the last (as MLflow)
    assert [p["step"] for p in points] == list(range(rounds + 1))
    assert [p["value"] for p in points[:rounds]] == out["evals"]["val"]["mlogloss"]
    assert points[-1]["value"] == out["evals"]["val"]["mlogloss"][out["best"]]


def test_a_user_callback_that_stops_training_loses_no_round(workdir: Path) -> None:
    """XGBoost skips the later callbacks of the round a callback stops: the agent's
    (the last) catches that round up when training ends."""
    script = write_script(
        workdir,
        "train.py",
        DATA
        + """
class StopAtFive(xgb.callback.TrainingCallback):
    def after_iteration(self, model, epoch, evals_log):
        return epoch == 5
evals_result = {}
dval = xgb.DMatrix(X_val, label=y_val)
xgb.train({"objective": "multi:softprob", "num_class": 3}, xgb.DMatrix(X_train, label=y_train),
          num_boost_round=50, evals=[(dval, "val")], evals_result=evals_result,
          callbacks=[StopAtFive()], verbose_eval=False)
json.dump(evals_result, open("evals.json", "w"))
""",
    )
    run_python([str(script)], cwd=workdir, env=_autolog_env(), check=True)
    expected = json.loads((workdir / "evals.json").read_text())["val"]["mlogloss"]
    assert len(expected) == 6
    points = _history(workdir, show_run(workdir)["run_id"], "val-mlogloss")
    assert [p["value"] for p in points] == expected


def test_sklearn_api_makes_one_run_with_series_metrics_and_the_estimator(workdir: Path) -> None:
    script = write_script(
        workdir,
        "train.py",
        DATA
        + """
import numpy
clf = xgb.XGBClassifier(n_estimators=12, max_depth=3, random_state=0)
clf.fit(X_train, y_train, eval_set=[(X_train, y_train), (X_val, y_val)], verbose=False)
print(clf.score(X_val, y_val))
numpy.save("X_val.npy", X_val)
numpy.save("proba.npy", clf.predict_proba(X_val))
json.dump(clf.evals_result(), open("evals.json", "w"))
""",
    )
    run_python([str(script)], cwd=workdir, env=_autolog_env(), check=True)
    runs = list_runs(workdir)
    assert [run["name"] for run in runs] == ["XGBClassifier"]  # the inner train logs nothing
    run = show_run(workdir)
    assert run["tags"]["estimator_class"] == "xgboost.sklearn.XGBClassifier"
    assert run["tags"]["estimator_name"] == "XGBClassifier"
    assert run["tags"]["autolog.integration"] == "xgboost"
    assert run["params"]["n_estimators"] == "12" and run["params"]["max_depth"] == "3"
    evals = json.loads((workdir / "evals.json").read_text())
    for data in ("validation_0", "validation_1"):
        points = _history(workdir, run["run_id"], f"{data}-mlogloss")
        assert [p["value"] for p in points] == evals[data]["mlogloss"]
        assert [p["step"] for p in points] == list(range(12))
    metrics = run["metrics"]
    assert 0.5 < metrics["training_accuracy_score"] <= 1.0
    assert "training_log_loss" in metrics and "training_roc_auc" in metrics
    assert "XGBClassifier_score_X_val" in metrics  # evaluation after the fit, on its run
    assert {"model/model.ubj", "feature_importance_gain.png"} <= set(run["artifacts"])
    contexts = sorted((name, context) for name, context, _ in _inputs(workdir, run["run_id"]))
    assert ("X_train", "train") in contexts and ("X_val", "eval") in contexts

    check = write_script(
        workdir,
        "reload.py",
        f"""
        import numpy, xgboost
        import autologagent
        model = autologagent.load_model({run["run_id"]!r})
        assert type(model) is xgboost.XGBClassifier, type(model)
        assert numpy.array_equal(model.predict_proba(numpy.load("X_val.npy")),
                                 numpy.load("proba.npy"))
        print("same")
        """,
    )
    assert run_python([str(check)], cwd=workdir, check=True).stdout == "same\n"


def test_cv_logs_params_and_mean_and_std_series(workdir: Path) -> None:
    script = write_script(
        workdir,
        "train.py",
        DATA
        + """
result = xgb.cv({"objective": "multi:softprob", "num_class": 3}, xgb.DMatrix(X, label=y),
                num_boost_round=4, nfold=3, seed=1, as_pandas=False)
json.dump(result, open("cv.json", "w"))
""",
    )
    run_python([str(script)], cwd=workdir, env=_autolog_env(), check=True)
    run = show_run(workdir)
    assert run["name"] == "xgboost.cv"
    assert run["params"]["nfold"] == "3" and run["params"]["num_boost_round"] == "4"
    result = json.loads((workdir / "cv.json").read_text())
    for key in ("train-mlogloss-mean", "train-mlogloss-std", "test-mlogloss-mean"):
        points = _history(workdir, run["run_id"], key)
        assert [p["value"] for p in points] == result[key]


def test_disabled_xgboost_is_left_alone_and_options_are_honoured(workdir: Path) -> None:
    script = write_script(
        workdir,
        "train.py",
        DATA
        + """
d = xgb.DMatrix(X, label=y)
xgb.train({"objective": "multi:softprob", "num_class": 3}, d, 8, evals=[(d, "all")],
          verbose_eval=False)
print(type(xgb.train).__name__, type(xgb.training.train).__name__)
""",
    )
    result = run_python([str(script)], cwd=workdir, env=_autolog_env(AUTOLOG_DISABLE="xgboost"))
    assert result.returncode == 0, result.stderr
    assert result.stdout == "function function\n"
    assert not (workdir / "autologruns").exists() or list_runs(workdir) == []

    env = _autolog_env(
        AUTOLOG_LOG_MODELS="false", AUTOLOG_LOG_DATASETS="false", AUTOLOG_LOG_EVERY_N_STEPS="3"
    )
    result = run_python([str(script)], cwd=workdir, env=env, check=True)
    assert result.stdout == "AgentFunctionWrapper AgentFunctionWrapper\n"
    run = show_run(workdir)
    assert not [path for path in run["artifacts"] if path.startswith("model/")]
    assert "feature_importance_weight.json" in run["artifacts"]
    assert _inputs(workdir, run["run_id"]) == []
    # every third round, and the last one
    steps = [p["step"] for p in _history(workdir, run["run_id"], "all-mlogloss")]
    assert steps == [0, 3, 6, 7]


def test_the_user_sees_xgboost_unchanged(workdir: Path) -> None:
    """Return values, pickles, signatures, docs and the user's own objects, with and without."""
    script = write_script(
        workdir,
        "probe.py",
        DATA
        + """
import hashlib, inspect, pickle
import autologagent
d = xgb.DMatrix(X, label=y)
callbacks = [xgb.callback.EvaluationMonitor(period=100)]
params = {"objective": "multi:softprob", "num_class": 3, "seed": 0, "nthread": 1}
evals_result = {}
booster = xgb.train(params, d, 3, evals=[(d, "train")], evals_result=evals_result,
                    callbacks=callbacks, verbose_eval=False)
clf = xgb.XGBClassifier(n_estimators=3, n_jobs=1, random_state=0).fit(X, y)
out = {
    "booster": hashlib.sha256(booster.save_raw("ubj")).hexdigest(),
    "classifier": hashlib.sha256(pickle.dumps(clf)).hexdigest(),
    "functions": hashlib.sha256(pickle.dumps([xgb.train, xgb.cv, xgb.training.train])).hexdigest(),
    "same_object": xgb.train is xgb.training.train,
    "signatures": [str(inspect.signature(f)) for f in (xgb.train, xgb.cv, xgb.XGBClassifier.fit)],
    "docs": [(f.__doc__ or "")[:50] for f in (xgb.train, xgb.XGBClassifier.fit)],
    "callbacks": len(callbacks),
    "evals_result": evals_result,
    "params": params,
}
try:
    xgb.train(params, d, 2, evals=[(d, "bad-name")])
except AssertionError as exc:
    out["error"] = [type(exc).__name__, str(exc)]
print(json.dumps(out))
""",
    )
    plain = run_python([str(script)], cwd=workdir, check=True).stdout.splitlines()
    agent = run_python([str(script)], cwd=workdir, env=_autolog_env(), check=True).stdout
    agent = agent.splitlines()
    assert agent[:-1] == plain[:-1]  # what the user's EvaluationMonitor printed
    assert json.loads(agent[-1]) == json.loads(plain[-1])
    assert [run["status"] for run in list_runs(workdir)] == ["FAILED", "FINISHED", "FINISHED"]


def test_unpatch_restores_the_originals_everywhere(workdir: Path) -> None:
    script = write_script(
        workdir,
        "probe.py",
        """
import xgboost, xgboost.sklearn, xgboost.training
import autologagent
from autologagent.integrations import xgboost as integration
autologagent.autolog()
# xgboost.sklearn imported train from xgboost.training after it was wrapped
names = lambda: {type(f).__name__ for f in (xgboost.train, xgboost.training.train,
                 xgboost.cv, xgboost.sklearn.train,
                 xgboost.sklearn.XGBClassifier.__dict__["fit"])}
patched = names()
integration.autolog(disable=True)
print(sorted(patched), sorted(names()))
""",
    )
    result = run_python([str(script)], cwd=workdir, check=True)
    assert result.stdout == "['AgentFunctionWrapper'] ['function']\n"
