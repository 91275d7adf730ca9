"""Lightning (``lightning.pytorch`` and ``pytorch_lightning``): ``Trainer.fit`` is a training call.

Each outermost ``Trainer.fit`` makes one run (or logs into the active one), as
MLflow's Lightning autolog does, with its names:

- params: the module's ``hparams`` (``save_hyperparameters``), ``epochs``
  (``max_epochs``), and the first optimizer's ``optimizer_name`` and ``defaults``;
- every ``self.log`` metric: the step metrics at ``global_step`` (sampled by
  ``log_every_n_steps``), read from ``trainer.logged_metrics`` after each batch
  and kept as detached tensors, turned into floats once per epoch or 1,024
  points (no device sync per step); the epoch metrics
  (``trainer.callback_metrics``) at the epoch's index, at each training epoch's
  end (and after a validation that runs after it);
- ``model_summary.txt`` (Lightning's ``ModelSummary``), and the best checkpoint
  of each ``ModelCheckpoint`` under ``checkpoints/``.

The metrics come from a ``Callback`` the agent appends to ``trainer.callbacks``
for the call and takes out afterwards. The plain-loop hooks of the ``torch``
integration stay silent inside ``fit`` (an outermost training call).
"""

from __future__ import annotations

import os
from types import ModuleType
from typing import Any

from autologagent import _bootstrap, _errors, _patching

NAME = "lightning"
# The Lightning releases this integration is tested with, (major, minor) inclusive.
SUPPORTED = ((2, 0), (2, 6))
TRAINER_MODULES = ("lightning.pytorch.trainer.trainer", "pytorch_lightning.trainer.trainer")
SUMMARY_FILE = "model_summary.txt"
CHECKPOINT_DIR = "checkpoints"
FLUSH_EVERY_POINTS = 1024  # step points kept as tensors before one conversion


def patch_module(module: ModuleType) -> None:
    """Wrap ``Trainer.fit`` where the trainer is defined, in either package."""
    if module.__name__ in ("lightning", "pytorch_lightning"):
        _check_version(module)
    if module.__name__ in TRAINER_MODULES:
        trainer = vars(module).get("Trainer")
        if trainer is not None:
            _patching.patch(trainer, "fit", _fit_wrapper, NAME)


def unpatch() -> None:
    """Restore ``Trainer.fit``."""
    _patching.unpatch(NAME)


def autolog(disable: bool = False, **options: Any) -> None:
    """Options for Lightning alone; they supersede ``autologagent.autolog(...)``."""
    _bootstrap.autolog_integration(NAME, disable=disable, **options)


def _check_version(module: ModuleType) -> None:
    _patching.warn_if_untested(module, "Lightning", SUPPORTED, "lightning-version")


def _plain(value: Any) -> Any:
    """A param's value: numbers and strings as they are, anything else as text."""
    return value if isinstance(value, (bool, int, float, str, type(None))) else str(value)


class _FitRun(_patching.TrainingHooks):
    """The run of one outermost ``Trainer.fit``."""

    def __init__(self, trainer: Any, model: Any) -> None:
        self.trainer = trainer
        self.model = model
        self.run: Any = None
        self.run_id = ""
        self.skip = True
        self.callback: Any = None

    @classmethod
    def for_call(cls, trainer: Any, args: tuple, kwargs: dict) -> _FitRun | None:
        if not _bootstrap.config().integration_enabled(NAME):
            return None
        model = args[0] if args else kwargs.get("model")
        return cls(trainer, model)

    def start(self) -> None:
        from autologagent import _fluent, _runs

        try:
            self.run = _runs.begin_training_run(
                f"{type(self.model).__name__}", {"autolog.integration": NAME}
            )
        except _runs.SkipLogging:
            return
        self.skip = False
        self.run_id = self.run.info.run_id if self.run is not None else _runs.current_run_id()
        params: dict[str, Any] = {"epochs": self.trainer.max_epochs}
        hparams = getattr(self.model, "hparams", None) or {}
        params.update({str(key): _plain(value) for key, value in dict(hparams).items()})
        _fluent.log_params(params, run_id=self.run_id)
        every_n = int(_bootstrap.config().get("log_every_n_steps", NAME) or 1)
        self.callback = _make_callback(type(self.trainer), self.run_id, every_n)
        self.trainer.callbacks.append(self.callback)

    def succeeded(self, result: Any) -> None:
        self._finish(None)

    def failed(self, exc: BaseException) -> None:
        self._finish(exc)

    def _finish(self, exc: BaseException | None) -> None:
        if self.skip:
            return
        self.skip = True
        from autologagent import _runs

        try:
            if self.callback is not None:
                if self.callback in self.trainer.callbacks:
                    self.trainer.callbacks.remove(self.callback)
                self.callback.flush()
            _log_best_checkpoints(self.trainer, self.run_id)
        finally:
            _runs.finish_training_run(self.run, exc)


def _log_best_checkpoints(trainer: Any, run_id: str) -> None:
    if not _bootstrap.config().get("log_models", NAME):
        return
    from autologagent import _artifacts, _background

    for checkpoint in getattr(trainer, "checkpoint_callbacks", None) or []:
        path = getattr(checkpoint, "best_model_path", "") or ""
        if not path or not os.path.isfile(path):
            continue
        relative = f"{CHECKPOINT_DIR}/{os.path.basename(path)}"

        def copy(path: str = path, relative: str = relative) -> None:
            with open(path, "rb") as handle:
                _artifacts.write_bytes(run_id, relative, handle.read())

        _background.submit(copy, f"copying checkpoint {relative}")


def _make_callback(trainer_class: type, run_id: str, every_n: int) -> Any:
    """An instance of the callback, made from the same package as the trainer."""
    import importlib

    package = trainer_class.__module__.split(".trainer.")[0]
    callback_base = importlib.import_module(f"{package}.callbacks").Callback
    summary_module = importlib.import_module(f"{package}.utilities.model_summary")

    class AutologCallback(callback_base):  # type: ignore[misc, valid-type]
        """Reads the trainer's metrics at each batch and epoch end; never raises."""

        def __init__(self) -> None:
            self.run_id = run_id
            self.every_n = every_n
            self.step_keys: set[str] = set()
            self.epoch_keys: set[str] = set()  # epoch metrics stay in logged_metrics
            self.pending: list[tuple[str, Any, int]] = []  # (key, detached value, step)
            self.done_epochs: set[int] = set()

        def on_train_start(self, trainer: Any, pl_module: Any) -> None:
            try:
                self._log_start(trainer, pl_module)
            except Exception as own:
                _errors.report(own, "logging Lightning's optimizer and summary")

        def _log_start(self, trainer: Any, pl_module: Any) -> None:
            from autologagent import _artifacts, _fluent

            optimizers = list(getattr(trainer, "optimizers", None) or [])
            if optimizers:
                optimizer = optimizers[0]
                params: dict[str, Any] = {"optimizer_name": type(optimizer).__name__}
                hparams = dict(getattr(pl_module, "hparams", None) or {})
                for key, value in dict(optimizer.defaults).items():
                    if key not in hparams:  # the module's own ``lr`` wins
                        params[key] = _plain(value)
                _fluent.log_params(params, run_id=self.run_id)
            summary = str(summary_module.ModelSummary(pl_module, max_depth=-1))
            _artifacts.write_later(self.run_id, SUMMARY_FILE, summary)

        def on_train_batch_end(self, trainer: Any, *args: Any) -> None:
            try:
                step = trainer.global_step
                if step % self.every_n:
                    return
                for key, value in trainer.logged_metrics.items():
                    if key in self.epoch_keys:
                        continue
                    self.step_keys.add(key)
                    detach = getattr(value, "detach", None)
                    self.pending.append((key, detach() if detach else value, step))
                if len(self.pending) >= FLUSH_EVERY_POINTS:
                    self.flush()  # a long epoch: one sync per this many points
            except Exception as own:
                _errors.report(own, "logging Lightning's step metrics")

        def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
            # Validation inside a training epoch is logged with that epoch's end, where
            # the training epoch metrics are fresh; only one that runs after it logs here.
            if not trainer.sanity_checking and trainer.current_epoch in self.done_epochs:
                self._log_epoch(trainer)

        def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
            self._log_epoch(trainer)
            self.done_epochs.add(trainer.current_epoch)

        def _log_epoch(self, trainer: Any) -> None:
            from autologagent import _fluent

            try:
                self.flush()
                epoch = trainer.current_epoch
                for key, value in trainer.callback_metrics.items():
                    if key in self.step_keys:
                        continue
                    self.epoch_keys.add(key)
                    _fluent.log_metric(key, float(value), step=epoch, run_id=self.run_id)
            except Exception as own:
                _errors.report(own, "logging Lightning's epoch metrics")

        def flush(self) -> None:
            """The step metrics kept since the last flush, as floats (one sync)."""
            from autologagent import _fluent

            pending, self.pending = self.pending, []
            if not pending:
                return
            try:
                import torch

                values = torch.stack([torch.as_tensor(v).float() for _, v, _ in pending]).tolist()
            except (RuntimeError, TypeError, ValueError):
                values = [float(v) for _, v, _ in pending]
            for (key, _value, step), value in zip(pending, values, strict=True):
                _fluent.log_metric(key, value, step=step, run_id=self.run_id)

    return AutologCallback()


_fit_wrapper = _patching.training_wrapper("lightning autologging", _FitRun.for_call)
