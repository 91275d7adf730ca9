"""scikit-learn: real estimators, fitted in real processes under the agent."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import EXAMPLES, clean_env, list_runs, run_python, show_run, write_script

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
