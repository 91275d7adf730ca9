"""scikit-learn: every estimator's ``fit`` (and ``fit_transform`` / ``fit_predict``).

Patched lazily, module by module: when a module under ``sklearn`` has executed,
each class it defines that has one of those methods in its own ``__dict__`` is
wrapped there, so subclasses that inherit the method (``RandomForestClassifier``
from ``BaseForest``) are covered without importing all of scikit-learn to list
the estimators. Only the outermost call of a thread logs: a Pipeline's steps or
a search's inner fits make no runs of their own.

The run holds ``get_params(deep=True)`` as params and the tags
``estimator_name``, ``estimator_class`` and ``autolog.integration``.
"""

from __future__ import annotations

import inspect
from types import ModuleType
from typing import Any

from autologagent import _bootstrap, _patching

TYPE_CHECKING = False
if TYPE_CHECKING:
    from autologagent._runs import ActiveRun

NAME = "sklearn"
# The scikit-learn releases this integration is tested with, (major, minor) inclusive.
SUPPORTED = ((1, 2), (1, 9))
TRAINING_METHODS = ("fit", "fit_transform", "fit_predict")


def patch_module(module: ModuleType) -> None:
    """Wrap the training methods of the classes that ``module`` defines."""
    if module.__name__ == "sklearn":
        _check_version(module)
    for value in list(vars(module).values()):
        if not inspect.isclass(value) or value.__module__ != module.__name__:
            continue
        for method in TRAINING_METHODS:
            if method in vars(value):
                _patching.patch(value, method, _training_wrapper, NAME)


def unpatch() -> None:
    """Restore every original method."""
    _patching.unpatch(NAME)


def autolog(disable: bool = False, **options: Any) -> None:
    """Options for scikit-learn alone; they supersede ``autologagent.autolog(...)``."""
    _bootstrap.autolog_integration(NAME, disable=disable, **options)


def _check_version(module: ModuleType) -> None:
    version = str(getattr(module, "__version__", ""))
    try:
        major_minor = tuple(int(part) for part in version.split(".")[:2])
    except ValueError:
        return
    low, high = SUPPORTED
    if not low <= major_minor <= high:
        from autologagent import _errors

        _errors.warn(
            f"scikit-learn {version} is outside the tested range "
            f"{low[0]}.{low[1]}-{high[0]}.{high[1]}; autologging it anyway",
            key="sklearn-version",
        )


class _FitLogging(_patching.TrainingHooks):
    """Opens the run of one outermost ``fit`` and logs what the estimator knows."""

    def __init__(self, estimator: Any) -> None:
        self.estimator = estimator
        self.run: ActiveRun | None = None
        self.skip = True  # until the run is open

    @classmethod
    def for_call(cls, estimator: Any, args: tuple, kwargs: dict) -> _FitLogging | None:
        if estimator is None or not hasattr(estimator, "get_params"):
            return None
        if not _bootstrap.active or not _bootstrap.config().integration_enabled(NAME):
            return None
        return cls(estimator)

    def start(self) -> None:
        # The run machinery loads with the first fit, not with sklearn's import.
        from autologagent import _fluent, _runs

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
        run_id = self.run.info.run_id if self.run is not None else _runs.current_run_id()
        _fluent.log_params(self.estimator.get_params(deep=True), run_id=run_id)

    def succeeded(self, result: Any) -> None:
        self.failed(None)

    def failed(self, exc: BaseException | None) -> None:
        if not self.skip:
            from autologagent import _runs

            _runs.finish_training_run(self.run, exc)


_training_wrapper = _patching.training_wrapper("sklearn autologging", _FitLogging.for_call)
