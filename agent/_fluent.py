"""The manual API, with MLflow's signatures, for what autologging cannot guess.

Every call enqueues and returns: nothing here touches the store on the calling
thread, except ``log_artifact``, which copies the file before returning so that
the file may change afterwards. Bad input from the caller is a ``TypeError`` or
``ValueError`` naming the argument; the agent's own failures are warnings.
"""

from __future__ import annotations

import errno
import os
import shutil
import time
from collections.abc import Mapping
from typing import Any

from autologagent import _artifacts, _bootstrap, _errors, _runs, _writer
from autologagent._runs import ActiveRun

_now = time.time
_metrics_append = _writer.metrics.append

MAX_PARAM_LENGTH = 6000  # as MLflow; longer values are cut and the run is tagged


def _check_key(key: object, what: str) -> str:
    if not isinstance(key, str) or not key:
        raise TypeError(f"{what}: key must be a non-empty string, got {key!r}")
    return key


def _ready() -> None:
    """Make sure the agent's core is set up (the manual API works without AUTOLOG=1)."""
    if not _bootstrap.core_ready:
        _bootstrap.prepare_core()


def log_metric(
    key: str,
    value: float,
    step: int | None = None,
    timestamp: int | None = None,
    run_id: str | None = None,
    synchronous: bool | None = None,
    dataset: Any = None,
    model_id: str | None = None,
) -> None:
    """Record one point of the series ``key`` (step 0 when not given, as MLflow).

    This is the hot path of a training loop: a few checks, one tuple, one append.
    ``synchronous=True`` also waits until the point is committed.
    """
    if type(key) is not str or not key:
        _check_key(key, "log_metric")
    if type(value) is not float:
        value = _as_value(key, value)
    if step is None:
        step = 0
    elif type(step) is not int:
        step = _as_step(key, step)
    if run_id is None:
        run_id = _runs.fast_run_id or _current_run_id()
    elif _writer.thread_missing():
        _ready()
        _writer.ensure_started()
    _metrics_append((run_id, key, value, step, _now() if timestamp is None else timestamp / 1000.0))
    if synchronous:
        _writer.wait_idle()


def _as_value(key: str, value: object) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise TypeError(
            f"log_metric({key!r}): value must be a number, got {type(value).__name__}"
        ) from None


def _as_step(key: str, step: object) -> int:
    try:
        return int(step)  # type: ignore[call-overload,no-any-return]
    except (TypeError, ValueError):
        raise TypeError(f"log_metric({key!r}): step must be an integer, got {step!r}") from None


def _current_run_id() -> str:
    """log_metric's slow path: a training run of this thread, or no run yet."""
    if not _bootstrap.core_ready:
        _bootstrap.prepare_core()
    return _runs.current_run_id()


def log_metrics(
    metrics: Mapping[str, float],
    step: int | None = None,
    timestamp: int | None = None,
    run_id: str | None = None,
    synchronous: bool | None = None,
    **_ignored: Any,
) -> None:
    """Record one point of each series in ``metrics``, all at the same step."""
    for key, value in metrics.items():
        log_metric(key, value, step=step, timestamp=timestamp, run_id=run_id)
    if synchronous:
        _writer.wait_idle()


def _param_value(run_id: str, key: str, value: Any) -> str:
    text = str(value)
    if len(text) > MAX_PARAM_LENGTH:
        _writer.enqueue("tags", (run_id, f"autolog.truncated_param.{key}", str(len(text))))
        text = text[:MAX_PARAM_LENGTH]
    return text


def log_param(key: str, value: Any, run_id: str | None = None) -> Any:
    """Record a parameter as a string; returns ``value`` as MLflow does."""
    _check_key(key, "log_param")
    _ready()
    run_id = run_id or _runs.current_run_id()
    _writer.enqueue("params", (run_id, key, _param_value(run_id, key, value)))
    return value


def log_params(params: Mapping[str, Any], run_id: str | None = None) -> None:
    """Record several parameters."""
    _ready()
    run_id = run_id or _runs.current_run_id()
    for key, value in params.items():
        _check_key(key, "log_params")
        _writer.enqueue("params", (run_id, key, _param_value(run_id, key, value)))


def set_tag(key: str, value: Any, run_id: str | None = None) -> None:
    """Set a tag (a string) on the active run."""
    _check_key(key, "set_tag")
    _ready()
    _writer.enqueue("tags", (run_id or _runs.current_run_id(), key, str(value)))


def set_tags(tags: Mapping[str, Any], run_id: str | None = None) -> None:
    """Set several tags."""
    _ready()
    run_id = run_id or _runs.current_run_id()
    for key, value in tags.items():
        _check_key(key, "set_tags")
        _writer.enqueue("tags", (run_id, key, str(value)))


def _safe_artifact_path(artifact_path: str | None) -> str:
    if not artifact_path:
        return ""
    normalized = artifact_path.replace("\\", "/")
    parts = [part for part in normalized.split("/") if part not in ("", ".")]
    if normalized.startswith("/") or ".." in parts:
        raise ValueError(
            f"log_artifact: artifact_path {artifact_path!r} must be a relative path "
            "inside the run's artifacts (no '..', not absolute)"
        )
    return os.path.join(*parts) if parts else ""


def log_artifact(
    local_path: str, artifact_path: str | None = None, run_id: str | None = None
) -> None:
    """Copy a file (or a folder's files) into the run's artifacts, under ``artifact_path``."""
    if not os.path.exists(local_path):
        raise FileNotFoundError(f"log_artifact: no file or folder at {local_path!r}")
    subfolder = _safe_artifact_path(artifact_path)
    _ready()
    run_id = run_id or _runs.current_run_id()
    _, artifact_root = _store_paths()
    destination = os.path.join(artifact_root, run_id, subfolder)
    try:
        _artifacts.make_private_dirs(artifact_root)
        os.makedirs(destination, exist_ok=True)
    except OSError as exc:  # the store cannot be written: one warning for everything
        _artifacts.warn_unwritable(exc)
        return
    try:
        if os.path.isdir(local_path):
            target = os.path.join(destination, os.path.basename(os.path.normpath(local_path)))
            shutil.copytree(local_path, target, dirs_exist_ok=True)
        else:
            shutil.copy2(local_path, os.path.join(destination, os.path.basename(local_path)))
    except OSError as exc:
        if exc.errno in _STORE_FULL_OR_READ_ONLY:
            _artifacts.warn_unwritable(exc)
        else:
            _errors.report(exc, f"log_artifact({local_path!r})")


_STORE_FULL_OR_READ_ONLY = {
    getattr(errno, name) for name in ("ENOSPC", "EROFS", "EDQUOT") if hasattr(errno, name)
}


def _store_paths() -> tuple[str, str]:
    from autologagent._config import store_paths

    return store_paths(_bootstrap.config().get("tracking_uri"))


def start_run(
    run_id: str | None = None,
    experiment_id: str | None = None,
    run_name: str | None = None,
    nested: bool = False,
    parent_run_id: str | None = None,
    tags: Mapping[str, Any] | None = None,
    description: str | None = None,
    **_ignored: Any,
) -> ActiveRun:
    """Start a run (also a context manager), as ``mlflow.start_run``."""
    _ready()
    return _runs.start_run(
        run_id=run_id,
        experiment_id=experiment_id,
        run_name=run_name,
        nested=nested,
        parent_run_id=parent_run_id,
        tags=dict(tags) if tags else None,
        description=description,
    )


def end_run(status: str = "FINISHED") -> None:
    """End the active run with ``status`` (FINISHED, FAILED or KILLED)."""
    _runs.end_run(status)


def active_run() -> ActiveRun | None:
    """The run records go to now, or None."""
    run = _runs.active_run()
    return run if run is None or run.kind != "worker-parent" else None


def last_active_run() -> ActiveRun | None:
    """The active run, else the run that ended last in this process."""
    return _runs.last_active_run()


def flush() -> None:
    """Block until everything logged so far is committed to the store."""
    _writer.wait_idle()
