"""The background writer: logging calls enqueue, one thread commits in batches.

A logging call appends a tuple to a deque (thread-safe, no lock) and returns. A
daemon thread wakes at most ``FLUSH_INTERVAL_S`` apart, drains the queues and
commits them to the store in one transaction. ``flush()`` does the same at once
from any thread (at exit, on SIGTERM, at the end of a worker's run).

After ``fork`` the child starts with empty queues (the parent writes what it had
queued), no thread (one starts at its first record) and no store connection (a
SQLite connection must not cross a fork); see ``reset_after_fork``.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from itertools import repeat, starmap
from typing import Any

from autologagent import _errors, _liveness
from autologagent._store import RECORD_KINDS, Batch, Store

FLUSH_INTERVAL_S = 1.0
# A batch that cannot be written is kept and retried at the next flush, so that a
# store locked or unreachable for a while loses nothing; past this many records
# the oldest retained batch is dropped (the first failure was already reported).
MAX_PENDING_RECORDS = 5_000_000

# Hot path: metrics go straight into their own deque.
metrics: deque[tuple[str, str, float, int, float]] = deque()
# Everything else, in order: (kind, record); kind is one of the Batch fields.
records: deque[tuple[str, Any]] = deque()

_lock = threading.RLock()  # one flush at a time (re-entrant: a SIGTERM may land mid-flush)
_wake = threading.Event()
_thread: threading.Thread | None = None
_store: Store | None = None
_pending: Batch | None = None
_last_failure_transient = False  # the last failed write met a locked store
_flushing_thread: int | None = None  # the thread inside flush(), if any
_after_flush: list[Callable[[], None]] = []
# Called by the writer thread at every wake (about once a second), before it flushes.
_tick_callbacks: list[Callable[[float], None]] = []


def enqueue(kind: str, record: Any) -> None:
    records.append((kind, record))
    if _thread is None:
        _start_thread()


def on_tick(callback: Callable[[float], None]) -> None:
    """Have the writer thread call ``callback(time.time())`` at each wake, before it flushes.

    The PyTorch integration buffers steps and turns them into points when this
    says so, instead of reading the clock at every step.
    """
    _tick_callbacks.append(callback)


def thread_missing() -> bool:
    return _thread is None


def ensure_started() -> None:
    """Start the writer thread if it is not running (after the first record or a fork)."""
    if _thread is None:
        _start_thread()


def _start_thread() -> None:
    global _thread
    with _lock:
        if _thread is not None:
            return
        thread = threading.Thread(target=_run, name="autologagent-writer", daemon=True)
        _thread = thread
    try:
        thread.start()
    except RuntimeError:
        # Python 3.12 refuses new threads at interpreter shutdown (a run closed in
        # an atexit handler): go on without one; at_exit flushes synchronously.
        with _lock:
            _thread = None
        return
    _flush_before_multiprocessing_exit()


def _flush_before_multiprocessing_exit() -> None:
    """A multiprocessing child ends with ``os._exit``, skipping atexit: flush before that.

    ``multiprocessing.util``'s finalizers with an exit priority run in the child
    right before it exits, after its target returned (fork, spawn and forkserver).
    """
    import sys

    util = sys.modules.get("multiprocessing.util")
    process = sys.modules.get("multiprocessing.process")
    if util is None or process is None:
        return
    if process.current_process().name == "MainProcess":
        return
    util.Finalize(None, flush, exitpriority=100)


# Signals the writer thread never takes: the kernel gives a process-directed
# signal to any thread that does not block it, and one taken here would leave the
# main thread asleep in a blocking call (a pool worker waiting for its next task
# would never see its SIGTERM, and its pool would hang). Blocked here, they go
# to the main thread, as in a program without the agent.
_ASYNC_SIGNALS = (
    "SIGINT",
    "SIGTERM",
    "SIGHUP",
    "SIGQUIT",
    "SIGUSR1",
    "SIGUSR2",
    "SIGALRM",
    "SIGCHLD",
    "SIGPIPE",
    "SIGWINCH",
)


def _block_async_signals() -> None:
    import signal

    wanted = {getattr(signal, name) for name in _ASYNC_SIGNALS if hasattr(signal, name)}
    try:
        signal.pthread_sigmask(signal.SIG_BLOCK, wanted)
    except (AttributeError, OSError, ValueError):
        pass


def _run() -> None:
    _block_async_signals()
    while True:
        _wake.wait(FLUSH_INTERVAL_S)
        _wake.clear()
        try:
            now = time.time()
            for callback in _tick_callbacks:
                callback(now)
            _liveness.heartbeat(enqueue, now)
            flush()
        except Exception as exc:  # never let the thread die silently
            _errors.warn(f"the writer thread hit {type(exc).__name__}: {exc}")


def _store_uri() -> str:
    from autologagent import _bootstrap

    return str(_bootstrap.config().get("tracking_uri"))


def store() -> Store:
    """The open store, opened on first use (by the writer thread, off the hot path)."""
    global _store
    if _store is None:
        from autologagent._store import open_store

        _store = open_store(_store_uri())
    return _store


def _drain() -> Batch:
    batch = Batch()
    popleft = records.popleft
    while True:
        try:
            kind, record = popleft()
        except IndexError:
            break
        getattr(batch, kind).append(record)
    # Exactly the points queued so far, popped in C: appends racing with this
    # drain stay queued for the next flush.
    batch.metrics = list(starmap(metrics.popleft, repeat((), len(metrics))))
    return batch


def _merge(older: Batch, newer: Batch) -> Batch:
    for name in RECORD_KINDS:
        getattr(older, name).extend(getattr(newer, name))
    return older


def flush() -> bool:
    """Commit everything queued so far; return False if it could not be written.

    A failure is reported once per process (one warning line, however long the
    store stays unwritable); the records are retried at the next flush.
    """
    global _flushing_thread
    with _lock:
        if _flushing_thread == threading.get_ident():
            return True  # re-entered from a signal handler: the outer flush writes
        _flushing_thread = threading.get_ident()
        try:
            written = _flush_locked()
        finally:
            _flushing_thread = None
    while _after_flush:
        _after_flush.pop(0)()
    return written


def run_after_flush(action: Callable[[], None]) -> bool:
    """From a signal handler: if this thread is mid-flush, run ``action`` once it is done.

    A SIGTERM landing inside the flush at a worker's exit must not kill the
    process before the batch it holds is committed. Returns whether it deferred.
    """
    if _flushing_thread != threading.get_ident():
        return False
    _after_flush.append(action)
    return True


def _flush_locked() -> bool:
    global _pending, _last_failure_transient
    batch = _drain()
    if _pending is not None:
        if len(_pending) + len(batch) <= MAX_PENDING_RECORDS:
            batch = _merge(_pending, batch)
        _pending = None
    if not len(batch):
        return True
    try:
        store().write(batch)
    except Exception as exc:
        _last_failure_transient = _transient(exc)
        full = _store_full(exc)
        if full or _bad_record(exc):
            # A record the store cannot take (a string with a lone surrogate, say)
            # must not hold back every record after it: write the others alone.
            # On a full disk, what still fits (run rows, ends, params) goes in too.
            batch = _write_each(batch, keep_going=full)
            if not len(batch):
                return True
        _pending = batch
        _errors.warn(
            f"cannot write to the store at {_store_uri()} ({type(exc).__name__}: {exc}); "
            "the program goes on, and the agent keeps retrying",
            key="store-write",
        )
        return False
    return True


def flush_at_exit(patience_s: float = 5.0) -> None:
    """The last flush of the process: wait out a store that another process has locked.

    A store that stays locked past the busy timeout of one attempt is retried for
    ``patience_s`` more; a store that cannot be written at all is not waited for.
    """
    deadline = time.monotonic() + patience_s
    while not flush() and _last_failure_transient and time.monotonic() < deadline:
        time.sleep(0.2)


def _transient(exc: Exception) -> bool:
    import sqlite3

    text = str(exc)
    return isinstance(exc, sqlite3.OperationalError) and ("locked" in text or "busy" in text)


def _store_full(exc: Exception) -> bool:
    """Whether the store's disk (or quota) is full: smaller records may still fit."""
    import sqlite3

    return isinstance(exc, sqlite3.OperationalError) and "full" in str(exc)


def _bad_record(exc: Exception) -> bool:
    """Whether a record failed (a value SQLite cannot bind), not the store (locked, full)."""
    import sqlite3

    bad = (ValueError, TypeError, OverflowError, sqlite3.InterfaceError, sqlite3.ProgrammingError)
    return isinstance(exc, bad)


def _write_each(batch: Batch, keep_going: bool = False) -> Batch:
    """Write record by record (a metric series at a time), dropping those that cannot be written.

    Returns what is left to retry if the store itself fails meanwhile: everything
    from the failed unit on, or with ``keep_going`` (a full disk) only the units
    that failed.
    """
    units: list[tuple[str, list[Any]]] = []
    for kind in RECORD_KINDS:
        if kind != "metrics":
            units.extend((kind, [record]) for record in getattr(batch, kind))
            continue
        series: dict[tuple[Any, Any], list[Any]] = {}
        for point in batch.metrics:
            series.setdefault((point[0], point[1]), []).append(point)
        units.extend((kind, points) for points in series.values())
    left = Batch()
    for index, (kind, unit) in enumerate(units):
        single = Batch()
        getattr(single, kind).extend(unit)
        try:
            store().write(single)
        except Exception as exc:
            if _bad_record(exc):
                _errors.warn(
                    f"dropped a record the store cannot take ({type(exc).__name__}: {exc})",
                    key="store-record",
                )
            elif keep_going and _store_full(exc):
                getattr(left, kind).extend(unit)
            else:
                for later_kind, later in units[index:]:
                    getattr(left, later_kind).extend(later)
                return left
    return left


def before_fork() -> None:
    """Hold the flush lock across ``fork`` and close the store's connection first.

    No thread is then inside SQLite when the process forks, and the child inherits
    no SQLite state at all: SQLite keeps per-process tables of open files, locks
    and WAL shared memory, which a child would otherwise take for its own while
    the locks behind them belong to the parent. The parent reopens the store at
    its next flush (a millisecond, once per fork).
    """
    global _store
    _lock.acquire()
    if _store is not None:
        try:
            _store.close()
        except Exception:
            pass
        _store = None


def after_fork_in_parent() -> None:
    _lock.release()


def reset_after_fork() -> None:
    """In a forked child: forget the parent's queue, thread, lock and connection."""
    global _lock, _wake, _thread, _store, _pending, _flushing_thread
    metrics.clear()
    records.clear()
    _lock = threading.RLock()
    _wake = threading.Event()
    _thread = None
    _store = None  # closed before the fork
    _pending = None
    _flushing_thread = None
    _after_flush.clear()


def wait_idle(timeout: float = 30.0) -> None:
    """Block until the queues are empty and committed (for tests and benchmarks)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not flush():
            return  # the store cannot be written now; reported once already
        if not metrics and not records and _pending is None:
            return
