"""Child process of the ``xgboost_train`` and ``lightgbm_train`` cases: one timed training.

Run as ``python _child_boosting.py {xgboost|lightgbm} ROUNDS [mlflow]`` (under the
agent with ``python -m autologagent``, or with ``mlflow`` last for MLflow's
autologging, turned on before the data is made). Builds a small data set (1,000
rows, 20 features, 3 classes; a regression for LightGBM), trains ROUNDS boosting
rounds with two evaluation sets (the training set and a held-out set), and prints
one JSON object: ``train_s``, the wall time of the ``train`` call alone, which is
where the agent's per-round callback and its end-of-training capture run, and
``train_cpu_s``, the CPU time of the whole process over the same call (all
threads: the agent's writer and background threads count too).

Training uses one thread (``nthread``/``num_threads`` = 1): on a small data set
more threads gain little, and on a shared 2-core machine OpenMP's threads make
wall times swing by more than the 5 % at stake.
"""

from __future__ import annotations

import json
import sys
import time


def xgboost_train(rounds: int) -> tuple[float, float]:
    import xgboost as xgb
    from sklearn.datasets import make_classification

    X, y = make_classification(
        n_samples=1000, n_features=20, n_informative=6, n_classes=3, random_state=0
    )
    dtrain = xgb.DMatrix(X[:800], label=y[:800])
    dval = xgb.DMatrix(X[800:], label=y[800:])
    params = {
        "objective": "multi:softprob",
        "num_class": 3,
        "max_depth": 4,
        "eta": 0.1,
        "nthread": 1,
    }
    start, cpu = time.perf_counter(), time.process_time()
    xgb.train(
        params,
        dtrain,
        num_boost_round=rounds,
        evals=[(dtrain, "train"), (dval, "val")],
        verbose_eval=False,
    )
    return time.perf_counter() - start, time.process_time() - cpu


def lightgbm_train(rounds: int) -> tuple[float, float]:
    import lightgbm as lgb
    from sklearn.datasets import make_regression

    X, y = make_regression(n_samples=1000, n_features=20, noise=10.0, random_state=0)
    train_set = lgb.Dataset(X[:800], y[:800])
    valid_set = lgb.Dataset(X[800:], y[800:], reference=train_set)
    params = {"objective": "regression", "num_leaves": 15, "verbose": -1, "num_threads": 1}
    start, cpu = time.perf_counter(), time.process_time()
    lgb.train(
        params,
        train_set,
        num_boost_round=rounds,
        valid_sets=[train_set, valid_set],
        valid_names=["train", "val"],
    )
    return time.perf_counter() - start, time.process_time() - cpu


def main() -> None:
    library, rounds = sys.argv[1], int(sys.argv[2])
    if len(sys.argv) > 3 and sys.argv[3] == "mlflow":
        import mlflow

        mlflow.set_tracking_uri("sqlite:///mlflow.db")
        getattr(mlflow, library).autolog()
    train = xgboost_train if library == "xgboost" else lightgbm_train
    wall, cpu = train(rounds)
    print(json.dumps({"train_s": wall, "train_cpu_s": cpu}))


if __name__ == "__main__":
    main()
