"""scikit-learn: training and post-training metrics, with the values sklearn itself gives.

Each test trains in a real process under the agent, then re-computes here, without
the agent, what MLflow's autologging would log, and compares.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import clean_env, cli, list_runs, run_python, show_run, write_script

REGRESSION = """
import numpy as np
from sklearn.datasets import make_regression
X, y = make_regression(n_samples=150, n_features=5, noise=20.0, random_state=0)
weights = np.random.RandomState(1).uniform(0.1, 3.0, size=len(y))
X_train, X_test = X[:100], X[100:]
y_train, y_test = y[:100], y[100:]
w_train = weights[:100]
"""

REGRESSOR = """
from sklearn.linear_model import Ridge
reg = Ridge(alpha=3.0)
reg.fit(X_train, y_train, sample_weight=w_train)
"""

POST_TRAINING = """
from sklearn.metrics import mean_squared_error
print(mean_squared_error(y_test, reg.predict(X_test)))
print(mean_squared_error(y_test, reg.predict(X_test)))
"""

CLUSTERING = """
from sklearn.datasets import make_blobs
from sklearn.cluster import KMeans
from sklearn.ensemble import IsolationForest
from sklearn.neighbors import LocalOutlierFactor
X, _ = make_blobs(n_samples=150, centers=3, n_features=4, random_state=0)
kmeans = KMeans(n_clusters=3, n_init=2, random_state=0).fit(X)
forest = IsolationForest(n_estimators=20, contamination=0.1, random_state=0).fit(X)
lof = LocalOutlierFactor(n_neighbors=10, contamination=0.05).fit(X)
"""


def _autolog_env() -> dict[str, str]:
    return clean_env(AUTOLOG="1", AUTOLOG_TESTING="1")


def _here(source: str) -> dict[str, Any]:
    """Run ``source`` in this process, without the agent, and return its names."""
    namespace: dict[str, Any] = {}
    exec(source, namespace)
    return namespace


def test_regressor_training_metrics_use_the_sample_weights(workdir: Path) -> None:
    """MSE, RMSE, MAE, R² and score on the training data, weighted as the fit was; then
    ``mean_squared_error(y_test, reg.predict(X_test))`` logs to the regressor's run, and
    a second call gets MLflow's call index."""
    script = write_script(workdir, "train.py", REGRESSION + REGRESSOR + POST_TRAINING)
    result = run_python([str(script)], cwd=workdir, env=_autolog_env(), check=True)
    assert result.stderr == ""
    runs = list_runs(workdir)
    assert [run["name"] for run in runs] == ["Ridge"]
    run = show_run(workdir, runs[0]["run_id"])
    assert run["status"] == "FINISHED"
    assert run["params"]["alpha"] == "3.0"

    from sklearn import metrics

    here = _here(REGRESSION + REGRESSOR)
    reg, X_train, y_train, w = here["reg"], here["X_train"], here["y_train"], here["w_train"]
    pred = reg.predict(X_train)
    expected = {
        "training_mean_squared_error": metrics.mean_squared_error(y_train, pred, sample_weight=w),
        "training_root_mean_squared_error": metrics.root_mean_squared_error(
            y_train, pred, sample_weight=w
        ),
        "training_mean_absolute_error": metrics.mean_absolute_error(y_train, pred, sample_weight=w),
        "training_r2_score": metrics.r2_score(y_train, pred, sample_weight=w),
        "training_score": reg.score(X_train, y_train, sample_weight=w),
    }
    for key, value in expected.items():
        assert run["metrics"][key] == pytest.approx(value, rel=1e-9), key
    # the weights matter here: unweighted values would differ
    unweighted = metrics.mean_squared_error(y_train, pred)
    assert run["metrics"]["training_mean_squared_error"] != pytest.approx(unweighted, rel=1e-3)

    test_mse = metrics.mean_squared_error(here["y_test"], reg.predict(here["X_test"]))
    printed = [float(line) for line in result.stdout.split()]
    assert printed == pytest.approx([test_mse, test_mse], rel=1e-12)
    assert run["metrics"]["mean_squared_error_X_test"] == pytest.approx(test_mse, rel=1e-9)
    assert run["metrics"]["mean_squared_error_X_test-2"] == pytest.approx(test_mse, rel=1e-9)
    assert not [key for key in run["metrics"] if key.endswith("-3")]
    history = cli(workdir, "runs", "history", run["run_id"], "mean_squared_error_X_test")
    assert len(history) == 1


def test_clusterer_and_outlier_detector_training_metrics(workdir: Path) -> None:
    """KMeans: score and the silhouette, Calinski-Harabasz and Davies-Bouldin indices of its
    labels; IsolationForest and LocalOutlierFactor: the fraction of outliers flagged."""
    script = write_script(workdir, "train.py", CLUSTERING)
    run_python([str(script)], cwd=workdir, env=_autolog_env(), check=True)
    runs = {run["name"]: run for run in list_runs(workdir)}
    assert set(runs) == {"KMeans", "IsolationForest", "LocalOutlierFactor"}

    from sklearn import metrics

    here = _here(CLUSTERING)
    X, kmeans, forest, lof = here["X"], here["kmeans"], here["forest"], here["lof"]

    clusters = show_run(workdir, runs["KMeans"]["run_id"])
    assert clusters["params"]["n_clusters"] == "3"
    expected = {
        "training_score": kmeans.score(X),
        "training_silhouette_score": metrics.silhouette_score(X, kmeans.labels_),
        "training_calinski_harabasz_score": metrics.calinski_harabasz_score(X, kmeans.labels_),
        "training_davies_bouldin_score": metrics.davies_bouldin_score(X, kmeans.labels_),
    }
    for key, value in expected.items():
        assert clusters["metrics"][key] == pytest.approx(value, rel=1e-9), key
    assert "model/model.pkl" in clusters["artifacts"]

    outliers = show_run(workdir, runs["IsolationForest"]["run_id"])
    fraction = float((forest.predict(X) == -1).mean())
    assert 0 < fraction < 0.5
    assert outliers["metrics"]["training_outlier_fraction"] == pytest.approx(fraction, rel=1e-12)

    neighbours = show_run(workdir, runs["LocalOutlierFactor"]["run_id"])
    fraction = float((lof.negative_outlier_factor_ < lof.offset_).mean())
    assert 0 < fraction < 0.5
    assert neighbours["metrics"]["training_outlier_fraction"] == pytest.approx(fraction, rel=1e-12)
