"""What the XGBoost and LightGBM integrations share: the shape of a boosting run.

Both libraries have a native ``train``/``cv`` and a scikit-learn wrapper that
calls it, and both report each round's evaluation results to callbacks. So a
boosting run is the same in both, and built here once:

- ``BoosterRun``: the hooks of a native ``train`` or ``cv``. It opens the run,
  logs the booster params and the call's other arguments, and hands the library
  a callback of the agent's (added beside the user's callbacks, in a new list:
  the user's list is never changed) that appends each round's results straight
  to the writer's queue. Everything else happens once the call has returned.
- ``EstimatorRun``: the hooks of a scikit-learn wrapper's ``fit``: the
  estimator's params, its evaluation history read back after the fit, the
  scikit-learn training metrics, and the fitted estimator remembered, so that
  later ``score``/metric calls on it log to its run.
- ``Series``: metric names as the libraries print them (``val-mlogloss``), with
  MLflow's one change (``ndcg@3`` -> ``ndcg_at_3``), and AUTOLOG_LOG_EVERY_N_STEPS.
- Feature importance as ``feature_importance_<type>.json`` and a bar chart
  ``feature_importance_<type>.png``, drawn with matplotlib's object API by the
  agent's drawing process (``autologagent._render``), never on the training thread.
- Early stopping as MLflow records it: the metrics ``best_iteration`` and
  ``stopped_iteration``, and each series' value at the best iteration as one more
  point, one step after the last round (so a series' latest value is the best
  model's).
"""

from __future__ import annotations

import hashlib
import inspect
import io
import json
import os
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from autologagent import _bootstrap, _errors, _patching, _session

TYPE_CHECKING = False
if TYPE_CHECKING:
    from autologagent._runs import ActiveRun

# Argument values worth a param: what prints short and means the same next time.
_SIMPLE = (str, int, float, bool, type(None))
# Features drawn in an importance chart (the JSON file has them all).
MAX_PLOTTED_FEATURES = 50
_DRAW = "autologagent.integrations._boosting:draw_importance"
_DPI = 80


def patch_library(
    module: Any,
    integration: str,
    defined_in: str,
    native_wrappers: Mapping[str, Callable[..., Any]],
    sklearn_module: str,
    sklearn_base: str,
    fit_wrapper: Callable[..., Any],
    predict_methods: Iterable[str],
) -> None:
    """Patch what a boosting library's module holds as it loads.

    The native functions (``train``, ``cv``) are wrapped where they are defined and
    aliased where ``module`` re-exports them, so that both names reach one wrapper;
    the scikit-learn wrappers (each subclass of ``sklearn_base`` that defines
    ``fit``) get the estimator ``fit`` and the predict-like methods' wrappers.
    """
    for function, wrapper in native_wrappers.items():
        value = vars(module).get(function)
        if getattr(value, "__module__", None) != defined_in:
            continue
        if getattr(value, "__name__", None) != function:
            continue
        defining = sys.modules.get(defined_in)
        if defining is None:
            continue
        _patching.patch(defining, function, wrapper, integration)
        if module is not defining:
            _patching.patch_alias(module, function, defining, integration)
    if module.__name__ == sklearn_module:
        _patch_estimators(module, integration, sklearn_base, fit_wrapper, predict_methods)


def _patch_estimators(
    module: Any,
    integration: str,
    sklearn_base: str,
    fit_wrapper: Callable[..., Any],
    predict_methods: Iterable[str],
) -> None:
    from . import _sklearn_eval

    base = vars(module).get(sklearn_base)
    if base is None:
        return
    for value in list(vars(module).values()):
        if not (isinstance(value, type) and issubclass(value, base)):
            continue
        if value.__module__ != module.__name__:
            continue
        if "fit" in vars(value):
            _patching.patch(value, "fit", fit_wrapper, integration)
        for method in predict_methods:
            if method in vars(value):
                _patching.patch(value, method, _sklearn_eval.predict_wrapper, integration)


def option(name: str, integration: str) -> Any:
    """A configuration option as this integration sees it (its own autolog() first)."""
    return _bootstrap.config().get(name, integration)


def enabled(integration: str) -> bool:
    return _bootstrap.active and _bootstrap.config().integration_enabled(integration)


# --- arguments ------------------------------------------------------------------

_signatures: dict[Any, inspect.Signature | None] = {}


def signature_of(function: Any) -> inspect.Signature | None:
    """The (cached) signature of ``function``, following ``__wrapped__``."""
    function = getattr(function, "__func__", function)
    if function not in _signatures:
        try:
            _signatures[function] = inspect.signature(function)
        except (TypeError, ValueError):
            _signatures[function] = None
    return _signatures[function]


def call_arguments(
    function: Any, args: tuple, kwargs: dict, method: bool = False
) -> dict[str, Any]:
    """The call's arguments by parameter name, defaults included (``self`` left out)."""
    signature = signature_of(function)
    if signature is None:
        return dict(kwargs)
    try:
        bound = signature.bind(None, *args, **kwargs) if method else signature.bind(*args, **kwargs)
    except TypeError:
        return dict(kwargs)
    bound.apply_defaults()
    arguments = dict(bound.arguments)
    if method:
        arguments.pop(next(iter(signature.parameters)), None)
    for name, parameter in signature.parameters.items():
        if parameter.kind is inspect.Parameter.VAR_KEYWORD:
            extra = arguments.pop(name, None)
            if isinstance(extra, dict):
                arguments = {**extra, **arguments}
    return arguments


def loggable_arguments(arguments: Mapping[str, Any], unlogged: Iterable[str]) -> dict[str, Any]:
    """The arguments MLflow logs as params: all but the data, the model and the functions."""
    skip = set(unlogged)
    found: dict[str, Any] = {}
    for name, value in arguments.items():
        if name in skip:
            continue
        if isinstance(value, _SIMPLE) or (
            isinstance(value, (list, tuple)) and all(isinstance(v, _SIMPLE) for v in value)
        ):
            found[name] = value
    return found


def booster_params(params: Any) -> dict[str, Any]:
    """Booster params as a dict; XGBoost also takes a list of pairs (a key may repeat)."""
    if params is None:
        return {}
    if isinstance(params, Mapping):
        return dict(params)
    found: dict[str, Any] = {}
    try:
        for key, value in params:
            key = str(key)
            if key in found:
                previous = found[key]
                found[key] = [*previous, value] if isinstance(previous, list) else [previous, value]
            else:
                found[key] = value
    except (TypeError, ValueError):
        return {}
    return found


def with_callback(
    function: Any, args: tuple, kwargs: dict, callback: Any, first: bool
) -> tuple[tuple, dict]:
    """``(args, kwargs)`` with ``callback`` added to the ``callbacks`` argument, in a new list.

    The user's own callbacks keep their order; the agent's goes last (``first``:
    at the front, for LightGBM, whose order comes from each callback's ``order``).
    Anything unexpected leaves the call exactly as the user wrote it.
    """
    signature = signature_of(function)
    if signature is None or "callbacks" not in signature.parameters:
        return args, kwargs
    try:
        signature.bind(*args, **kwargs)
    except TypeError:
        return args, kwargs  # the library will raise its own error for this call
    names = list(signature.parameters)
    index = names.index("callbacks")
    parameter = signature.parameters["callbacks"]
    positional = len(args) > index and parameter.kind in (
        inspect.Parameter.POSITIONAL_ONLY,
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
    )
    current = args[index] if positional else kwargs.get("callbacks")
    if current is None:
        extended = [callback]
    elif isinstance(current, (list, tuple)):
        extended = [callback, *current] if first else [*current, callback]
    else:
        return args, kwargs
    if positional:
        return (*args[:index], extended, *args[index + 1 :]), kwargs
    return args, {**kwargs, "callbacks": extended}


# --- series -----------------------------------------------------------------------


def metric_key(data: str, metric: str, suffix: str = "") -> str:
    """``val-mlogloss`` as the libraries print it; ``@`` becomes ``_at_`` as in MLflow."""
    return f"{data}-{metric}{suffix}".replace("@", "_at_")


class Series:
    """Where a run's per-round points go: its id, the key cache, the sampling, the count.

    The callbacks read these attributes directly: a round costs a dict lookup and
    a tuple appended to the writer's queue per series.
    """

    __slots__ = ("run_id", "every", "keys", "rounds", "last_logged", "append")

    def __init__(self, run_id: str, every: int) -> None:
        from autologagent import _writer

        self.run_id = run_id
        self.every = every
        self.keys: dict[tuple[str, str, str], str] = {}
        self.rounds = 0  # rounds seen
        self.last_logged = -1  # the step of the last round logged
        self.append = _writer.metrics.append

    def key(self, data: str, metric: str, suffix: str = "") -> str:
        key = self.keys.get((data, metric, suffix))
        if key is None:
            key = self.keys[(data, metric, suffix)] = metric_key(data, metric, suffix)
        return key

    def log_history(self, history: Mapping[str, Mapping[str, Any]], first_step: int = 0) -> None:
        """Points from a finished history ``{data: {metric: [value per round]}}``.

        (The scikit-learn wrappers keep it as ``evals_result_``; a round that the
        callback did not see, because a user's callback stopped training first,
        is taken from it too.) Values may be ``(mean, std)`` pairs, as in ``cv``.
        """
        now = time.time()
        every = self.every
        start = max(0, self.last_logged + 1 - first_step)
        for data, metrics in history.items():
            for metric, values in metrics.items():
                last = len(values) - 1
                for index in range(start, len(values)):
                    step = first_step + index
                    if step % every == 0 or index == last:
                        self._add(data, metric, values[index], step, now)
        self.last_logged = max(self.last_logged, first_step + history_length(history) - 1)

    def _add(self, data: str, metric: str, value: Any, step: int, now: float) -> None:
        run_id, key = self.run_id, self.key
        if isinstance(value, tuple):  # XGBoost's cv: (mean, std), named as its result's columns
            self.append((run_id, key(data, metric, "-mean"), float(value[0]), step, now))
            self.append((run_id, key(data, metric, "-std"), float(value[1]), step, now))
        else:
            self.append((run_id, key(data, metric), float(value), step, now))


def history_length(history: Mapping[str, Mapping[str, Any]]) -> int:
    """Rounds in a history ``{data: {metric: [value per round]}}``."""
    for metrics in history.values():
        for values in metrics.values():
            return len(values)
    return 0


def log_early_stopping(
    run_id: str,
    best_iteration: int,
    stopped_iteration: int,
    best_values: Mapping[str, float],
    extra_step: int,
    best_score: float | None = None,
) -> None:
    """MLflow's record of early stopping (see the module's docstring)."""
    from autologagent import _fluent

    summary = {"best_iteration": best_iteration, "stopped_iteration": stopped_iteration}
    if best_score is not None:
        summary["best_score"] = best_score
    _fluent.log_metrics(summary, step=0, run_id=run_id)
    _fluent.log_metrics(dict(best_values), step=extra_step, run_id=run_id)


# --- feature importance -------------------------------------------------------------

_matplotlib: bool | None = None


def plots_available() -> bool:
    """Whether matplotlib is installed (one warning, shared with sklearn's plots, if not)."""
    global _matplotlib
    if _matplotlib is None:
        import importlib.util

        _matplotlib = importlib.util.find_spec("matplotlib") is not None
        if not _matplotlib:
            _errors.warn(
                "matplotlib is not installed: no plots are logged "
                "(pip install 'autologagent[plots]' to get them)",
                key="no-matplotlib",
            )
    return _matplotlib


def log_importance(run_id: str, importances: Mapping[str, Mapping[str, Any]]) -> None:
    """``feature_importance_<type>.json`` and ``.png`` for each importance type given."""
    from autologagent import _artifacts

    charts: dict[str, dict[str, Any]] = {}
    for kind, scores in importances.items():
        plain = {str(name): _json_number(value) for name, value in scores.items()}
        _artifacts.write_later(
            run_id, f"feature_importance_{kind}.json", json.dumps(plain, indent=2) + "\n"
        )
        charts[kind] = plain
    if not charts or _session.is_worker() or not plots_available():
        return  # a pool worker's training is one fold or candidate among many: no charts
    from autologagent import _render

    _render.submit(_DRAW, {"folder": _artifacts.run_artifact_dir(run_id), "importances": charts})


def _json_number(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [float(v) for v in value]
    return float(value)


# Identical charts are drawn once per process: a script that trains the same model
# again (a timing loop, a seed that does not matter) gets the same bytes back.
_chart_cache: OrderedDict[tuple[Any, ...], bytes] = OrderedDict()
_chart_lock = threading.Lock()
_CHART_CACHE_SIZE = 64


def draw_importance(folder: str, importances: Mapping[str, Mapping[str, Any]]) -> None:
    """Draw ``feature_importance_<type>.png`` for each type into ``folder`` (any process)."""
    os.makedirs(folder, exist_ok=True)
    for kind, scores in importances.items():
        _write(folder, f"feature_importance_{kind}.png", _chart(kind, scores))


def _chart(kind: str, scores: Mapping[str, Any]) -> bytes:
    items = sorted(
        ((name, _magnitude(value)) for name, value in scores.items()),
        key=lambda item: item[1],
        reverse=True,
    )
    key = (kind, tuple(items))
    with _chart_lock:
        cached = _chart_cache.get(key)
    if cached is not None:
        return cached
    data = _bar_chart(f"Feature importance ({kind})", items)
    with _chart_lock:
        _chart_cache[key] = data
        while len(_chart_cache) > _CHART_CACHE_SIZE:
            _chart_cache.popitem(last=False)
    return data


def _magnitude(value: Any) -> float:
    """One bar per feature: a per-class list (a linear booster's) counts by its total size."""
    if isinstance(value, (list, tuple)):
        return float(sum(abs(v) for v in value))
    return float(value)


def _bar_chart(title: str, items: list[tuple[str, float]]) -> bytes:
    """A horizontal bar chart, largest on top, drawn on the figure itself.

    Bars and labels are placed in figure coordinates, without an Axes: the axes
    and tick machinery is most of what matplotlib spends on a chart this simple.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    shown = items[:MAX_PLOTTED_FEATURES]
    if len(items) > len(shown):
        title += f", top {len(shown)} of {len(items)}"
    rows = max(len(shown), 1)
    height = 0.8 + 0.28 * rows
    figure = Figure(figsize=(6.4, height), dpi=_DPI)
    FigureCanvasAgg(figure)
    top, bottom = 1 - 0.5 / height, 0.15 / height
    row = (top - bottom) / rows
    longest = max((len(name) for name, _ in shown), default=1)
    left = min(0.45, 0.04 + 0.0135 * longest)
    width = 0.86 - left
    largest = max((abs(value) for _, value in shown), default=0.0) or 1.0
    for index, (name, value) in enumerate(shown):
        y = top - (index + 1) * row
        bar = width * abs(value) / largest
        figure.patches.append(
            Rectangle(
                (left, y + 0.15 * row),
                bar,
                0.7 * row,
                transform=figure.transFigure,
                figure=figure,
                color="#1f77b4",
            )
        )
        figure.text(left - 0.01, y + row / 2, name, ha="right", va="center", fontsize=9)
        figure.text(left + bar + 0.01, y + row / 2, f"{value:.4g}", va="center", fontsize=8)
    figure.text(0.5, 1 - 0.25 / height, title, ha="center", va="center", fontsize=11)
    buffer = io.BytesIO()
    figure.canvas.print_png(buffer, pil_kwargs={"compress_level": 1})
    return buffer.getvalue()


def _write(folder: str, name: str, data: bytes) -> None:
    partial = os.path.join(folder, f".partial-{os.getpid()}-{threading.get_ident()}-{name}")
    with open(partial, "wb") as out:
        out.write(data)
    os.replace(partial, os.path.join(folder, name))


# --- datasets --------------------------------------------------------------------

_DIGEST_LABELS = 20_000


def matrix_schema(names: Any, types: Any, num_features: int | None) -> dict[str, Any]:
    """A library data set's columns, as far as it knows them."""
    if names:
        kinds = list(types) if types else [None] * len(names)
        return {
            "type": "dataframe",
            "columns": [
                {"name": str(name), "type": str(kind) if kind is not None else "float"}
                for name, kind in zip(names, kinds, strict=False)
            ],
        }
    return {"type": "tensor", "dtype": "float", "shape": [-1, num_features]}


def dataset_record(
    run_id: str,
    name: str,
    context: str,
    source: str,
    rows: int | None,
    columns: int | None,
    names: Any,
    types: Any,
    label: Any,
) -> tuple[str, ...]:
    """The store's input record for a DMatrix or a LightGBM Dataset.

    Their content lives in the library, not in Python: the digest covers the
    shape, the column names and (a sample of) the labels, which tells data sets
    apart without copying the data out.
    """
    schema = matrix_schema(names, types, columns)
    md5 = hashlib.md5(usedforsecurity=False)
    md5.update(repr((rows, columns)).encode())
    md5.update(json.dumps(schema, sort_keys=True).encode())
    if label is not None:
        try:
            import numpy

            array = numpy.ascontiguousarray(numpy.asarray(label, dtype=float).ravel())
            md5.update(array[:_DIGEST_LABELS].tobytes())
            md5.update(array[-_DIGEST_LABELS:].tobytes())
        except Exception:
            pass
    profile = {"num_rows": rows, "shape": [rows, columns]}
    return (
        run_id,
        name,
        md5.hexdigest()[:8],
        "code",
        source,
        json.dumps(schema),
        json.dumps(profile),
        context,
    )


# --- the runs ----------------------------------------------------------------------


class BoosterRun(_patching.TrainingHooks):
    """The run of one outermost native ``train`` / ``cv``; subclasses fill in the library."""

    integration = ""
    # Arguments that are data, models or functions: never params (MLflow's list).
    unlogged: frozenset[str] = frozenset()
    # LightGBM orders callbacks by their ``order``: the agent's goes first in the list.
    callback_first = False

    def __init__(self, function: Any, kind: str, args: tuple, kwargs: dict) -> None:
        self.function = function
        self.kind = kind  # "train" or "cv"
        self.call_args = args
        self.call_kwargs = kwargs
        self.arguments_by_name: dict[str, Any] = {}
        self.run: ActiveRun | None = None
        self.run_id = ""
        self.skip = True  # until the run is open
        self.series: Series | None = None
        self.callback: Any = None

    @classmethod
    def factory(cls, kind: str) -> Callable[[Any, tuple, dict], BoosterRun | None]:
        def for_call(_instance: Any, args: tuple, kwargs: dict) -> BoosterRun | None:
            if not enabled(cls.integration):
                return None
            return cls(cls.original(kind), kind, args, kwargs)

        return for_call

    @classmethod
    def original(cls, kind: str) -> Any:
        """The library's own function (its signature names the arguments)."""
        raise NotImplementedError

    def start(self) -> None:
        from autologagent import _fluent, _runs

        tags = {"autolog.integration": self.integration}
        try:
            self.run = _runs.begin_training_run(f"{self.integration}.{self.kind}", tags)
        except _runs.SkipLogging:
            return
        self.skip = False
        self.run_id = self.run.info.run_id if self.run is not None else _runs.current_run_id()
        self.arguments_by_name = call_arguments(self.function, self.call_args, self.call_kwargs)
        params = booster_params(self.arguments_by_name.get("params"))
        params.update(loggable_arguments(self.arguments_by_name, self.unlogged))
        _fluent.log_params(params, run_id=self.run_id)
        self.series = Series(self.run_id, option("log_every_n_steps", self.integration))
        self.callback = self.make_callback(self.series)

    def arguments(self, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
        if self.skip or self.callback is None:
            return args, kwargs
        return with_callback(self.function, args, kwargs, self.callback, self.callback_first)

    def succeeded(self, result: Any) -> None:
        if self.skip:
            return
        try:
            self.finish_series()
            if self.kind == "train":
                self.log_booster(result)
        finally:
            self.failed(None)

    def failed(self, exc: BaseException | None) -> None:
        if not self.skip:
            from autologagent import _runs

            self.skip = True
            _runs.finish_training_run(self.run, exc)

    # --- the library's part ---

    def make_callback(self, series: Series) -> Any:
        raise NotImplementedError

    def finish_series(self) -> None:
        """Log what the callback could not (a last round that sampling left out)."""

    def log_booster(self, booster: Any) -> None:
        """Early stopping, importance, data sets and the model of the trained booster."""
        raise NotImplementedError


class EstimatorRun(_patching.TrainingHooks):
    """The run of one outermost scikit-learn wrapper ``fit``; subclasses fill in the library."""

    integration = ""

    def __init__(self, estimator: Any, arguments: dict[str, Any]) -> None:
        self.estimator = estimator
        self.fit_arguments = arguments
        self.run: ActiveRun | None = None
        self.run_id = ""
        self.skip = True
        self.data_names: dict[int, str] = {}

    @classmethod
    def for_call(cls, estimator: Any, args: tuple, kwargs: dict) -> EstimatorRun | None:
        if estimator is None or not hasattr(estimator, "get_params"):
            return None
        if not enabled(cls.integration):
            return None
        method = getattr(type(estimator), "fit", None)
        method = getattr(method, "__wrapped__", method)
        return cls(estimator, call_arguments(method, args, kwargs, method=True))

    def start(self) -> None:
        from autologagent import _datasets, _fluent, _runs

        estimator_class = type(self.estimator)
        tags = {
            "estimator_name": estimator_class.__name__,
            "estimator_class": f"{estimator_class.__module__}.{estimator_class.__qualname__}",
            "autolog.integration": self.integration,
        }
        try:
            self.run = _runs.begin_training_run(estimator_class.__name__, tags)
        except _runs.SkipLogging:
            return
        self.skip = False
        self.run_id = self.run.info.run_id if self.run is not None else _runs.current_run_id()
        frame = _datasets.caller_frame()
        for value in self.data_arguments():
            name = _datasets.variable_name(value, frame)
            if name is not None:
                self.data_names[id(value)] = name
        _fluent.log_params(self.estimator.get_params(deep=True), run_id=self.run_id)

    def succeeded(self, result: Any) -> None:
        if self.skip:
            return
        try:
            self.log_fitted()
        finally:
            self.failed(None)

    def failed(self, exc: BaseException | None) -> None:
        if not self.skip:
            from autologagent import _runs

            self.skip = True
            _runs.finish_training_run(self.run, exc)

    def data_arguments(self) -> list[Any]:
        """The training and evaluation inputs (``X``, each eval set's ``X``)."""
        arguments = self.fit_arguments
        values = [arguments.get("X")]
        eval_set = arguments.get("eval_set")
        if isinstance(eval_set, tuple) and eval_set and not isinstance(eval_set[0], tuple):
            eval_set = [eval_set]  # LightGBM takes one (X, y) pair as it is
        for pair in eval_set or ():
            if isinstance(pair, (list, tuple)) and pair:
                values.append(pair[0])
        eval_x = arguments.get("eval_X")  # LightGBM >= 4.7
        if eval_x is not None:
            values.extend(eval_x if isinstance(eval_x, tuple) else (eval_x,))
        return [value for value in values if value is not None]

    def log_fitted(self) -> None:
        """What every fitted wrapper tells; the library adds its own in ``log_library``."""
        from autologagent import _datasets, _fluent, _writer

        from . import _sklearn_eval, _sklearn_metrics

        arguments = self.fit_arguments
        X, y = arguments.get("X"), arguments.get("y")
        self.log_library()
        if X is not None:
            metrics, _predictions = _sklearn_metrics.training_metrics(
                self.estimator, X, y, arguments.get("sample_weight")
            )
            _fluent.log_metrics(metrics, step=0, run_id=self.run_id)
        if option("log_datasets", self.integration):
            if X is not None:
                name = self.data_names.get(id(X), "dataset")
                _writer.enqueue("inputs", _datasets.record(self.run_id, X, name, "train"))
            for index, value in enumerate(self.data_arguments()[1:] if X is not None else ()):
                if value is X:
                    continue
                name = self.data_names.get(id(value), f"validation_{index}")
                _writer.enqueue("inputs", _datasets.record(self.run_id, value, name, "eval"))
        _sklearn_eval.remember_model(self.estimator, self.run_id)
        if option("log_models", self.integration):
            self.log_model(X)

    def input_signature(self, X: Any) -> dict[str, Any]:
        from autologagent import _datasets

        return {"inputs": _datasets.schema(X) if X is not None else None}

    # --- the library's part ---

    def log_library(self) -> None:
        """Series, early stopping and importance of the fitted estimator."""
        raise NotImplementedError

    def log_model(self, X: Any) -> None:
        raise NotImplementedError


def unwrapped(function: Any) -> Any:
    return getattr(function, "__wrapped__", function)
