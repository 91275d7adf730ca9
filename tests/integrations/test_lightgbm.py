"""LightGBM: the native API and the scikit-learn wrappers, trained in real processes."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

from conftest import clean_env, cli, list_runs, run_python, show_run, write_script

DATA = """
import json
import lightgbm as lgb
import numpy
from sklearn.datasets import make_regression
X, y = make_regression(n_samples=300, n_features=5, noise=5.0, random_state=0)
X_train, y_train = X[:200], y[:200]
X_a, y_a, X_b, y_b = X[200:250], y[200:250], X[250:], y[250:]
PARAMS = {"objective": "regression", "verbose": -1, "num_threads": 1, "seed": 0}
"""


def _autolog_env(**extra: str) -> dict[str, str]:
    return clean_env(AUTOLOG="1", AUTOLOG_TESTING="1", **extra)


def _history(workdir: Path, run_id: str, key: str) -> list[dict[str, Any]]:
    return cli(workdir, "runs", "history", run_id, key)


def _inputs(workdir: Path, run_id: str) -> list[tuple[str, str]]:
    database = workdir / "autologruns" / "runs.db"
    with closing(sqlite3.connect(database)) as connection:
        rows = connection.execute(
            "SELECT name, context FROM inputs WHERE run_id = ? ORDER BY context DESC, name",
            (run_id,),
        ).fetchall()
    return [tuple(row) for row in rows]


def test_regression_with_two_valid_sets_logs_both_series_and_a_loadable_booster(
    workdir: Path,
) -> None:
    script = write_script(
        workdir,
        "train.py",
        DATA
        + """
train_set = lgb.Dataset(X_train, y_train)
valid_a = lgb.Dataset(X_a, y_a, reference=train_set)
valid_b = lgb.Dataset(X_b, y_b, reference=train_set)
recorded = {}
booster = lgb.train(PARAMS, train_set, num_boost_round=15, valid_sets=[valid_a, valid_b],
                    valid_names=["holdout", "test"], callbacks=[lgb.record_evaluation(recorded)])
json.dump(recorded, open("recorded.json", "w"))
numpy.save("X_b.npy", X_b)
numpy.save("predictions.npy", booster.predict(X_b))
""",
    )
    run_python([str(script)], cwd=workdir, env=_autolog_env(), check=True)
    assert [run["name"] for run in list_runs(workdir)] == ["lightgbm.train"]
    run = show_run(workdir)
    assert run["status"] == "FINISHED"
    assert run["tags"]["autolog.integration"] == "lightgbm"
    assert run["params"]["objective"] == "regression"
    assert run["params"]["num_boost_round"] == "15"
    recorded = json.loads((workdir / "recorded.json").read_text())  # the user's callback works
    for name in ("holdout", "test"):
        points = _history(workdir, run["run_id"], f"{name}-l2")
        assert [p["step"] for p in points] == list(range(15))
        assert [p["value"] for p in points] == recorded[name]["l2"]
    assert "best_iteration" not in run["metrics"]
    artifacts = set(run["artifacts"])
    for kind in ("split", "gain"):
        assert {f"feature_importance_{kind}.json", f"feature_importance_{kind}.png"} <= artifacts
    assert {"model/model.txt", "model/MLmodel", "model/requirements.txt"} <= artifacts
    folder = workdir / "autologruns" / "artifacts" / run["run_id"]
    split = json.loads((folder / "feature_importance_split.json").read_text())
    assert sorted(split) == [f"Column_{i}" for i in range(5)]
    assert _inputs(workdir, run["run_id"]) == [
        ("train_set", "train"),
        ("holdout", "eval"),
        ("test", "eval"),
    ]
    check = write_script(
        workdir,
        "reload.py",
        f"""
        import lightgbm, numpy
        import autologagent
        booster = autologagent.load_model({run["run_id"]!r})
        assert type(booster) is lightgbm.Booster, type(booster)
        predictions = booster.predict(numpy.load("X_b.npy"))
        assert numpy.array_equal(predictions, numpy.load("predictions.npy"))
        print("same")
        """,
    )
    assert run_python([str(check)], cwd=workdir, check=True).stdout == "same\n"


def test_early_stopping_and_user_callbacks_in_order(workdir: Path) -> None:
    script = write_script(
        workdir,
        "train.py",
        DATA
        + """
calls = []
def first(env):
    calls.append(["first", env.iteration])
def second(env):
    calls.append(["second", env.iteration])
callbacks = [first, second, lgb.early_stopping(3, verbose=False)]
train_set = lgb.Dataset(X_train, y_train)
params = dict(PARAMS, learning_rate=0.9)
booster = lgb.train(params, train_set, num_boost_round=300,
                    valid_sets=[train_set, lgb.Dataset(X_a, y_a, reference=train_set)],
                    callbacks=callbacks)
rounds = len({epoch for _, epoch in calls})
json.dump({"calls": calls, "best": booster.best_iteration, "rounds": rounds,
           "orders": [first.order, second.order], "best_score": booster.best_score,
           "callbacks": len(callbacks)}, open("out.json", "w"))
""",
    )
    run_python([str(script)], cwd=workdir, env=_autolog_env(), check=True)
    out = json.loads((workdir / "out.json").read_text())
    rounds = out["rounds"]
    assert rounds < 300  # still stops early
    assert out["calls"] == [[tag, i] for i in range(rounds) for tag in ("first", "second")]
    assert out["orders"] == [-3, -2]  # as LightGBM numbers them without the agent
    assert out["callbacks"] == 3
    run = show_run(workdir)
    assert run["metrics"]["best_iteration"] == out["best"]
    assert run["metrics"]["stopped_iteration"] == rounds
    points = _history(workdir, run["run_id"], "valid_1-l2")
    assert [p["step"] for p in points] == list(range(rounds + 1))
    assert points[-1]["value"] == out["best_score"]["valid_1"]["l2"]
    assert [p["step"] for p in _history(workdir, run["run_id"], "training-l2")][-1] == rounds


def test_sklearn_api_makes_one_run_with_metrics_series_and_the_estimator(workdir: Path) -> None:
    script = write_script(
        workdir,
        "train.py",
        DATA
        + """
import warnings
warnings.simplefilter("ignore")  # LightGBM 4.7 prefers eval_X/eval_y to eval_set
model = lgb.LGBMRegressor(n_estimators=10, num_leaves=7, verbose=-1, n_jobs=1, random_state=0)
model.fit(X_train, y_train, eval_set=[(X_a, y_a)])
print(model.score(X_b, y_b))
numpy.save("X_b.npy", X_b)
numpy.save("predictions.npy", model.predict(X_b))
json.dump(model.evals_result_, open("evals.json", "w"))
""",
    )
    run_python([str(script)], cwd=workdir, env=_autolog_env(), check=True)
    assert [run["name"] for run in list_runs(workdir)] == ["LGBMRegressor"]
    run = show_run(workdir)
    assert run["tags"]["estimator_class"] == "lightgbm.sklearn.LGBMRegressor"
    assert run["tags"]["autolog.integration"] == "lightgbm"
    assert run["params"]["n_estimators"] == "10" and run["params"]["num_leaves"] == "7"
    evals = json.loads((workdir / "evals.json").read_text())
    points = _history(workdir, run["run_id"], "valid_0-l2")
    assert [p["value"] for p in points] == evals["valid_0"]["l2"]
    metrics = run["metrics"]
    assert {"training_mean_squared_error", "training_r2_score"} <= set(metrics)
    assert "LGBMRegressor_score_X_b" in metrics
    assert {"model/model.pkl", "feature_importance_gain.json"} <= set(run["artifacts"])
    # the eval set, and the data the model was scored on after the fit
    assert _inputs(workdir, run["run_id"]) == [
        ("X_train", "train"),
        ("X_a", "eval"),
        ("X_b", "eval"),
    ]
    check = write_script(
        workdir,
        "reload.py",
        f"""
        import lightgbm, numpy
        import autologagent
        model = autologagent.load_model({run["run_id"]!r})
        assert type(model) is lightgbm.LGBMRegressor, type(model)
        assert numpy.array_equal(model.predict(numpy.load("X_b.npy")),
                                 numpy.load("predictions.npy"))
        print("same")
        """,
    )
    assert run_python([str(check)], cwd=workdir, check=True).stdout == "same\n"


def test_cv_logs_mean_and_stdv_series(workdir: Path) -> None:
    script = write_script(
        workdir,
        "train.py",
        DATA
        + """
result = lgb.cv(PARAMS, lgb.Dataset(X, y), num_boost_round=5, nfold=3, stratified=False)
json.dump(result, open("cv.json", "w"))
""",
    )
    env = _autolog_env(AUTOLOG_LOG_EVERY_N_STEPS="3")
    run_python([str(script)], cwd=workdir, env=env, check=True)
    run = show_run(workdir)
    assert run["name"] == "lightgbm.cv"
    assert run["params"]["nfold"] == "3"
    result = json.loads((workdir / "cv.json").read_text())
    for key in ("valid-l2-mean", "valid-l2-stdv"):
        points = _history(workdir, run["run_id"], key)
        values = result[key.replace("valid-", "valid ", 1)]
        # every third round, and the last one
        assert [(p["step"], p["value"]) for p in points] == [(i, values[i]) for i in (0, 3, 4)]


def test_the_user_sees_lightgbm_unchanged_and_disabling_leaves_it_alone(workdir: Path) -> None:
    script = write_script(
        workdir,
        "probe.py",
        DATA
        + """
import hashlib, inspect, pickle
def mine(env):
    pass
callbacks = (mine,)
booster = lgb.train(PARAMS, lgb.Dataset(X, y), 3, callbacks=callbacks)
model = lgb.LGBMRegressor(n_estimators=3, verbose=-1, n_jobs=1, random_state=0).fit(X, y)
out = {
    "booster": hashlib.sha256(booster.model_to_string().encode()).hexdigest(),
    "model": hashlib.sha256(pickle.dumps(model)).hexdigest(),
    "functions": hashlib.sha256(pickle.dumps([lgb.train, lgb.cv, lgb.engine.train])).hexdigest(),
    "same_object": lgb.train is lgb.engine.train,
    "signatures": [str(inspect.signature(f)) for f in (lgb.train, lgb.LGBMRegressor.fit)],
    "docs": [(f.__doc__ or "")[:50] for f in (lgb.train, lgb.LGBMRegressor.fit)],
    "order": mine.order,
    "callbacks": list(callbacks) == [mine],
}
try:
    lgb.train(PARAMS, lgb.Dataset(X, y), 2, callbacks=[lambda env: 1 / 0])
except ZeroDivisionError as exc:
    out["error"] = str(exc)
print(json.dumps(out))
""",
    )
    plain = json.loads(run_python([str(script)], cwd=workdir, check=True).stdout)
    agent = json.loads(
        run_python([str(script)], cwd=workdir, env=_autolog_env(), check=True).stdout
    )
    assert agent == plain
    assert [run["status"] for run in list_runs(workdir)] == ["FAILED", "FINISHED", "FINISHED"]

    disabled = write_script(
        workdir,
        "disabled.py",
        """
import lightgbm, lightgbm.engine, lightgbm.sklearn
print(type(lightgbm.train).__name__, type(lightgbm.engine.train).__name__,
      type(lightgbm.sklearn.LGBMModel.__dict__["fit"]).__name__)
""",
    )
    result = run_python(
        [str(disabled)], cwd=workdir, env=_autolog_env(AUTOLOG_DISABLE="lightgbm"), check=True
    )
    assert result.stdout == "function function function\n"
