"""Workload of case ``lightgbm_logistic``: LightGBM's logistic-regression example.

After ``examples/python-guide/logistic_regression.py`` in microsoft/LightGBM
(binary against xentropy objectives on simulated data): 23 ``lightgbm.train``
calls of 5 rounds each on 1,000 rows, each followed by a prediction. Many short
trainings are where a per-run cost shows: under MLflow's autologging each of
these runs costs seconds. Prints nothing; the harness times the whole process.
"""

import time

import lightgbm as lgb
import numpy as np
import pandas as pd
from scipy.special import expit

np.random.seed(0)
N = 1000
X = pd.DataFrame({"continuous": range(N), "categorical": np.repeat([0, 1, 2, 3, 4], N / 5)})
CATEGORICAL_EFFECTS = [-1, -1, -2, -2, 2]
LINEAR_TERM = np.array(
    [
        -0.5 + 0.01 * X["continuous"][k] + CATEGORICAL_EFFECTS[X["categorical"][k]]
        for k in range(X.shape[0])
    ]
) + np.random.normal(0, 1, X.shape[0])
TRUE_PROB = expit(LINEAR_TERM)
Y = np.random.binomial(1, TRUE_PROB, size=N)
DATA = {
    "X": X,
    "probability_labels": TRUE_PROB,
    "binary_labels": Y,
    "lgb_with_binary_labels": lgb.Dataset(X, Y),
    "lgb_with_probability_labels": lgb.Dataset(X, TRUE_PROB),
}


def log_loss(preds: np.ndarray, labels: np.ndarray) -> float:
    """Logarithmic loss with not necessarily binary labels."""
    return float(-np.sum(labels * np.log(preds)) / len(preds))


def experiment(objective: str, label_type: str, data: dict) -> dict:
    """Train 5 rounds with ``objective`` on ``label_type`` labels; time and score it."""
    np.random.seed(0)
    lgb_data = data[f"lgb_with_{label_type}_labels"]
    params = {"objective": objective, "feature_fraction": 1, "bagging_fraction": 1, "verbose": -1}
    time_zero = time.time()
    gbm = lgb.train(params, lgb_data, num_boost_round=5)
    y_fitted = gbm.predict(data["X"])
    y_true = data[f"{label_type}_labels"]
    return {
        "time": time.time() - time_zero,
        "correlation": np.corrcoef(y_fitted, y_true)[0, 1],
        "logloss": log_loss(y_fitted, y_true),
    }


experiment("binary", label_type="binary", data=DATA)
experiment("xentropy", label_type="binary", data=DATA)
experiment("xentropy", label_type="probability", data=DATA)
K = 10
A = [experiment("binary", label_type="binary", data=DATA)["time"] for _ in range(K)]
B = [experiment("xentropy", label_type="binary", data=DATA)["time"] for _ in range(K)]
