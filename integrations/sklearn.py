"""scikit-learn: every estimator's ``fit``, and the evaluation of what was fitted.

Patched lazily, module by module: when a module under ``sklearn`` has executed,
each class it defines is wrapped where it defines ``fit`` / ``fit_transform`` /
``fit_predict`` (training: one run per outermost call), ``predict``-like methods
and ``score`` (evaluation, see ``_sklearn_eval``), and each metric function of
``sklearn.metrics`` is wrapped where it is defined and where it is re-exported.
Subclasses that inherit a method (``RandomForestClassifier`` from ``BaseForest``)
are covered without importing all of scikit-learn to list the estimators. Only
the outermost call of a thread logs: a Pipeline's steps, a search's inner fits
or the agent's own metric computations make no runs and log nothing.

A fit's run holds, as MLflow's: ``get_params(deep=True)`` as params (nested
``step__param`` names), the tags ``estimator_name`` and ``estimator_class``, the
training metrics (``_sklearn_metrics``), the training data as a dataset input,
the fitted model (``model/``, a pickle: see the README), ``estimator.html``, and
for classifiers the confusion matrix, ROC and precision-recall plots. A search
adds its best candidate and child runs (``_sklearn_search``).
"""

from __future__ import annotations

import inspect
import pickle
import sys
from types import ModuleType
from typing import Any

from autologagent import _bootstrap, _patching, _session

from . import _sklearn_eval

TYPE_CHECKING = False
if TYPE_CHECKING:
    from autologagent._runs import ActiveRun

NAME = "sklearn"
# The scikit-learn releases this integration is tested with, (major, minor) inclusive.
SUPPORTED = ((1, 2), (1, 9))
TRAINING_METHODS = ("fit", "fit_transform", "fit_predict")
METRICS_PACKAGE = "sklearn.metrics"


def patch_module(module: ModuleType) -> None:
    """Wrap the training and evaluation methods of the classes that ``module`` defines."""
    name = module.__name__
    if not _drawing_process_started:
        _start_drawing_process()
    if name == "sklearn":
        _check_version(module)
    for value in list(vars(module).values()):
        if inspect.isclass(value) and value.__module__ == name:
            _patch_class(value)
    if name.startswith(METRICS_PACKAGE):
        _patch_metric_functions(module)


def _patch_class(cls: type) -> None:
    namespace = vars(cls)
    for method in TRAINING_METHODS:
        if method in namespace:
            _patching.patch(cls, method, _training_wrapper, NAME)
    for method in _sklearn_eval.PREDICT_METHODS:
        if method in namespace:
            _patching.patch(cls, method, _sklearn_eval.predict_wrapper, NAME)
    if _sklearn_eval.SCORE_METHOD in namespace:
        _patching.patch(cls, _sklearn_eval.SCORE_METHOD, _sklearn_eval.score_wrapper, NAME)


def _patch_metric_functions(module: ModuleType) -> None:
    """Metric functions where defined (``sklearn.metrics._regression``), then their re-exports."""
    name = module.__name__
    for attribute, value in list(vars(module).items()):
        if not _sklearn_eval.is_metric_function(attribute, value):
            continue
        defined_in = getattr(value, "__module__", None)
        if defined_in == name:
            _patching.patch(module, attribute, _sklearn_eval.metric_wrapper(attribute), NAME)
        elif isinstance(defined_in, str) and defined_in.startswith(METRICS_PACKAGE):
            defining = sys.modules.get(defined_in)
            if defining is None:
                continue
            if vars(defining).get(attribute) is value:  # defining module not patched yet
                _patching.patch(defining, attribute, _sklearn_eval.metric_wrapper(attribute), NAME)
            _patching.patch_alias(module, attribute, defining, NAME)


def unpatch() -> None:
    """Restore every original method and function."""
    _patching.unpatch(NAME)


def autolog(disable: bool = False, **options: Any) -> None:
    """Options for scikit-learn alone; they supersede ``autologagent.autolog(...)``."""
    _bootstrap.autolog_integration(NAME, disable=disable, **options)


def _check_version(module: ModuleType) -> None:
    _patching.warn_if_untested(module, "scikit-learn", SUPPORTED, "sklearn-version")


_signatures: dict[Any, inspect.Signature | None] = {}


def _fit_arguments(method: Any, args: tuple, kwargs: dict) -> dict[str, Any]:
    """The call's arguments by parameter name (``X``, ``y``, ``sample_weight``...)."""
    function = getattr(method, "__func__", method)
    if function not in _signatures:
        try:
            _signatures[function] = inspect.signature(function)
        except (TypeError, ValueError):
            _signatures[function] = None
    signature = _signatures[function]
    if signature is None:
        return dict(kwargs)
    try:
        bound = signature.bind(None, *args, **kwargs)  # None stands for self
    except TypeError:
        return dict(kwargs)
    arguments = dict(bound.arguments)
    extra = arguments.pop("fit_params", None) or arguments.pop("kwargs", None)
    if isinstance(extra, dict):
        arguments = {**extra, **arguments}
    return arguments


class _FitLogging(_patching.TrainingHooks):
    """The run of one outermost ``fit``: params first, results when the fit returns."""

    def __init__(self, estimator: Any, arguments: dict[str, Any]) -> None:
        self.estimator = estimator
        self.fit_arguments = arguments
        self.run: ActiveRun | None = None
        self.run_id = ""
        self.skip = True  # until the run is open
        self.data_name: str | None = None

    @classmethod
    def for_call(cls, estimator: Any, args: tuple, kwargs: dict) -> _FitLogging | None:
        if estimator is None or not hasattr(estimator, "get_params"):
            return None
        if not _bootstrap.active or not _bootstrap.config().integration_enabled(NAME):
            return None
        method = getattr(type(estimator), "fit", None)
        return cls(estimator, _fit_arguments(getattr(method, "__wrapped__", method), args, kwargs))

    def start(self) -> None:
        # The run machinery loads with the first fit, not with sklearn's import.
        from autologagent import _datasets, _fluent, _runs

        estimator_class = type(self.estimator)
        tags = {
            "estimator_name": estimator_class.__name__,
            "estimator_class": f"{estimator_class.__module__}.{estimator_class.__qualname__}",
            "autolog.integration": NAME,
        }
        try:
            self.run = _runs.begin_training_run(estimator_class.__name__, tags)
        except _runs.SkipLogging:
            return
        self.skip = False
        self.run_id = self.run.info.run_id if self.run is not None else _runs.current_run_id()
        self.data_name = _datasets.variable_name(
            self.fit_arguments.get("X"), _datasets.caller_frame()
        )
        _fluent.log_params(self.estimator.get_params(deep=True), run_id=self.run_id)

    def succeeded(self, result: Any) -> None:
        if self.skip:
            return
        try:
            _log_fitted(self.estimator, self.fit_arguments, self.run_id, self.data_name)
        finally:
            self.failed(None)

    def failed(self, exc: BaseException | None) -> None:
        if not self.skip:
            from autologagent import _runs

            self.skip = True
            _runs.finish_training_run(self.run, exc)


_drawing_process_started = False


def _start_drawing_process() -> None:
    """Start the drawing process as scikit-learn starts loading, on the idle core.

    At its first module, not at the ``sklearn`` package's, which completes only once the
    package has imported most of itself. The drawing process's start and its load of
    Pillow and the fonts (some 40 ms) then overlap scikit-learn's import (most of a
    second), and it is ready when the first classifier's fit ends. scikit-learn
    modules loaded before the agent started come here too (the finder hands them
    over), so no fit needs to check. In a program that never fits a classifier it is
    stopped at exit, not waited for. Workers never draw, so they start none.
    """
    global _drawing_process_started
    _drawing_process_started = True
    from . import _sklearn_plots

    if not _session.is_worker():
        _sklearn_plots.warm_up()


def _option(name: str) -> Any:
    return _bootstrap.config().get(name, NAME)


def _log_fitted(
    estimator: Any, arguments: dict[str, Any], run_id: str, data_name: str | None
) -> None:
    """Everything a fitted estimator tells: metrics, data, model, plots, search results."""
    from autologagent import _datasets, _fluent, _writer

    from . import _sklearn_metrics, _sklearn_plots, _sklearn_search

    X, y = arguments.get("X"), arguments.get("y")
    sample_weight = arguments.get("sample_weight")
    if X is not None and _option("log_datasets"):
        _writer.enqueue("inputs", _datasets.record(run_id, X, data_name or "dataset", "train"))
    if _sklearn_search.is_search(estimator):
        _sklearn_search.log_search(estimator, run_id, _option("max_tuning_runs"))
    metrics, predictions = {}, None
    if X is not None:
        metrics, predictions = _sklearn_metrics.training_metrics(estimator, X, y, sample_weight)
    _fluent.log_metrics(metrics, step=0, run_id=run_id)
    if predictions is not None and not _session.is_worker():
        # A fit in a pool worker is one fold or one candidate among many: no plots.
        _sklearn_plots.submit(
            run_id,
            predictions.y_true,
            predictions.y_pred,
            predictions.y_proba,
            predictions.classes,
        )
    _sklearn_eval.remember_model(estimator, run_id)
    if not _option("log_models"):
        return
    _log_model(estimator, run_id, X, predictions)


def _log_model(estimator: Any, run_id: str, X: Any, predictions: Any) -> None:
    from autologagent import _datasets, _errors, _models

    try:
        data = pickle.dumps(estimator, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:
        _errors.warn(
            f"the fitted {type(estimator).__name__} cannot be pickled, so it is not logged "
            f"({type(exc).__name__}: {exc})",
            key=f"sklearn-unpicklable-{type(estimator).__name__}",
        )
        return
    import sklearn

    signature = {"inputs": _datasets.schema(X) if X is not None else None}
    if predictions is not None:
        signature["outputs"] = _datasets.schema(predictions.y_pred)
    _models.log_model(
        run_id,
        data,
        "model.pkl",
        flavor="sklearn",
        loader=_models.PICKLE_LOADER,
        modules=lambda: _models.pickle_modules(data),
        flavor_info={
            "sklearn_version": sklearn.__version__,
            "serialization_format": "pickle",
            "estimator_class": f"{type(estimator).__module__}.{type(estimator).__qualname__}",
        },
        signature=signature,
    )
    from autologagent import _background

    from . import _sklearn_view

    # Deferred (see _background): nothing waits for the view, and its copy of the
    # model is garbage that tipped the seed into a full collection (70 ms) while the
    # program was still scoring. (Not read back for the model's requirements either:
    # pickletools lists those modules without making that garbage early.)
    _background.submit_deferred(lambda: _sklearn_view.write(run_id, data), "writing estimator.html")


_training_wrapper = _patching.training_wrapper("sklearn autologging", _FitLogging.for_call)
