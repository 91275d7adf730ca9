"""LightGBM: ``lightgbm.train`` and ``lightgbm.cv``, and the scikit-learn wrappers' ``fit``.

``train`` and ``cv`` are wrapped where they are defined (``lightgbm.engine``) and
where users reach them (``lightgbm.train``), with the same wrapper object. The
scikit-learn wrappers (``LGBMClassifier``, ``LGBMRegressor``, ``LGBMRanker``:
each class of ``lightgbm.sklearn`` that defines ``fit``) make one run per
outermost ``fit``; the ``lightgbm.train`` inside logs nothing of its own.

A native ``train``'s run holds, as MLflow's: the params and the call's other
arguments; one series per validation set and metric, named
``<valid_name>-<metric>`` as LightGBM reports them (``training-l2``,
``valid_0-l2``), a point per round, from a callback the agent adds; with early
stopping, ``best_iteration`` and ``stopped_iteration`` and the best iteration's
values one step after the last round; ``split`` and ``gain`` feature importance;
the training and validation Datasets as dataset inputs; and the booster as
LightGBM's text model (``model/model.txt``), which ``autologagent.load_model``
loads back as a ``lightgbm.Booster``. ``cv`` logs its params and the per-round
``valid-l2-mean`` / ``valid-l2-stdv`` (LightGBM's own suffixes). A wrapper's
``fit`` logs ``get_params()``, its eval sets' series (``valid_0-l2``), the
scikit-learn training metrics, the data, importance, and the fitted estimator
(pickled, as MLflow does for these).
"""

from __future__ import annotations

import pickle
import sys
import time
from types import ModuleType
from typing import Any

from autologagent import _bootstrap, _errors, _patching

from . import _boosting

NAME = "lightgbm"
# The LightGBM releases this integration is tested with, (major, minor) inclusive.
SUPPORTED = ((4, 0), (4, 7))
DEFINED_IN = "lightgbm.engine"
NATIVE_FUNCTIONS = ("train", "cv")
SKLEARN_MODULE = "lightgbm.sklearn"
PREDICT_METHODS = ("predict", "predict_proba")
IMPORTANCE_TYPES = ("split", "gain")
MODEL_FILE = "model.txt"
BOOSTER_CLASS = "lightgbm.basic.Booster"
_LOADER = "autologagent.integrations.lightgbm:load_model_file"
# The agent's callback runs after the user's callbacks that have no ``order`` of
# their own (LightGBM gives them negative ones) and before LightGBM's
# (log_evaluation 10, record_evaluation 20, early_stopping 30), so that it sees
# the round at which early stopping ends training.
CALLBACK_ORDER = 0


def patch_module(module: ModuleType) -> None:
    """Wrap ``train``/``cv`` where defined and re-exported; wrap the estimators' ``fit``."""
    if module.__name__ == "lightgbm":
        _check_version(module)
    _boosting.patch_library(
        module,
        NAME,
        DEFINED_IN,
        _NATIVE_WRAPPERS,
        SKLEARN_MODULE,
        "LGBMModel",
        _fit_wrapper,
        PREDICT_METHODS,
    )


def unpatch() -> None:
    """Restore every original function and method."""
    _patching.unpatch(NAME)


def autolog(disable: bool = False, **options: Any) -> None:
    """Options for LightGBM alone; they supersede ``autologagent.autolog(...)``."""
    _bootstrap.autolog_integration(NAME, disable=disable, **options)


def _check_version(module: ModuleType) -> None:
    _patching.warn_if_untested(module, "LightGBM", SUPPORTED, "lightgbm-version")


# --- the per-round callback ------------------------------------------------------


class _Callback:
    """Appends each round's ``env.evaluation_result_list`` to the run's series.

    A callable, as LightGBM's callbacks are; its ``order`` is set on the instance,
    so LightGBM keeps it (it only fills in an ``order`` where there is none).
    """

    def __init__(self, series: _boosting.Series) -> None:
        self.series = series
        self.order = CALLBACK_ORDER
        self.skipped: Any = None  # the last round sampling left out, logged if training ends

    def __call__(self, env: Any) -> None:
        series = self.series
        series.rounds += 1
        step = env.iteration
        if step % series.every and step != env.end_iteration - 1:
            self.skipped = (step, env.evaluation_result_list)
            return
        self.log_round(step, env.evaluation_result_list)

    def log_round(self, step: int, results: Any) -> None:
        series = self.series
        try:
            run_id, keys, append = series.run_id, series.keys, series.append
            now = time.time()
            for result in results or ():
                data, metric, value = result[0], result[1], result[2]
                if len(result) > 4 and result[4] is not None:  # cv: mean and stdv
                    append((run_id, series.key(data, metric, "-mean"), float(value), step, now))
                    append((run_id, series.key(data, metric, "-stdv"), float(result[4]), step, now))
                    continue
                key = keys.get((data, metric, "")) or series.key(data, metric)
                append((run_id, key, float(value), step, now))
            series.last_logged = step
        except Exception as exc:
            _errors.report(exc, "lightgbm autologging (per-round metrics)")


# --- native train / cv ------------------------------------------------------------


class _NativeRun(_boosting.BoosterRun):
    integration = NAME
    unlogged = frozenset(
        {
            "params",
            "train_set",
            "valid_sets",
            "valid_names",
            "fobj",
            "feval",
            "init_model",
            "learning_rates",
            "callbacks",
            "folds",
            "fpreproc",
        }
    )
    callback_first = True

    @classmethod
    def original(cls, kind: str) -> Any:
        module = sys.modules[DEFINED_IN]
        return _boosting.unwrapped(getattr(module, kind))

    def make_callback(self, series: _boosting.Series) -> Any:
        return _Callback(series)

    def finish_series(self) -> None:
        callback = self.callback
        if callback is not None and callback.skipped is not None:
            if callback.skipped[0] > callback.series.last_logged:
                callback.log_round(*callback.skipped)  # early stopping ended off the sampling

    def log_booster(self, booster: Any) -> None:
        arguments = self.arguments_by_name
        run_id = self.run_id
        if self.series is not None:
            _early_stopping(run_id, booster.best_iteration, booster.best_score, self.series.rounds)
        _log_importance(run_id, booster)
        train_set = arguments.get("train_set")
        if _boosting.option("log_datasets", NAME):
            _log_datasets(
                run_id, train_set, arguments.get("valid_sets"), arguments.get("valid_names")
            )
        if _boosting.option("log_models", NAME):
            signature = None
            if train_set is not None:
                signature = {
                    "inputs": _boosting.matrix_schema(
                        booster.feature_name(), None, booster.num_feature()
                    )
                }
            # train() hands back a booster rebuilt from its text unless asked to keep
            # the training one: nothing changes it later, so its text can wait.
            later = not arguments.get("keep_training_booster", False)
            _log_booster_model(run_id, booster, signature, later)


def _early_stopping(run_id: str, best: Any, best_score: Any, rounds: int) -> None:
    """MLflow's names; rounds count from 1 in LightGBM's ``best_iteration``."""
    if not best or best <= 0 or rounds <= 0:
        return
    best_values = {
        _boosting.metric_key(data, metric): float(value)
        for data, metrics in (best_score or {}).items()
        for metric, value in metrics.items()
    }
    _boosting.log_early_stopping(
        run_id,
        best_iteration=int(best),
        stopped_iteration=rounds,
        best_values=best_values,
        extra_step=rounds,
    )


def _log_importance(run_id: str, booster: Any) -> None:
    names = booster.feature_name()
    importances = {}
    for kind in IMPORTANCE_TYPES:
        values = booster.feature_importance(importance_type=kind)
        importances[kind] = dict(zip(names, values.tolist(), strict=False))
    _boosting.log_importance(run_id, importances)


def _log_datasets(run_id: str, train_set: Any, valid_sets: Any, valid_names: Any) -> None:
    """The training set, and each validation set under the name LightGBM gives it."""
    from autologagent import _datasets, _writer

    if train_set is not None:
        name = _datasets.variable_name(train_set, _datasets.caller_frame()) or "train_set"
        _writer.enqueue("inputs", _dataset_record(run_id, train_set, name, "train"))
    for index, valid_set in enumerate(valid_sets or ()):
        if valid_set is train_set:
            continue
        if valid_names is not None and len(valid_names) > index:
            name = str(valid_names[index])
        else:
            name = f"valid_{index}"
        _writer.enqueue("inputs", _dataset_record(run_id, valid_set, name, "eval"))


def _dataset_record(run_id: str, dataset: Any, name: str, context: str) -> tuple[str, ...]:
    rows = columns = names = None
    try:
        rows, columns = dataset.num_data(), dataset.num_feature()
        names = dataset.get_feature_name()
    except Exception:  # not constructed (training failed before it was)
        pass
    return _boosting.dataset_record(
        run_id, name, context, "lightgbm.Dataset", rows, columns, names, None, dataset.get_label()
    )


def _log_booster_model(
    run_id: str, booster: Any, signature: dict[str, Any] | None, later: bool = False
) -> None:
    """LightGBM's text model, written on the background thread; taken there if ``later``.

    LightGBM serialises a booster under its own read lock, so the background
    thread may do it while the program predicts with the same booster.
    """
    import lightgbm
    from autologagent import _models

    def text() -> bytes:
        return booster.model_to_string().encode("utf-8")

    _models.log_model(
        run_id,
        text if later else text(),
        MODEL_FILE,
        flavor="lightgbm",
        loader=_LOADER,
        modules=["lightgbm"],
        flavor_info={
            "lgb_version": lightgbm.__version__,
            "model_class": BOOSTER_CLASS,
            "model_format": "text",
        },
        signature=signature,
    )


def load_model_file(data: bytes, path: str) -> Any:
    """A logged booster, as a ``lightgbm.Booster``."""
    import lightgbm

    return lightgbm.Booster(model_str=data.decode("utf-8"))


# --- the scikit-learn wrappers --------------------------------------------------------


class _EstimatorRun(_boosting.EstimatorRun):
    integration = NAME

    def log_library(self) -> None:
        estimator = self.estimator
        history = getattr(estimator, "evals_result_", None)
        rounds = 0
        if history:
            series = _boosting.Series(self.run_id, _boosting.option("log_every_n_steps", NAME))
            series.log_history(history)
            rounds = _boosting.history_length(history)
        booster = estimator.booster_
        _early_stopping(self.run_id, booster.best_iteration, booster.best_score, rounds)
        _log_importance(self.run_id, booster)

    def log_model(self, X: Any) -> None:
        """The fitted estimator, pickled (MLflow's format for LightGBM's wrappers)."""
        import lightgbm
        from autologagent import _models

        estimator = self.estimator
        try:
            data = pickle.dumps(estimator, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:
            _errors.warn(
                f"the fitted {type(estimator).__name__} cannot be pickled, so it is not logged "
                f"({type(exc).__name__}: {exc})",
                key=f"lightgbm-unpicklable-{type(estimator).__name__}",
            )
            return
        cls = type(estimator)
        _models.log_model(
            self.run_id,
            data,
            "model.pkl",
            flavor="lightgbm",
            loader=_models.PICKLE_LOADER,
            modules=lambda: _models.pickle_modules(data),
            flavor_info={
                "lgb_version": lightgbm.__version__,
                "model_class": f"{cls.__module__}.{cls.__qualname__}",
                "model_format": "pickle",
            },
            signature=self.input_signature(X),
        )


_fit_wrapper = _patching.training_wrapper("lightgbm autologging", _EstimatorRun.for_call)
_NATIVE_WRAPPERS = {
    kind: _patching.training_wrapper("lightgbm autologging", _NativeRun.factory(kind))
    for kind in NATIVE_FUNCTIONS
}
