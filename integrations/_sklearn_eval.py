"""Post-training metrics: evaluating a logged model logs to the run that trained it.

MLflow's names, after the caller's variable names:

- ``clf.score(X_val, y_val)`` -> ``RandomForestClassifier_score_X_val``;
- ``accuracy_score(y_val, clf.predict(X_val))`` -> ``accuracy_score_X_val``: a
  prediction made by a logged model is remembered (weakly, by identity) with the
  model's run and the name of the data it was made from, and a metric function
  given that prediction logs its result there;
- the same metric on the same data again gets a call index: ``..._X_val-2``.

The data evaluated on is also recorded as an ``eval`` dataset input of the run.
Only the outermost call is observed (``score`` calls ``predict`` inside), and
nothing is observed inside a training call, so the agent's own training metrics
and a search's internal scoring never log here.
"""

from __future__ import annotations

import numbers
import threading
import weakref
from typing import Any

from autologagent import _datasets, _patching

UNKNOWN_DATASET = "unknown_dataset"
PREDICT_METHODS = ("predict", "predict_proba", "predict_log_proba", "decision_function")
SCORE_METHOD = "score"
METRIC_SUFFIXES = ("_score", "_error", "_loss")

_lock = threading.Lock()
# id(estimator) -> (weak reference to it, run id)
_models: dict[int, tuple[weakref.ref, str]] = {}
# id(prediction) -> (weak reference to it, run id, dataset name)
_predictions: dict[int, tuple[weakref.ref, str, str]] = {}
# (run id, metric key) -> calls so far, for MLflow's call index suffix
_calls: dict[tuple[str, str], int] = {}
# (run id, dataset name, digest) already recorded as eval inputs
_eval_inputs: set[tuple[str, str, str]] = set()


def _forget(table: dict[int, Any], key: int) -> Any:
    def callback(_ref: weakref.ref) -> None:
        with _lock:
            entry = table.get(key)
            if entry is not None and entry[0] is _ref:
                del table[key]

    return callback


def remember_model(estimator: Any, run_id: str) -> None:
    """Later ``score``/``predict`` + metric calls on ``estimator`` log to ``run_id``."""
    key = id(estimator)
    try:
        ref = weakref.ref(estimator, _forget(_models, key))
    except TypeError:
        return
    with _lock:
        _models[key] = (ref, run_id)


def run_of(estimator: Any) -> str | None:
    entry = _models.get(id(estimator))
    if entry is None or entry[0]() is not estimator:
        return None
    return entry[1]


def _remember_prediction(prediction: Any, run_id: str, dataset: str) -> None:
    key = id(prediction)
    try:
        ref = weakref.ref(prediction, _forget(_predictions, key))
    except TypeError:
        return  # a list or a scalar: not trackable without keeping it alive
    with _lock:
        _predictions[key] = (ref, run_id, dataset)


def _prediction_source(value: Any) -> tuple[str, str] | None:
    entry = _predictions.get(id(value))
    if entry is None or entry[0]() is not value:
        return None
    return entry[1], entry[2]


def _dataset_name(value: Any) -> str:
    return _datasets.variable_name(value, _datasets.caller_frame()) or UNKNOWN_DATASET


def _first_argument(args: tuple, kwargs: dict, name: str) -> Any:
    if args:
        return args[0]
    return kwargs.get(name)


def _log(run_id: str, key: str, value: float) -> None:
    from autologagent import _fluent

    with _lock:
        count = _calls.get((run_id, key), 0) + 1
        _calls[(run_id, key)] = count
    _fluent.log_metric(key if count == 1 else f"{key}-{count}", value, step=0, run_id=run_id)


def _record_eval_input(run_id: str, data: Any, name: str) -> None:
    from autologagent import _bootstrap, _writer

    if data is None or not _bootstrap.config().get("log_datasets"):
        return
    entry = _datasets.record(run_id, data, name, "eval")
    seen = (run_id, name, entry[2])
    with _lock:
        if seen in _eval_inputs:
            return
        _eval_inputs.add(seen)
    _writer.enqueue("inputs", entry)


class _PredictObserver(_patching.CallObserver):
    def __init__(self, run_id: str, dataset: str) -> None:
        self.run_id = run_id
        self.dataset = dataset

    @classmethod
    def for_call(cls, estimator: Any, args: tuple, kwargs: dict) -> _PredictObserver | None:
        if not _models:
            return None
        run_id = run_of(estimator)
        if run_id is None:
            return None
        return cls(run_id, _dataset_name(_first_argument(args, kwargs, "X")))

    def succeeded(self, result: Any) -> None:
        _remember_prediction(result, self.run_id, self.dataset)


class _ScoreObserver(_patching.CallObserver):
    def __init__(self, estimator: Any, run_id: str, data: Any) -> None:
        self.key_prefix = f"{type(estimator).__name__}_score_"
        self.run_id = run_id
        self.data = data
        self.dataset = _dataset_name(data)

    @classmethod
    def for_call(cls, estimator: Any, args: tuple, kwargs: dict) -> _ScoreObserver | None:
        if not _models:
            return None
        run_id = run_of(estimator)
        if run_id is None:
            return None
        return cls(estimator, run_id, _first_argument(args, kwargs, "X"))

    def succeeded(self, result: Any) -> None:
        if isinstance(result, numbers.Real):
            _log(self.run_id, self.key_prefix + self.dataset, float(result))
            _record_eval_input(self.run_id, self.data, self.dataset)


class _MetricObserver(_patching.CallObserver):
    def __init__(self, name: str, run_id: str, dataset: str) -> None:
        self.name = name
        self.run_id = run_id
        self.dataset = dataset

    def succeeded(self, result: Any) -> None:
        if isinstance(result, numbers.Real) and not isinstance(result, bool):
            _log(self.run_id, f"{self.name}_{self.dataset}", float(result))


def _metric_observer_for(name: str) -> _patching.ObserverFactory:
    def for_call(_instance: Any, args: tuple, kwargs: dict) -> _MetricObserver | None:
        if not _predictions:
            return None
        for value in (*args, *kwargs.values()):
            source = _prediction_source(value)
            if source is not None:
                return _MetricObserver(name, *source)
        return None

    return for_call


predict_wrapper = _patching.observing_wrapper(
    "sklearn post-training metrics", _PredictObserver.for_call
)
score_wrapper = _patching.observing_wrapper(
    "sklearn post-training metrics", _ScoreObserver.for_call
)


def is_metric_function(name: str, value: Any) -> bool:
    """A metric function of ``sklearn.metrics`` whose scalar result is worth logging."""
    return (
        callable(value)
        and not isinstance(value, type)
        and name.endswith(METRIC_SUFFIXES)
        and not name.startswith(("get_", "make_", "check_"))
    )


def metric_wrapper(name: str) -> Any:
    return _patching.observing_wrapper(
        f"sklearn post-training metric {name}", _metric_observer_for(name)
    )
