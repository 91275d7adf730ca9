"""scikit-learn: real estimators, fitted in real processes under the agent."""

from __future__ import annotations

import csv
import json
import re
import sqlite3
from contextlib import closing
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
from conftest import (
    EXAMPLES,
    WORKLOADS,
    clean_env,
    cli,
    list_runs,
    run_python,
    show_run,
    write_script,
)

DATA = """
from sklearn.datasets import make_classification
X, y = make_classification(n_samples=120, n_features=6, random_state=0)
"""


def _autolog_env() -> dict[str, str]:
    return clean_env(AUTOLOG="1", AUTOLOG_TESTING="1")


def test_seed_example_records_every_constructor_param(workdir: Path) -> None:
    """The founding workload: one run with the forest's 19 params and its estimator tags."""
    result = run_python(
        ["-m", "autologagent", str(EXAMPLES / "seed_example.py")],
        cwd=workdir,
        env=clean_env(AUTOLOG_TESTING="1"),
        check=True,
    )
    assert result.stdout.startswith("validation score:")
    run = show_run(workdir)
    assert run["status"] == "FINISHED"
    assert run["name"] == "RandomForestClassifier"
    assert run["params"]["n_estimators"] == "200"
    assert run["params"]["max_depth"] == "10"
    assert run["params"]["random_state"] == "0"
    assert run["params"]["class_weight"] == "None"
    assert len(run["params"]) == 19
    assert run["tags"]["estimator_name"] == "RandomForestClassifier"
    assert run["tags"]["estimator_class"] == "sklearn.ensemble._forest.RandomForestClassifier"
    assert run["tags"]["autolog.integration"] == "sklearn"


def test_fit_transform_and_fit_predict_make_one_run_each(workdir: Path) -> None:
    script = write_script(
        workdir,
        "train.py",
        DATA
        + """
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
PCA(n_components=2).fit_transform(X)
KMeans(n_clusters=3, n_init=2, random_state=0).fit_predict(X)
""",
    )
    run_python([str(script)], cwd=workdir, env=_autolog_env(), check=True)
    names = [run["name"] for run in list_runs(workdir)]
    assert names == ["KMeans", "PCA"]
    kmeans = show_run(workdir, "last")
    assert kmeans["params"]["n_clusters"] == "3"


def test_pipeline_and_search_log_once(workdir: Path) -> None:
    """A Pipeline's steps and a search's inner fits make no runs of their own."""
    script = write_script(
        workdir,
        "train.py",
        DATA
        + """
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
pipe = make_pipeline(StandardScaler(), LogisticRegression())
pipe.fit(X, y)
GridSearchCV(pipe, {"logisticregression__C": [0.1, 1.0]}, cv=2).fit(X, y)
""",
    )
    run_python([str(script)], cwd=workdir, env=_autolog_env(), check=True)
    runs = [run for run in list_runs(workdir) if run["parent_run_id"] is None]
    assert [run["name"] for run in runs] == ["GridSearchCV", "Pipeline"]
    pipeline = show_run(workdir, runs[1]["run_id"])
    # deep params: the steps' own params, as MLflow logs them
    assert pipeline["params"]["logisticregression__C"] == "1.0"
    assert pipeline["tags"]["estimator_class"] == "sklearn.pipeline.Pipeline"


def test_patched_estimators_clone_pickle_and_introspect_as_before(workdir: Path) -> None:
    """clone, pickle, inspect.signature and help text are unchanged by the agent."""
    script = write_script(
        workdir,
        "probe.py",
        DATA
        + """
import hashlib, inspect, json, pickle
from sklearn.base import clone
from sklearn.ensemble import RandomForestClassifier
clf = RandomForestClassifier(n_estimators=5, random_state=0)
copy = clone(clf)
clf.fit(X, y)
print(json.dumps({
    "clone_params": copy.get_params() == RandomForestClassifier(n_estimators=5,
                                                               random_state=0).get_params(),
    "signature": str(inspect.signature(RandomForestClassifier.fit)),
    "doc": (RandomForestClassifier.fit.__doc__ or "")[:60],
    "pickle": hashlib.sha256(pickle.dumps(clf)).hexdigest(),
    "roundtrip": pickle.loads(pickle.dumps(clf)).predict(X).tolist() == clf.predict(X).tolist(),
    "predictions": clf.predict(X[:10]).tolist(),
}))
""",
    )
    plain = json.loads(run_python([str(script)], cwd=workdir, check=True).stdout)
    agent = json.loads(
        run_python([str(script)], cwd=workdir, env=_autolog_env(), check=True).stdout
    )
    assert agent == plain
    assert agent["roundtrip"] and agent["clone_params"]
    assert len(list_runs(workdir)) == 1


def test_only_imported_sklearn_modules_are_touched(workdir: Path) -> None:
    """Patching is lazy: importing one sklearn module does not import the others."""
    script = write_script(
        workdir,
        "probe.py",
        """
import sys
import sklearn.linear_model
print("sklearn.ensemble" in sys.modules, "sklearn.cluster" in sys.modules)
""",
    )
    plain = run_python([str(script)], cwd=workdir, check=True).stdout
    agent = run_python([str(script)], cwd=workdir, env=_autolog_env(), check=True).stdout
    assert agent == plain == "False False\n"


def test_unpatch_restores_the_original_methods(workdir: Path) -> None:
    script = write_script(
        workdir,
        "probe.py",
        DATA
        + """
import autologagent
from autologagent.integrations import sklearn as sklearn_integration
from sklearn.ensemble._forest import BaseForest
from sklearn.linear_model import LogisticRegression
autologagent.autolog()
patched = type(BaseForest.__dict__["fit"]).__name__
sklearn_integration.autolog(disable=True)
restored = type(BaseForest.__dict__["fit"]).__name__
LogisticRegression().fit(X, y)
print(patched, restored)
""",
    )
    result = run_python([str(script)], cwd=workdir, env=clean_env(AUTOLOG_TESTING="1"), check=True)
    assert result.stdout.split() == ["AgentFunctionWrapper", "function"]
    assert list_runs(workdir) == []


def test_user_subclass_overriding_fit_logs_once_with_its_own_class(workdir: Path) -> None:
    script = write_script(
        workdir,
        "train.py",
        DATA
        + """
from sklearn.linear_model import LogisticRegression
class MyModel(LogisticRegression):
    def fit(self, X, y):
        return super().fit(X, y)
MyModel(C=0.5).fit(X, y)
""",
    )
    run_python([str(script)], cwd=workdir, env=_autolog_env(), check=True)
    runs = list_runs(workdir)
    assert len(runs) == 1
    run = show_run(workdir)
    assert run["tags"]["estimator_class"] == "__main__.MyModel"
    assert run["params"]["C"] == "0.5"


def test_training_metrics_predict_once_and_take_the_default_score_from_it(workdir: Path) -> None:
    """A forest's training metrics walk its trees once, and a regressor's predict
    once: ``training_score`` (the default accuracy / R²) is taken from the same
    predictions, not from a second pass through ``score``."""
    script = write_script(
        workdir,
        "train.py",
        DATA
        + """
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import Ridge
calls = {"proba": 0, "predict": 0}
class CountingForest(RandomForestClassifier):
    def predict_proba(self, X):
        calls["proba"] += 1
        return super().predict_proba(X)
class CountingRidge(Ridge):
    def predict(self, X):
        calls["predict"] += 1
        return super().predict(X)
CountingForest(n_estimators=5, random_state=0).fit(X, y)
CountingRidge().fit(X, y.astype(float))
print(calls["proba"], calls["predict"])
""",
    )
    result = run_python([str(script)], cwd=workdir, env=_autolog_env(), check=True)
    assert result.stdout.split() == ["1", "1"]
    ridge, forest = show_run(workdir, "last"), show_run(workdir, list_runs(workdir)[1]["run_id"])
    assert forest["metrics"]["training_score"] == forest["metrics"]["training_accuracy_score"]
    assert ridge["metrics"]["training_score"] == ridge["metrics"]["training_r2_score"]


# --- issue 3: scikit-learn at full autolog parity with MLflow ----------------------------

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _inputs(workdir: Path, run_id: str) -> list[dict[str, Any]]:
    """The run's dataset inputs, read from the store (they are not in ``runs show``)."""
    database = workdir / "autologruns" / "runs.db"
    with closing(sqlite3.connect(database)) as connection:
        rows = connection.execute(
            "SELECT name, digest, source_type, source, schema, profile, context "
            "FROM inputs WHERE run_id = ? ORDER BY context DESC, name",
            (run_id,),
        ).fetchall()
    return [
        {
            "name": name,
            "digest": digest,
            "source_type": source_type,
            "source": source,
            "schema": json.loads(schema),
            "profile": json.loads(profile),
            "context": context,
        }
        for name, digest, source_type, source, schema, profile, context in rows
    ]


def _all_inputs(workdir: Path) -> list[tuple[Any, ...]]:
    database = workdir / "autologruns" / "runs.db"
    with closing(sqlite3.connect(database)) as connection:
        return connection.execute("SELECT * FROM inputs").fetchall()


def _artifact_dir(workdir: Path, run_id: str) -> Path:
    return workdir / "autologruns" / "artifacts" / run_id


def _seed_reference() -> dict[str, float]:
    """The seed workload re-run here, without the agent: what its run must hold."""
    from sklearn import datasets, metrics
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.model_selection import train_test_split

    X, y = datasets.make_classification(
        n_samples=1000, class_sep=0.5, random_state=42, n_classes=3, n_informative=3
    )
    X_train, X_val, y_train, y_val = train_test_split(X, y, test_size=0.2, random_state=42)
    clf = RandomForestClassifier(n_estimators=200, max_depth=10, random_state=0)
    clf.fit(X_train, y_train)
    y_pred = clf.predict(X_train)
    y_proba = clf.predict_proba(X_train)
    weighted = {"average": "weighted"}
    return {
        "training_accuracy_score": metrics.accuracy_score(y_train, y_pred),
        "training_precision_score": metrics.precision_score(y_train, y_pred, **weighted),
        "training_recall_score": metrics.recall_score(y_train, y_pred, **weighted),
        "training_f1_score": metrics.f1_score(y_train, y_pred, **weighted),
        "training_log_loss": metrics.log_loss(y_train, y_proba),
        "training_roc_auc": metrics.roc_auc_score(
            y_train, y_proba, multi_class="ovo", average="weighted"
        ),
        "training_score": clf.score(X_train, y_train),
        "RandomForestClassifier_score_X_val": clf.score(X_val, y_val),
    }


def test_seed_workload_end_to_end_matches_sklearn(workdir: Path) -> None:
    """The founding workload: MLflow's training metrics with sklearn's own values, the
    post-training score, 19 params, tags, the model, plots, the HTML view, datasets."""
    result = run_python(
        ["-m", "autologagent", str(WORKLOADS / "seed_example.py")],
        cwd=workdir,
        env=clean_env(AUTOLOG_TESTING="1"),
        check=True,
    )
    assert result.stdout.startswith("validation score:")
    assert "autologagent" not in result.stderr
    runs = list_runs(workdir)
    assert len(runs) == 1
    run = show_run(workdir, runs[0]["run_id"])
    run_id = run["run_id"]
    assert run["status"] == "FINISHED"
    assert run["name"] == "RandomForestClassifier"
    assert run["parent_run_id"] is None

    expected = _seed_reference()
    # every metric of the fit (system metrics, sampled while it ran, aside)
    assert {key for key in run["metrics"] if not key.startswith("system/")} == set(expected)
    for key, value in expected.items():
        assert run["metrics"][key] == pytest.approx(value, rel=1e-9), key
    # the validation score the script printed is the one logged
    printed = float(result.stdout.split(":", 1)[1])
    assert run["metrics"]["RandomForestClassifier_score_X_val"] == pytest.approx(printed)
    history = cli(workdir, "runs", "history", run_id, "training_accuracy_score")
    assert [point["step"] for point in history] == [0]

    assert len(run["params"]) == 19
    assert run["params"]["n_estimators"] == "200"
    assert run["params"]["max_depth"] == "10"
    assert run["params"]["random_state"] == "0"
    assert run["tags"]["estimator_name"] == "RandomForestClassifier"
    assert run["tags"]["estimator_class"] == "sklearn.ensemble._forest.RandomForestClassifier"
    assert run["tags"]["autolog.integration"] == "sklearn"

    expected_artifacts = {
        "model/model.pkl",
        "model/MLmodel",
        "model/requirements.txt",
        "training_confusion_matrix.png",
        "training_roc_curve.png",
        "training_precision_recall_curve.png",
        "estimator.html",
    }
    assert expected_artifacts <= set(run["artifacts"])
    folder = _artifact_dir(workdir, run_id)
    for name in expected_artifacts:
        assert (folder / name).is_file(), name
        if name.endswith(".png"):
            assert (folder / name).read_bytes().startswith(PNG_SIGNATURE), name
    assert "RandomForestClassifier" in (folder / "estimator.html").read_text()
    requirements = (folder / "model" / "requirements.txt").read_text().splitlines()
    assert f"scikit-learn=={metadata.version('scikit-learn')}" in requirements
    assert f"numpy=={metadata.version('numpy')}" in requirements
    mlmodel = json.loads((folder / "model" / "MLmodel").read_text())
    assert mlmodel["run_id"] == run_id
    assert mlmodel["flavors"]["sklearn"]["sklearn_version"] == metadata.version("scikit-learn")
    assert mlmodel["signature"]["inputs"]["shape"] == [-1, 20]

    inputs = {(entry["name"], entry["context"]): entry for entry in _inputs(workdir, run_id)}
    assert set(inputs) == {("X_train", "train"), ("X_val", "eval")}
    assert inputs[("X_train", "train")]["profile"]["shape"] == [800, 20]
    assert inputs[("X_val", "eval")]["profile"]["shape"] == [200, 20]
    assert inputs[("X_train", "train")]["digest"] != inputs[("X_val", "eval")]["digest"]


TRAIN_AND_SAVE = (
    DATA
    + """
import json, sys
import autologagent
from sklearn.ensemble import RandomForestClassifier
clf = RandomForestClassifier(n_estimators=8, random_state=0).fit(X, y)
run = autologagent.last_active_run()
try:  # as MLflow users do: load the model the fit just logged, in the same process
    same_process = autologagent.load_model(run.info.run_id).predict(X).tolist()
except Exception as exc:
    same_process = f"{type(exc).__name__}: {exc}"
json.dump({"run_id": run.info.run_id, "predictions": clf.predict(X).tolist(),
           "proba": clf.predict_proba(X).tolist(), "same_process": same_process},
          open(sys.argv[1], "w"))
"""
)

LOAD = (
    DATA
    + """
import json, sys
import autologagent
uri = sys.argv[3] if len(sys.argv) > 3 else None
try:
    model = autologagent.load_model(sys.argv[1], uri=uri) if uri else autologagent.load_model(
        sys.argv[1])
except Exception as exc:
    json.dump({"error": type(exc).__name__, "message": str(exc)}, open(sys.argv[2], "w"))
else:
    json.dump({"class": type(model).__name__, "predictions": model.predict(X).tolist(),
               "proba": model.predict_proba(X).tolist()}, open(sys.argv[2], "w"))
"""
)


def test_load_model_in_a_fresh_process_and_refuse_a_tampered_file(
    workdir: Path, tmp_path: Path
) -> None:
    train = write_script(workdir, "train.py", TRAIN_AND_SAVE)
    load = write_script(workdir, "load.py", LOAD)
    run_python([str(train), "trained.json"], cwd=workdir, env=_autolog_env(), check=True)
    trained = json.loads((workdir / "trained.json").read_text())
    run_id = trained["run_id"]

    # A fresh process without the agent, the default store found from the working folder.
    plain = clean_env()
    run_python([str(load), run_id, "loaded.json"], cwd=workdir, env=plain, check=True)
    loaded = json.loads((workdir / "loaded.json").read_text())
    assert loaded["class"] == "RandomForestClassifier"
    assert loaded["predictions"] == trained["predictions"]
    assert loaded["proba"] == trained["proba"]
    # ... and from elsewhere, with the store named.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    store = str(workdir / "autologruns")
    run_python(
        [str(load), run_id[:12], str(elsewhere / "loaded.json"), store],
        cwd=elsewhere,
        env=plain,
        check=True,
    )
    assert (
        json.loads((elsewhere / "loaded.json").read_text())["predictions"]
        == (trained["predictions"])
    )
    assert not (elsewhere / "autologruns").exists()
    # In the training process itself, right after the fit.
    assert trained["same_process"] == trained["predictions"]

    # One byte changed in the pickle: refused, with the digest named.
    model_file = _artifact_dir(workdir, run_id) / "model" / "model.pkl"
    data = bytearray(model_file.read_bytes())
    data[len(data) // 2] ^= 0xFF
    model_file.write_bytes(bytes(data))
    run_python([str(load), run_id, "tampered.json"], cwd=workdir, env=plain, check=True)
    tampered = json.loads((workdir / "tampered.json").read_text())
    assert tampered["error"] == "ValueError"
    assert "digest" in tampered["message"]


def test_log_models_false_logs_no_model_but_everything_else(workdir: Path) -> None:
    script = write_script(
        workdir,
        "train.py",
        DATA
        + """
from sklearn.linear_model import LogisticRegression
LogisticRegression().fit(X, y)
""",
    )
    env = clean_env(AUTOLOG="1", AUTOLOG_TESTING="1", AUTOLOG_LOG_MODELS="false")
    run_python([str(script)], cwd=workdir, env=env, check=True)
    run = show_run(workdir)
    assert not [path for path in run["artifacts"] if path.startswith("model/")]
    assert not (_artifact_dir(workdir, run["run_id"]) / "model").exists()
    assert "training_accuracy_score" in run["metrics"]
    assert run["params"]["C"] == "1.0"
    assert [entry["name"] for entry in _inputs(workdir, run["run_id"])] == ["X"]


def test_model_requirements_use_the_importlib_metadata_the_program_loaded(
    workdir: Path,
) -> None:
    """scikit-learn loads the standard library's importlib.metadata: the model's
    requirements come from it, and the backport is never imported beside it."""
    script = write_script(
        workdir,
        "train.py",
        DATA
        + """
import sys
import autologagent
from sklearn.linear_model import LogisticRegression
LogisticRegression().fit(X, y)
autologagent.load_model("last")  # waits until the model and its requirements are written
print("backport loaded:", "importlib_metadata" in sys.modules)
""",
    )
    result = run_python([str(script)], cwd=workdir, env=_autolog_env(), check=True)
    assert result.stdout.strip().endswith("backport loaded: False")
    run = show_run(workdir)
    requirements = _artifact_dir(workdir, run["run_id"]) / "model" / "requirements.txt"
    assert requirements.read_text().splitlines() == [
        f"numpy=={metadata.version('numpy')}",
        f"scikit-learn=={metadata.version('scikit-learn')}",
    ]


def test_log_datasets_false_records_no_inputs(workdir: Path) -> None:
    script = write_script(
        workdir,
        "train.py",
        DATA
        + """
from sklearn.linear_model import LogisticRegression
X_train, X_val, y_train, y_val = X[:80], X[80:], y[:80], y[80:]
clf = LogisticRegression().fit(X_train, y_train)
clf.score(X_val, y_val)
""",
    )
    env = clean_env(AUTOLOG="1", AUTOLOG_TESTING="1", AUTOLOG_LOG_DATASETS="false")
    run_python([str(script)], cwd=workdir, env=env, check=True)
    run = show_run(workdir)
    assert "LogisticRegression_score_X_val" in run["metrics"]
    assert "training_accuracy_score" in run["metrics"]
    assert "model/model.pkl" in run["artifacts"]
    assert _all_inputs(workdir) == []


FRAME = """
import numpy as np
import pandas as pd
rng = np.random.RandomState(0)
n = 120
df = pd.DataFrame({
    "age": rng.randint(18, 80, n).astype(float),
    "income": rng.lognormal(10, 0.5, n),
    "city": rng.choice(["paris", "lyon", "nice"], n),
})
y = ((df["age"] > 45) ^ (df["city"] == "nice")).astype(int).to_numpy()
"""

PIPELINE = """
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
pipe = Pipeline([
    ("prep", ColumnTransformer([
        ("num", StandardScaler(), ["age", "income"]),
        ("cat", OneHotEncoder(handle_unknown="ignore"), ["city"]),
    ])),
    ("clf", LogisticRegression(C=0.5)),
])
pipe.fit(df, y)
"""


def test_pipeline_with_column_transformer_on_a_dataframe(workdir: Path) -> None:
    """One run for the whole Pipeline, nested step__param names, training metrics of the
    pipeline, and the DataFrame's columns in the dataset schema."""
    script = write_script(workdir, "train.py", FRAME + PIPELINE)
    run_python([str(script)], cwd=workdir, env=_autolog_env(), check=True)
    runs = list_runs(workdir)
    assert [run["name"] for run in runs] == ["Pipeline"]
    run = show_run(workdir, runs[0]["run_id"])
    assert run["status"] == "FINISHED"
    params = run["params"]
    assert params["clf__C"] == "0.5"
    assert params["prep__cat__handle_unknown"] == "ignore"
    assert params["prep__num__with_mean"] == "True"
    assert params["prep__remainder"] == "drop"
    assert "steps" in params and "memory" in params
    assert run["tags"]["estimator_class"] == "sklearn.pipeline.Pipeline"

    namespace: dict[str, Any] = {}
    exec(FRAME + PIPELINE, namespace)  # the same pipeline, fitted here without the agent
    pipe, df, y = namespace["pipe"], namespace["df"], namespace["y"]
    from sklearn.metrics import accuracy_score, log_loss

    assert run["metrics"]["training_accuracy_score"] == pytest.approx(
        accuracy_score(y, pipe.predict(df)), rel=1e-9
    )
    assert run["metrics"]["training_log_loss"] == pytest.approx(
        log_loss(y, pipe.predict_proba(df)), rel=1e-9
    )
    assert run["metrics"]["training_score"] == pytest.approx(pipe.score(df, y), rel=1e-9)
    assert "model/model.pkl" in run["artifacts"]

    (entry,) = _inputs(workdir, run["run_id"])
    assert entry["name"] == "df"
    assert entry["context"] == "train"
    assert entry["schema"]["type"] == "dataframe"
    assert [column["name"] for column in entry["schema"]["columns"]] == ["age", "income", "city"]
    assert entry["profile"]["shape"] == [120, 3]


SEARCH = (
    DATA
    + """
import json, sys
from sklearn.experimental import enable_halving_search_cv  # noqa: F401
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, HalvingGridSearchCV, RandomizedSearchCV
from sklearn.tree import DecisionTreeClassifier

def summary(search):
    results = search.cv_results_
    return {
        "best_params": {k: str(v) for k, v in search.best_params_.items()},
        "best_score": float(search.best_score_),
        "params": [{k: str(v) for k, v in p.items()} for p in results["params"]],
        "mean_test_score": [float(v) for v in results["mean_test_score"]],
        "rank_test_score": [int(v) for v in results["rank_test_score"]],
        # halving: the same candidate again at each iteration, with more resources
        "iter": [int(v) for v in results.get("iter", [0] * len(results["params"]))],
    }

out = {}
if sys.argv[1] == "grid":
    grid = GridSearchCV(
        LogisticRegression(),
        {"C": [0.001, 0.01, 0.1, 1.0, 10.0], "fit_intercept": [True, False]},
        cv=3,
        n_jobs=2,
    )
    grid.fit(X, y)
    out["GridSearchCV"] = summary(grid)
    halving = HalvingGridSearchCV(
        DecisionTreeClassifier(random_state=0),
        {"max_depth": [1, 2, 3, 4], "min_samples_leaf": [1, 5]},
        cv=3, factor=2, random_state=0,
    )
    halving.fit(X, y)
    out["HalvingGridSearchCV"] = summary(halving)
else:
    randomized = RandomizedSearchCV(
        LogisticRegression(), {"C": [0.001, 0.01, 0.1, 1.0, 10.0, 100.0]},
        n_iter=4, cv=3, random_state=0,
    )
    randomized.fit(X, y)
    out["RandomizedSearchCV"] = summary(randomized)
json.dump(out, open("searches.json", "w"))
"""
)


def _check_search(
    workdir: Path, search: dict[str, Any], expected: dict[str, Any], max_runs: int
) -> None:
    """The parent's summary and the child runs of the best ``max_runs`` candidates."""
    parent = show_run(workdir, search["run_id"])
    assert parent["status"] == "FINISHED"
    assert parent["parent_run_id"] is None
    for key, value in expected["best_params"].items():
        assert parent["params"][f"best_{key}"] == value
    assert parent["metrics"]["best_cv_score"] == pytest.approx(expected["best_score"], rel=1e-12)
    assert "training_accuracy_score" in parent["metrics"]
    assert {"cv_results.csv", "model/model.pkl"} <= set(parent["artifacts"])
    csv_path = _artifact_dir(workdir, search["run_id"]) / "cv_results.csv"
    with csv_path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == len(expected["params"])
    assert [float(row["mean_test_score"]) for row in rows] == pytest.approx(
        expected["mean_test_score"], rel=1e-12
    )

    candidates = len(expected["params"])
    order = sorted(range(candidates), key=lambda i: (expected["rank_test_score"][i], i))
    best = order[:max_runs]
    children = [show_run(workdir, child["run_id"]) for child in search["children"]]
    assert len(children) == min(max_runs, candidates)
    seen = []
    for child in children:
        assert child["status"] == "FINISHED"
        assert child["parent_run_id"] == search["run_id"]
        assert child["tags"]["autolog.integration"] == "sklearn"
        # the candidate's own params, and its row of cv_results_
        iteration = int(child["metrics"].get("iter", 0))
        matching = [
            i
            for i in best
            if expected["params"][i] == child["params"]
            and expected["iter"][i] == iteration
            and i not in seen
        ]
        assert len(matching) == 1, (child, [expected["params"][i] for i in best])
        (index,) = matching
        seen.append(index)
        assert child["metrics"]["mean_test_score"] == pytest.approx(
            expected["mean_test_score"][index], rel=1e-12
        )
        assert child["metrics"]["rank_test_score"] == expected["rank_test_score"][index]
    assert sorted(seen) == sorted(best)


def _runs_tree(workdir: Path) -> dict[str, dict[str, Any]]:
    """Top-level runs by name, each with its child runs (summary rows)."""
    runs = list_runs(workdir)
    tree: dict[str, dict[str, Any]] = {}
    for run in runs:
        if run["parent_run_id"] is None:
            assert run["name"] not in tree, run["name"]
            tree[run["name"]] = dict(run, children=[])
    by_id = {run["run_id"]: run for run in tree.values()}
    for run in runs:
        if run["parent_run_id"] is not None:
            assert run["parent_run_id"] in by_id, run  # no grandchildren, no stray parents
            by_id[run["parent_run_id"]]["children"].append(run)
    return tree


def test_grid_and_halving_search_parent_summary_and_best_child_runs(workdir: Path) -> None:
    """GridSearchCV (cells on loky workers) and HalvingGridSearchCV: best_* params,
    best_cv_score, cv_results.csv, the 5 best candidates as child runs, no other run."""
    script = write_script(workdir, "search.py", SEARCH)
    result = run_python([str(script), "grid"], cwd=workdir, env=_autolog_env(), check=True)
    assert "autologagent" not in result.stderr
    expected = json.loads((workdir / "searches.json").read_text())
    tree = _runs_tree(workdir)
    assert set(tree) == {"GridSearchCV", "HalvingGridSearchCV"}
    for name, search in tree.items():
        _check_search(workdir, search, expected[name], max_runs=5)
    grid = show_run(workdir, tree["GridSearchCV"]["run_id"])
    assert grid["params"]["estimator__C"] == "1.0"  # the search's own deep params
    assert grid["params"]["cv"] == "3"


def test_max_tuning_runs_limits_the_child_runs(workdir: Path) -> None:
    script = write_script(workdir, "search.py", SEARCH)
    env = clean_env(AUTOLOG="1", AUTOLOG_TESTING="1", AUTOLOG_MAX_TUNING_RUNS="2")
    run_python([str(script), "randomized"], cwd=workdir, env=env, check=True)
    expected = json.loads((workdir / "searches.json").read_text())
    tree = _runs_tree(workdir)
    assert set(tree) == {"RandomizedSearchCV"}
    search = tree["RandomizedSearchCV"]
    assert len(search["children"]) == 2
    _check_search(workdir, search, expected["RandomizedSearchCV"], max_runs=2)


def test_cross_val_score_on_loky_workers_makes_no_stray_top_level_runs(workdir: Path) -> None:
    """``cross_val_score(..., n_jobs=2)`` called outside any run: each worker's fit is a
    training call of its own, so it makes a run, but a worker never makes a top-level
    run: its runs are child runs of the root process's run (``_runs``: a worker with no
    active run in the root nests under the root's run, named after the script, which the
    root ends with the process). So: one top-level run, and the 5 folds' fits under it."""
    script = write_script(
        workdir,
        "train.py",
        DATA
        + """
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score
scores = cross_val_score(LogisticRegression(), X, y, n_jobs=2)
print(len(scores))
""",
    )
    result = run_python([str(script)], cwd=workdir, env=_autolog_env(), check=True)
    assert result.stdout == "5\n"
    runs = list_runs(workdir)
    top = [run for run in runs if run["parent_run_id"] is None]
    assert len(top) <= 1, top
    assert len(top) == 1  # the folds ran on workers, so the root's run holds them
    (root,) = top
    assert root["name"] == "train.py"
    assert root["status"] == "FINISHED"
    children = [run for run in runs if run["parent_run_id"] is not None]
    assert all(run["parent_run_id"] == root["run_id"] for run in children)
    assert [run["name"] for run in children] == ["LogisticRegression"] * 5
    assert all(run["status"] == "FINISHED" for run in children)


PICKLING = """
import inspect, json, pickle
import joblib
import numpy as np
import sklearn.metrics
from sklearn.base import clone
from sklearn.datasets import make_regression
from sklearn.linear_model import Ridge
from sklearn.metrics import make_scorer, r2_score
from sklearn.metrics._regression import r2_score as defined_r2_score

X, y = make_regression(n_samples=80, n_features=4, noise=5.0, random_state=0)
reg = Ridge(alpha=0.5).fit(X, y)
scorer = make_scorer(r2_score)
halves = [(X[i::2], y[i::2]) for i in range(2)]
parallel = joblib.Parallel(n_jobs=2, backend="loky")(
    joblib.delayed(scorer)(reg, part_X, part_y) for part_X, part_y in halves
)
roundtrip = pickle.loads(pickle.dumps(reg))
print(json.dumps({
    "by_reference": pickle.loads(pickle.dumps(sklearn.metrics.r2_score))
        is sklearn.metrics.r2_score,
    "same_object": r2_score is defined_r2_score,
    "pickled_function": pickle.dumps(sklearn.metrics.r2_score).hex(),
    "metric_signature": str(inspect.signature(r2_score)),
    "metric_doc": (r2_score.__doc__ or "")[:80],
    "scorer": pickle.loads(pickle.dumps(scorer))(reg, X, y),
    "parallel": parallel,
    "direct": [r2_score(part_y, reg.predict(part_X)) for part_X, part_y in halves],
    "clone": clone(reg).get_params() == Ridge(alpha=0.5).get_params(),
    "clone_unfitted": not hasattr(clone(reg), "coef_"),
    "fit_signature": str(inspect.signature(Ridge.fit)),
    "roundtrip": roundtrip.predict(X).tolist() == reg.predict(X).tolist(),
    "pickled_class": pickle.loads(pickle.dumps(Ridge)) is Ridge,
    "pickled_method": pickle.loads(pickle.dumps(Ridge.fit)) == Ridge.fit,
}))
"""


def test_patched_metric_functions_pickle_by_reference_and_run_on_loky(workdir: Path) -> None:
    """Metric functions, scorers and estimators survive pickle, clone and loky as before."""
    script = write_script(workdir, "probe.py", PICKLING)
    plain = json.loads(run_python([str(script)], cwd=workdir, check=True).stdout)
    result = run_python([str(script)], cwd=workdir, env=_autolog_env(), check=True)
    agent = json.loads(result.stdout)
    assert agent == plain
    for key in ("by_reference", "same_object", "clone", "clone_unfitted", "roundtrip"):
        assert agent[key] is True, key
    assert agent["pickled_class"] and agent["pickled_method"]
    assert agent["parallel"] == pytest.approx(agent["direct"], rel=1e-12)
    assert agent["metric_signature"].startswith("(y_true, y_pred, *,")
    # the fit was logged, the scoring in loky workers made no runs of its own
    assert [run["name"] for run in list_runs(workdir)] == ["Ridge"]


def test_ten_fits_in_a_loop_make_ten_runs_with_their_own_params(workdir: Path) -> None:
    """New estimators in a loop, and the same estimator refitted with set_params: a run
    each, each with its C, its model as it was at that fit, and no agent warning."""
    script = write_script(
        workdir,
        "loop.py",
        DATA
        + """
import json
import autologagent
from sklearn.linear_model import LogisticRegression
values = [0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0, 300.0]
run_ids = []
for C in values[:5]:
    LogisticRegression(C=C).fit(X, y)
    run_ids.append(autologagent.last_active_run().info.run_id)
same = LogisticRegression()
for C in values[5:]:
    same.set_params(C=C).fit(X, y)
    run_ids.append(autologagent.last_active_run().info.run_id)
autologagent.flush()  # (load_model right after a fit: see the load_model test)
loaded = [autologagent.load_model(run_id).C for run_id in run_ids]
print(json.dumps({"run_ids": run_ids, "loaded_C": loaded}))
""",
    )
    result = run_python([str(script)], cwd=workdir, env=_autolog_env(), check=True)
    assert result.stderr == ""
    out = json.loads(result.stdout)
    values = [0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0, 300.0]
    assert out["loaded_C"] == values  # each model snapshot taken at its own fit
    runs = list_runs(workdir)
    assert len(runs) == 10
    assert len(set(out["run_ids"])) == 10
    assert {run["run_id"] for run in runs} == set(out["run_ids"])
    for run_id, C in zip(out["run_ids"], values, strict=True):
        run = show_run(workdir, run_id)
        assert run["status"] == "FINISHED"
        assert run["name"] == "LogisticRegression"
        assert run["params"]["C"] == str(C)
        assert "training_accuracy_score" in run["metrics"]


FAILING_FIT = (
    DATA
    + """
import numpy as np
from sklearn.linear_model import LogisticRegression
X_bad = X.copy()
X_bad[3, 2] = np.nan
try:
    LogisticRegression().fit(X_bad, y)
except Exception as exc:
    print(type(exc).__module__, type(exc).__qualname__)
    print(exc)
"""
)


def test_failing_fit_raises_as_without_the_agent_and_the_run_fails(workdir: Path) -> None:
    script = write_script(workdir, "train.py", FAILING_FIT)
    plain = run_python([str(script)], cwd=workdir, check=True)
    agent = run_python([str(script)], cwd=workdir, env=_autolog_env(), check=True)
    assert plain.stdout.startswith("builtins ValueError\n")
    assert "NaN" in plain.stdout
    assert agent.stdout == plain.stdout
    assert agent.stderr == plain.stderr
    run = show_run(workdir)
    assert run["name"] == "LogisticRegression"
    assert run["status"] == "FAILED"
    assert run["tags"]["autolog.exception_class"] == "ValueError"
    assert "NaN" in run["tags"]["autolog.exception_message"]
    assert run["params"]["C"] == "1.0"
    assert not [key for key in run["metrics"] if key.startswith("training_")]
    assert not [path for path in run["artifacts"] if path.startswith("model/")]


def test_html_view_waits_out_the_program_s_next_seconds_then_is_written(workdir: Path) -> None:
    """Nothing waits for ``estimator.html``: it is made a few seconds after the fit
    (or at exit, if the program ends sooner), not while the program goes on."""
    script = write_script(
        workdir,
        "train.py",
        DATA
        + """
import glob, time
from sklearn.linear_model import LogisticRegression
LogisticRegression().fit(X, y)
time.sleep(1.0)
print("right after the fit:", len(glob.glob("autologruns/artifacts/*/estimator.html")))
deadline = time.monotonic() + 30
while not glob.glob("autologruns/artifacts/*/estimator.html") and time.monotonic() < deadline:
    time.sleep(0.2)
print("while the program runs:", len(glob.glob("autologruns/artifacts/*/estimator.html")))
""",
    )
    result = run_python([str(script)], cwd=workdir, env=_autolog_env(), check=True)
    assert result.stdout.splitlines() == ["right after the fit: 0", "while the program runs: 1"]


def test_html_view_of_estimators_from_the_script_and_from_its_own_module(workdir: Path) -> None:
    """``estimator.html`` for an estimator class defined in the script (``__main__``, which
    only the training process can load) and for one in a module beside the script (which
    the drawing process loads through the program's ``sys.path``)."""
    write_script(
        workdir,
        "my_models.py",
        """
        from sklearn.base import BaseEstimator, RegressorMixin

        class ModuleMean(RegressorMixin, BaseEstimator):
            def __init__(self, shift=0.0):
                self.shift = shift

            def fit(self, X, y):
                self.mean_ = float(y.mean()) + self.shift
                return self

            def predict(self, X):
                return [self.mean_] * len(X)
        """,
    )
    script = write_script(
        workdir,
        "fit_own.py",
        DATA
        + """
from sklearn.base import BaseEstimator, RegressorMixin
from my_models import ModuleMean

class ScriptMean(RegressorMixin, BaseEstimator):
    def __init__(self, scale=1.0):
        self.scale = scale

    def fit(self, X, y):
        self.mean_ = float(y.mean()) * self.scale
        return self

    def predict(self, X):
        return [self.mean_] * len(X)

# Only scikit-learn's own classes are patched: a Pipeline holding each is the run.
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
make_pipeline(StandardScaler(), ScriptMean(scale=2.0)).fit(X, y)
make_pipeline(StandardScaler(), ModuleMean(shift=1.0)).fit(X, y)
""",
    )
    run_python([str(script)], cwd=workdir, env=_autolog_env(), check=True)
    runs = list_runs(workdir)
    assert [run["name"] for run in runs] == ["Pipeline", "Pipeline"]
    views = [(_artifact_dir(workdir, run["run_id"]) / "estimator.html").read_text() for run in runs]
    assert sum("ScriptMean" in view for view in views) == 1
    assert sum("ModuleMean" in view for view in views) == 1


def test_html_view_is_sklearns_own_and_leaves_the_fitted_estimator_alone(workdir: Path) -> None:
    """The agent computes each property of the view once (see ``_sklearn_view``): the page
    must still be exactly scikit-learn's, fitted attributes and properties included, for a
    forest inside a Pipeline with a ColumnTransformer, and the user's objects keep their
    classes."""
    script = write_script(
        workdir,
        "forest.py",
        """
import re
import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.utils import estimator_html_repr

frame = pd.DataFrame({"size": np.arange(90.0), "colour": ["red", "green", "blue"] * 30})
labels = np.arange(90) % 3
pipe = Pipeline([
    ("columns", ColumnTransformer([("num", StandardScaler(), ["size"]),
                                   ("cat", OneHotEncoder(), ["colour"])])),
    ("forest", RandomForestClassifier(n_estimators=20, random_state=0)),
]).fit(frame, labels)
with open("expected.html", "w") as out:
    out.write(estimator_html_repr(pipe))
forest = pipe.named_steps["forest"]
untouched = not any("autolog" in key for key in vars(forest))
print(type(pipe) is Pipeline, type(forest) is RandomForestClassifier, untouched)
""",
    )
    result = run_python([str(script)], cwd=workdir, env=_autolog_env(), check=True)
    assert result.stdout.split() == ["True", "True", "True"]
    (run,) = list_runs(workdir)

    def without_ids(html: str) -> str:  # each rendering numbers its containers anew
        return re.sub(r"sk-(container|estimator)-id-\d+", "sk-id", html)

    logged = (_artifact_dir(workdir, run["run_id"]) / "estimator.html").read_text()
    expected = (workdir / "expected.html").read_text()
    assert "feature_importances_" in expected  # a property, listed among fitted attributes
    assert without_ids(logged) == without_ids(expected)
