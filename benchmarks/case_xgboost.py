"""Case ``xgboost_train``: what autologging costs ``xgboost.train`` itself.

500 boosting rounds on a small data set with two evaluation sets: the ``train``
call holds everything the agent does on the training thread (the run's start,
the per-round callback, 2 series x 500 points, and the end-of-training capture:
the booster's bytes and its feature importance). See ``_boosting_bench``.
"""

from __future__ import annotations

from _boosting_bench import describe_train, library_check, train_evaluate, train_variants
from _harness import REPORT, Case

CASES = [
    Case(
        name="xgboost_train",
        description=describe_train("xgboost", "mlflow.xgboost.autolog"),
        target="≤ ×1.05 on the train call (median ratio)",
        variants=train_variants("xgboost"),
        evaluate=train_evaluate("xgboost_train"),
        measure=REPORT,
        runs=9,
        quick_runs=3,
        warmup=1,
        timeout_s=600,
        check=library_check("xgboost", "sklearn"),
    )
]
