"""XGBoost: ``xgboost.train`` and ``xgboost.cv``, and the scikit-learn wrappers' ``fit``.

``train`` and ``cv`` are wrapped where they are defined (``xgboost.training``)
and where users reach them (``xgboost.train``), with the same wrapper object,
so that pickling by reference finds it under both names. The scikit-learn
wrappers (``XGBClassifier``, ``XGBRegressor``, ``XGBRanker``... each class of
``xgboost.sklearn`` that defines ``fit``) make one run per outermost ``fit``:
the ``xgboost.train`` that ``fit`` calls inside logs nothing of its own.

A native ``train``'s run holds, as MLflow's: every booster param and the call's
other arguments (``num_boost_round``, ``early_stopping_rounds``...) as params;
one series per evaluation set and metric (``train-mlogloss``, ``val-mlogloss``),
a point per round, appended by a ``TrainingCallback`` the agent adds after the
user's own callbacks; ``best_iteration``, ``stopped_iteration`` and
``best_score`` when early stopping is on; feature importance of every type; the
training and evaluation DMatrix as dataset inputs; and the booster in XGBoost's
own format (``model/model.ubj``), which ``autologagent.load_model`` loads back.
``cv`` logs its params and the per-round mean and standard deviation
(``train-mlogloss-mean``, ``test-mlogloss-std``). A wrapper's ``fit`` logs
``get_params()``, its eval sets' series (``validation_0-mlogloss``), the
scikit-learn training metrics, the data, importance and the model (loaded back
as the same estimator class).
"""

from __future__ import annotations

import json
import os
import sys
import time
from types import ModuleType
from typing import Any

from autologagent import _bootstrap, _errors, _patching

from . import _boosting

NAME = "xgboost"
# The XGBoost releases this integration is tested with, (major, minor) inclusive.
SUPPORTED = ((2, 0), (3, 2))
DEFINED_IN = "xgboost.training"
NATIVE_FUNCTIONS = ("train", "cv")
SKLEARN_MODULE = "xgboost.sklearn"
PREDICT_METHODS = ("predict", "predict_proba")
IMPORTANCE_TYPES = ("weight", "gain", "cover", "total_gain", "total_cover")
MODEL_FILE = "model.ubj"
BOOSTER_CLASS = "xgboost.core.Booster"
_LOADER = "autologagent.integrations.xgboost:load_model_file"


def patch_module(module: ModuleType) -> None:
    """Wrap ``train``/``cv`` where defined and re-exported; wrap the estimators' ``fit``."""
    if module.__name__ == "xgboost":
        _check_version(module)
    _boosting.patch_library(
        module,
        NAME,
        DEFINED_IN,
        _NATIVE_WRAPPERS,
        SKLEARN_MODULE,
        "XGBModel",
        _fit_wrapper,
        PREDICT_METHODS,
    )


def unpatch() -> None:
    """Restore every original function and method."""
    _patching.unpatch(NAME)


def autolog(disable: bool = False, **options: Any) -> None:
    """Options for XGBoost alone; they supersede ``autologagent.autolog(...)``."""
    _bootstrap.autolog_integration(NAME, disable=disable, **options)


def _check_version(module: ModuleType) -> None:
    _patching.warn_if_untested(module, "XGBoost", SUPPORTED, "xgboost-version")


# --- the per-round callback ------------------------------------------------------

_callback_class: type | None = None


def _make_callback(series: _boosting.Series) -> Any:
    """The agent's ``TrainingCallback`` (the class is made once XGBoost is loaded)."""
    global _callback_class
    if _callback_class is None:
        from xgboost.callback import TrainingCallback

        class AutologCallback(TrainingCallback):
            """Appends each round's evaluation results to the run's series; never stops training.

            A round's cost: per series, a dict lookup and a tuple on the writer's queue.
            """

            def __init__(self, series: _boosting.Series) -> None:
                super().__init__()
                self.series = series
                self.history: Any = None

            def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
                series = self.series
                series.rounds += 1
                self.history = evals_log
                if epoch % series.every:
                    return False
                try:
                    run_id, keys, append = series.run_id, series.keys, series.append
                    now = time.time()
                    for data, metrics in evals_log.items():
                        for metric, values in metrics.items():
                            value = values[-1]
                            if type(value) is tuple:  # cv: (mean, std)
                                series._add(data, metric, value, epoch, now)
                                continue
                            key = keys.get((data, metric, "")) or series.key(data, metric)
                            append((run_id, key, float(value), epoch, now))
                    series.last_logged = epoch
                except Exception as exc:
                    _errors.report(exc, "xgboost autologging (per-round metrics)")
                return False

            def after_training(self, model: Any) -> Any:
                # The last round when sampling skipped it, or rounds a user's callback
                # hid by stopping training before this one was called.
                if self.history is not None:
                    try:
                        self.series.log_history(self.history)
                    except Exception as exc:
                        _errors.report(exc, "xgboost autologging (last round)")
                return model

        _callback_class = AutologCallback
    return _callback_class(series)


# --- native train / cv ------------------------------------------------------------


class _NativeRun(_boosting.BoosterRun):
    integration = NAME
    unlogged = frozenset(
        {
            "params",
            "dtrain",
            "evals",
            "obj",
            "feval",
            "evals_result",
            "xgb_model",
            "callbacks",
            "learning_rates",
            "custom_metric",
            "folds",
            "fpreproc",
        }
    )

    @classmethod
    def original(cls, kind: str) -> Any:
        module = sys.modules[DEFINED_IN]
        return _boosting.unwrapped(getattr(module, kind))

    def make_callback(self, series: _boosting.Series) -> Any:
        return _make_callback(series)

    def log_booster(self, booster: Any) -> None:
        arguments = self.arguments_by_name
        run_id = self.run_id
        self._log_early_stopping(booster, arguments)
        _log_importance(run_id, booster)
        dtrain = arguments.get("dtrain")
        if _boosting.option("log_datasets", NAME):
            _log_datasets(run_id, dtrain, arguments.get("evals") or ())
        if _boosting.option("log_models", NAME):
            signature = {"inputs": _dmatrix_schema(dtrain)} if dtrain is not None else None
            _log_model(run_id, booster, BOOSTER_CLASS, ["xgboost"], signature)

    def _log_early_stopping(self, booster: Any, arguments: dict[str, Any]) -> None:
        if not _uses_early_stopping(
            arguments.get("early_stopping_rounds"), arguments.get("callbacks")
        ):
            return
        best = booster.attr("best_iteration")
        if best is None or self.callback is None or self.callback.history is None:
            return
        history = self.callback.history
        _early_stopping(self.run_id, int(best), booster.attr("best_score"), history)


def _uses_early_stopping(rounds: Any, callbacks: Any) -> bool:
    if rounds:
        return True
    from xgboost.callback import EarlyStopping

    return any(isinstance(callback, EarlyStopping) for callback in callbacks or ())


def _early_stopping(run_id: str, best: int, best_score: Any, history: Any) -> None:
    """MLflow's names: rounds count from 0 in XGBoost, so stopped = rounds - 1."""
    rounds = _boosting.history_length(history)
    if rounds == 0:
        return
    best_values = {
        _boosting.metric_key(data, metric): float(values[best])
        for data, metrics in history.items()
        for metric, values in metrics.items()
        if best < len(values) and not isinstance(values[best], tuple)
    }
    _boosting.log_early_stopping(
        run_id,
        best_iteration=best,
        stopped_iteration=rounds - 1,
        best_values=best_values,
        extra_step=rounds,
        best_score=float(best_score) if best_score is not None else None,
    )


def _log_importance(run_id: str, booster: Any) -> None:
    """Every importance type the booster has (a linear booster has ``weight`` only)."""
    importances: dict[str, dict[str, Any]] = {}
    for kind in IMPORTANCE_TYPES:
        try:
            importances[kind] = booster.get_score(importance_type=kind)
        except Exception:
            continue
    _boosting.log_importance(run_id, importances)


def _log_datasets(run_id: str, dtrain: Any, evals: Any) -> None:
    from autologagent import _datasets, _writer

    frame = _datasets.caller_frame()
    if dtrain is not None:
        name = _datasets.variable_name(dtrain, frame) or "dtrain"
        _writer.enqueue("inputs", _dmatrix_record(run_id, dtrain, name, "train"))
    for pair in evals:
        matrix, name = pair[0], str(pair[1])
        if matrix is dtrain:
            continue
        _writer.enqueue("inputs", _dmatrix_record(run_id, matrix, name, "eval"))


def _dmatrix_record(run_id: str, matrix: Any, name: str, context: str) -> tuple[str, ...]:
    return _boosting.dataset_record(
        run_id,
        name,
        context,
        "xgboost.DMatrix",
        matrix.num_row(),
        matrix.num_col(),
        matrix.feature_names,
        matrix.feature_types,
        matrix.get_label(),
    )


def _dmatrix_schema(matrix: Any) -> dict[str, Any]:
    return _boosting.matrix_schema(matrix.feature_names, matrix.feature_types, matrix.num_col())


def _log_model(
    run_id: str,
    booster: Any,
    model_class: str,
    modules: list[str],
    signature: dict[str, Any] | None,
) -> None:
    """The booster in XGBoost's binary JSON, captured now; written on the background thread."""
    import xgboost
    from autologagent import _models

    data = bytes(booster.save_raw("ubj"))
    _models.log_model(
        run_id,
        data,
        MODEL_FILE,
        flavor="xgboost",
        loader=_LOADER,
        modules=modules,
        flavor_info={
            "xgb_version": xgboost.__version__,
            "model_class": model_class,
            "model_format": "ubj",
        },
        signature=signature,
    )


def load_model_file(data: bytes, path: str) -> Any:
    """A logged model: an ``xgboost.Booster``, or the scikit-learn estimator it came from.

    The estimator's class is read from the model's metadata, and only a class of
    ``xgboost`` that derives from ``XGBModel`` is ever built from it.
    """
    import xgboost

    model_class = _recorded_class(path)
    if model_class and model_class != BOOSTER_CLASS:
        estimator_class = _estimator_class(model_class)
        estimator = estimator_class()
        estimator.load_model(bytearray(data))
        return estimator
    return xgboost.Booster(model_file=bytearray(data))


def _recorded_class(path: str) -> str | None:
    from autologagent._models import METADATA_FILE

    try:
        with open(os.path.join(os.path.dirname(path), METADATA_FILE), encoding="utf-8") as handle:
            flavor = json.load(handle)["flavors"]["xgboost"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    value = flavor.get("model_class")
    return str(value) if value else None


def _estimator_class(qualified: str) -> type:
    import importlib

    from xgboost.sklearn import XGBModel

    module_name, _, class_name = qualified.rpartition(".")
    if module_name != "xgboost" and not module_name.startswith("xgboost."):
        raise ValueError(f"the model's class {qualified!r} is not one of XGBoost's")
    value = getattr(importlib.import_module(module_name), class_name, None)
    if not (isinstance(value, type) and issubclass(value, XGBModel)):
        raise ValueError(f"the model's class {qualified!r} is not an XGBoost estimator")
    return value


# --- the scikit-learn wrappers --------------------------------------------------------


class _EstimatorRun(_boosting.EstimatorRun):
    integration = NAME

    def log_library(self) -> None:
        estimator = self.estimator
        history = getattr(estimator, "evals_result_", None)
        if history:
            series = _boosting.Series(self.run_id, _boosting.option("log_every_n_steps", NAME))
            series.log_history(history)
            if _uses_early_stopping(
                getattr(estimator, "early_stopping_rounds", None),
                getattr(estimator, "callbacks", None),
            ):
                booster = estimator.get_booster()
                best = booster.attr("best_iteration")
                if best is not None:
                    _early_stopping(self.run_id, int(best), booster.attr("best_score"), history)
        _log_importance(self.run_id, estimator.get_booster())

    def log_model(self, X: Any) -> None:
        cls = type(self.estimator)
        _log_model(
            self.run_id,
            self.estimator.get_booster(),
            f"{cls.__module__}.{cls.__qualname__}",
            ["xgboost", "sklearn"],
            self.input_signature(X),
        )


_fit_wrapper = _patching.training_wrapper("xgboost autologging", _EstimatorRun.for_call)
_NATIVE_WRAPPERS = {
    kind: _patching.training_wrapper("xgboost autologging", _NativeRun.factory(kind))
    for kind in NATIVE_FUNCTIONS
}
