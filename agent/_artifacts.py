"""Files the agent itself writes into a run's artifacts (models, plots, tables).

The manual ``log_artifact`` copies a user's file; integrations instead hand over
bytes they captured on the training thread, and the file is written here, off
it, by the background worker. Paths are always relative to the run's artifact
folder and checked like ``log_artifact``'s, so nothing lands outside it.
"""

from __future__ import annotations

import os
import tempfile

from autologagent import _background, _bootstrap


def run_artifact_dir(run_id: str) -> str:
    """The folder of ``run_id``'s artifacts in the configured store."""
    from autologagent._config import store_paths

    _, artifact_root = store_paths(_bootstrap.config().get("tracking_uri"))
    return os.path.join(artifact_root, run_id)


def make_private_dirs(path: str) -> None:
    """Create ``path`` and any missing folder above it, readable by the owner only (0700).

    ``os.makedirs`` gives its mode to the last folder only. Existing folders are
    left as they are.
    """
    if os.path.isdir(path):
        return
    parent = os.path.dirname(path)
    if parent and parent != path:
        make_private_dirs(parent)
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass


def _checked(relative_path: str) -> list[str]:
    parts = [part for part in relative_path.replace("\\", "/").split("/") if part not in ("", ".")]
    if not parts or relative_path.startswith("/") or ".." in parts:
        raise ValueError(f"artifact path {relative_path!r} must be relative, without '..'")
    return parts


# The writer's key too: a full or read-only store is one warning, whatever failed first.
STORE_WARNING_KEY = "store-write"


def warn_unwritable(exc: BaseException) -> None:
    """One warning, however many artifacts of however many runs could not be written."""
    from autologagent import _errors

    _errors.warn(
        f"cannot write artifacts into the store ({type(exc).__name__}: {exc}); "
        "training goes on without them",
        key=STORE_WARNING_KEY,
    )


def write_bytes(run_id: str, relative_path: str, data: bytes) -> str | None:
    """Write ``data`` to the run's artifact ``relative_path`` now; return the file's path.

    Written to a temporary name and renamed, so a reader never sees half a file.
    A store that cannot be written (read-only, full, not a folder) is one warning
    for the whole process, and None.
    """
    run_dir = run_artifact_dir(run_id)
    target = os.path.join(run_dir, *_checked(relative_path))
    try:
        make_private_dirs(os.path.dirname(run_dir))
        return _write_atomically(target, data)
    except OSError as exc:
        warn_unwritable(exc)
        return None


def _write_atomically(target: str, data: bytes) -> str:
    folder = os.path.dirname(target)
    os.makedirs(folder, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=".partial-")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(temporary, target)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise
    return target


def write_text(run_id: str, relative_path: str, text: str) -> str | None:
    return write_bytes(run_id, relative_path, text.encode("utf-8"))


def write_later(run_id: str, relative_path: str, data: bytes | str) -> None:
    """Write the artifact on the background worker."""
    payload = data.encode("utf-8") if isinstance(data, str) else data
    _background.submit(
        lambda: write_bytes(run_id, relative_path, payload),
        f"writing artifact {relative_path}",
    )
