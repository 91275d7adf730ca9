"""The spool: what a tracking server has not taken yet, kept in a local file.

While the server is unreachable (or refuses the credentials), the agent writes
each operation it could not send (create a run, log a batch, end a run...) as
one JSON line to this process's spool file, and goes on: training never waits
for the network. The same process replays the file, oldest line first, once the
server answers again; what is left at exit stays on disk, and
``python -m autologagent sync`` replays it later, from any process.

Layout, under ``AUTOLOG_SPOOL_DIR`` (default ``~/.cache/autologagent/spool``)::

    <server key>/server                 the server's URI, without credentials
    <server key>/<time>-<pid>-<rand>.jsonl   one file per process, one operation a line
    <server key>/<...>.jsonl.done       bytes of that file already replayed
    <server key>/artifacts/<run id>/... artifacts staged for upload (see _mlflow_store)

A process holds an exclusive ``flock`` on its own spool file while it may still
append to it, so ``sync`` leaves the file of a running process alone. Replay
moves the ``.done`` offset forward after every operation the server took, so a
replay cut short resumes where it stopped; an operation resent after a lost
answer is harmless (the server keeps one copy of an identical metric point, and
runs are found again by their ``autolog.run_id`` tag).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

SPOOL_DIR_VAR = "AUTOLOG_SPOOL_DIR"
SUFFIX = ".jsonl"
DONE_SUFFIX = ".done"
ARTIFACTS = "artifacts"

Operation = dict[str, Any]


def spool_root(environ: Any = None) -> str:
    env = os.environ if environ is None else environ
    configured = env.get(SPOOL_DIR_VAR)
    if configured:
        return os.path.abspath(os.path.expanduser(configured))
    cache = env.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(cache, "autologagent", "spool")


def server_key(uri: str) -> str:
    """A folder name for one server: its host and port, and a digest of the whole URI."""
    parts = urlsplit(uri)
    host = (parts.hostname or "server").replace(":", "_")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    base = f"{parts.scheme}://{host}:{port}{parts.path.rstrip('/')}"
    return f"{host}_{port}_{hashlib.sha256(base.encode()).hexdigest()[:8]}"


def server_folder(uri: str, environ: Any = None) -> str:
    return os.path.join(spool_root(environ), server_key(uri))


def staging_root(uri: str, environ: Any = None) -> str:
    """Where a run's artifacts are written before they are uploaded."""
    return os.path.join(server_folder(uri, environ), ARTIFACTS)


class SpoolFile:
    """This process's spool file for one server: appended to, replayed, then removed."""

    def __init__(self, folder: str, display_uri: str) -> None:
        self.folder = folder
        self.display_uri = display_uri
        self.path = ""
        self._handle: Any = None
        self.appended = 0  # operations written in this process

    def _open(self) -> Any:
        if self._handle is None:
            import fcntl

            os.makedirs(self.folder, mode=0o700, exist_ok=True)
            marker = os.path.join(self.folder, "server")
            if not os.path.exists(marker):
                with open(marker, "w", encoding="utf-8") as handle:
                    handle.write(self.display_uri + "\n")
            if not self.path:
                stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
                name = f"{stamp}-{os.getpid()}-{os.urandom(3).hex()}{SUFFIX}"
                self.path = os.path.join(self.folder, name)
            self._handle = open(self.path, "a+b")  # noqa: SIM115 (held while the process lives)
            fcntl.flock(self._handle.fileno(), fcntl.LOCK_EX)
        return self._handle

    def append(self, operations: list[Operation]) -> None:
        handle = self._open()
        handle.write(b"".join(encode(op) for op in operations))
        handle.flush()
        self.appended += len(operations)

    def pending(self) -> bool:
        return bool(self.path) and _size(self.path) > read_offset(self.path)

    def replay(self, send: Callable[[Operation], None]) -> None:
        """Send every operation not replayed yet, in order; raises where the server fails."""
        if self.pending():
            self._open()
            replay_file(self.path, send)

    def left(self) -> int:
        """Operations still in the file."""
        return count_left(self.path) if self.path else 0

    def close(self) -> None:
        """Release the lock; an empty (fully replayed) file is removed."""
        if self._handle is None:
            return
        try:
            if not self.pending():
                remove(self.path)
        finally:
            self._handle.close()
            self._handle = None


def encode(operation: Operation) -> bytes:
    return json.dumps(operation, separators=(",", ":")).encode("utf-8") + b"\n"


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def read_offset(path: str) -> int:
    try:
        with open(path + DONE_SUFFIX, encoding="ascii") as handle:
            return int(handle.read().strip() or 0)
    except (OSError, ValueError):
        return 0


def _write_offset(path: str, offset: int) -> None:
    temporary = f"{path}{DONE_SUFFIX}.{os.getpid()}"
    with open(temporary, "w", encoding="ascii") as handle:
        handle.write(str(offset))
    os.replace(temporary, path + DONE_SUFFIX)


def _lines_from(path: str, offset: int) -> Iterator[tuple[int, bytes]]:
    """(offset after the line, line) for every complete line past ``offset``."""
    with open(path, "rb") as handle:
        handle.seek(offset)
        position = offset
        for line in handle:
            if not line.endswith(b"\n"):
                return  # being written: the next replay takes it
            position += len(line)
            yield position, line


def replay_file(path: str, send: Callable[[Operation], None]) -> int:
    """Send the file's operations from its offset on; return how many were sent."""
    sent = 0
    for position, line in _lines_from(path, read_offset(path)):
        if line.strip():
            send(json.loads(line))
            sent += 1
        _write_offset(path, position)
    return sent


def count_left(path: str) -> int:
    return sum(1 for _position, line in _lines_from(path, read_offset(path)) if line.strip())


def remove(path: str) -> None:
    for name in (path, path + DONE_SUFFIX):
        try:
            os.unlink(name)
        except OSError:
            pass


def spool_files(folder: str) -> list[str]:
    """The spool files of one server, oldest first."""
    try:
        names = sorted(name for name in os.listdir(folder) if name.endswith(SUFFIX))
    except OSError:
        return []
    return [os.path.join(folder, name) for name in names]


def try_lock(path: str) -> Any:
    """The file opened and locked, or None if a running process holds it."""
    import fcntl

    handle = open(path, "rb")  # noqa: SIM115 (returned to the caller)
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        return None
    return handle
