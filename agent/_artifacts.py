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


def _checked(relative_path: str) -> list[str]:
    parts = [part for part in relative_path.replace("\\", "/").split("/") if part not in ("", ".")]
    if not parts or relative_path.startswith("/") or ".." in parts:
        raise ValueError(f"artifact path {relative_path!r} must be relative, without '..'")
    return parts


def write_bytes(run_id: str, relative_path: str, data: bytes) -> str:
    """Write ``data`` to the run's artifact ``relative_path`` now; return the file's path.

    Written to a temporary name and renamed, so a reader never sees half a file.
    """
    target = os.path.join(run_artifact_dir(run_id), *_checked(relative_path))
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


def write_text(run_id: str, relative_path: str, text: str) -> str:
    return write_bytes(run_id, relative_path, text.encode("utf-8"))


def write_later(run_id: str, relative_path: str, data: bytes | str) -> None:
    """Write the artifact on the background worker."""
    payload = data.encode("utf-8") if isinstance(data, str) else data
    _background.submit(
        lambda: write_bytes(run_id, relative_path, payload),
        f"writing artifact {relative_path}",
    )
