"""Hyperparameter searches: the parent run's summary and a child run per top candidate.

For ``GridSearchCV``, ``RandomizedSearchCV`` and the halving searches (anything
with ``cv_results_``), as MLflow does: the best candidate's params as
``best_<param>`` params, ``best_cv_score`` as a metric, ``cv_results.csv`` as an
artifact, and a finished child run for each of the ``max_tuning_runs`` best
candidates (by rank) with its params and every numeric column of its row of
``cv_results_`` (mean and per-split scores, fit and score times, rank).
"""

from __future__ import annotations

import csv
import io
from typing import Any

from autologagent import _artifacts, _background


def is_search(estimator: Any) -> bool:
    """A fitted hyperparameter search (it has ``cv_results_`` and a space of candidates)."""
    return hasattr(estimator, "cv_results_") and (
        hasattr(estimator, "param_grid") or hasattr(estimator, "param_distributions")
    )


def _rank_key(search: Any, results: dict[str, Any]) -> str | None:
    refit = getattr(search, "refit", True)
    for key in (f"rank_test_{refit}" if isinstance(refit, str) else "", "rank_test_score"):
        if key and key in results:
            return key
    ranks = [key for key in results if key.startswith("rank_test_")]
    return ranks[0] if ranks else None


def _number(value: Any) -> float | None:
    """A numeric cell as a float (NaN kept: a failed fit's score), else None."""
    if isinstance(value, (str, bytes)):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def log_search(search: Any, run_id: str, max_tuning_runs: int | None) -> None:
    """Log the search's summary to ``run_id`` and its best candidates as child runs."""
    from autologagent import _fluent, _runs

    results = dict(search.cv_results_)
    best_params = getattr(search, "best_params_", None)
    if isinstance(best_params, dict):
        _fluent.log_params(
            {f"best_{key}": value for key, value in best_params.items()}, run_id=run_id
        )
    best_score = getattr(search, "best_score_", None)
    if _number(best_score) is not None:
        _fluent.log_metric("best_cv_score", float(best_score), step=0, run_id=run_id)
    _background.submit(
        lambda: _artifacts.write_text(run_id, "cv_results.csv", _csv(results)),
        "writing cv_results.csv",
    )
    rank_key = _rank_key(search, results)
    candidates = results.get("params", [])
    order = list(range(len(candidates)))
    if rank_key is not None:
        order.sort(key=lambda index: (results[rank_key][index], index))
    if max_tuning_runs is not None:
        order = order[:max_tuning_runs]
    inner = getattr(search, "estimator", None)
    inner_class = type(inner)
    tags = {
        "estimator_name": inner_class.__name__,
        "estimator_class": f"{inner_class.__module__}.{inner_class.__qualname__}",
        "autolog.integration": "sklearn",
        "autolog.search_parent": type(search).__name__,
    }
    metric_columns = [key for key in results if key != "params" and not key.startswith("param_")]
    for position, index in enumerate(order, start=1):
        params = {str(key): str(value) for key, value in candidates[index].items()}
        metrics = {}
        for key in metric_columns:
            value = _number(results[key][index])
            if value is not None:
                metrics[key] = value
        child_tags = dict(tags, **{"autolog.search_rank": str(position)})
        _runs.record_child_run(
            run_id, f"{inner_class.__name__}-candidate-{index}", params, metrics, child_tags
        )


def _csv(results: dict[str, Any]) -> str:
    """cv_results_ as CSV, one row per candidate (pandas not needed)."""
    columns = list(results)
    rows = len(results["params"]) if "params" in results else 0
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(columns)
    for index in range(rows):
        writer.writerow([_cell(results[column][index]) for column in columns])
    return buffer.getvalue()


def _cell(value: Any) -> Any:
    import numpy

    if value is None or value is numpy.ma.masked:
        return ""
    return value.item() if isinstance(value, numpy.generic) else value
