"""Work that costs something, done off the training thread: one daemon worker.

Writing a model file, drawing plots, asking git about the repository, resolving
package versions: each is a job submitted here and run in order by one thread,
so that the user's ``fit`` returns as soon as what must be captured at once (a
snapshot of the model, the predictions behind a metric) is captured. At exit the
runs wait for the queue to drain (bounded) before the last flush, so nothing a
job records is lost. A job that fails is reported once, like every agent error.

A job nothing waits for (an estimator's HTML view, the program's package
versions) can be deferred: it runs ``DEFER_S`` after it was submitted, or at
exit, or when ``wait()`` is called, whichever comes first. Whatever this thread
runs holds the GIL the program needs, and a program that ends within seconds
(the seed workload) then pays for it at exit, when its own code is done and the
garbage collector is paused (see ``_runs.at_exit``): the view's copy of the
model had set off a full collection (70 ms with scikit-learn's heap) while the
program was still scoring.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from autologagent import _errors

DEFER_S = 5.0
MAX_DEFERRED = 32  # beyond this many waiting, the oldest runs at once (they hold memory)

_jobs: deque[tuple[Callable[[], Any], str]] = deque()
_deferred: deque[tuple[float, Callable[[], Any], str]] = deque()  # (due, job, where)
_cond = threading.Condition()
_thread: threading.Thread | None = None
_busy = 0  # jobs taken off the queue and not finished yet


def submit(job: Callable[[], Any], where: str) -> None:
    """Run ``job()`` on the background thread; ``where`` names it in a warning."""
    with _cond:
        _jobs.append((job, where))
        _cond.notify()
    _ensure_thread()


def submit_deferred(job: Callable[[], Any], where: str) -> None:
    """Run ``job()`` on the background thread ``DEFER_S`` from now, or sooner at exit
    (or at ``wait()``): for work nothing waits for."""
    with _cond:
        _deferred.append((time.monotonic() + DEFER_S, job, where))
        if len(_deferred) > MAX_DEFERRED:
            _, oldest, oldest_where = _deferred.popleft()
            _jobs.append((oldest, oldest_where))
        _cond.notify()
    _ensure_thread()


def run_deferred_now() -> None:
    """Queue every deferred job now (the process is about to end)."""
    with _cond:
        _due_locked(everything=True)
        _cond.notify()


def _ensure_thread() -> None:
    global _thread
    with _cond:
        if _thread is not None:
            return
        thread = threading.Thread(target=_run, name="autologagent-background", daemon=True)
        _thread = thread
    try:
        thread.start()
    except RuntimeError:  # interpreter shutdown: run what is queued here and now
        with _cond:
            _thread = None
        run_pending_here()


def _due_locked(everything: bool = False) -> None:
    """Move the deferred jobs whose time has come (or all) to the queue."""
    now = time.monotonic()
    while _deferred and (everything or _deferred[0][0] <= now):
        _, job, where = _deferred.popleft()
        _jobs.append((job, where))


def _run() -> None:
    global _busy
    from autologagent._writer import _block_async_signals

    _block_async_signals()
    while True:
        with _cond:
            while True:
                _due_locked()
                if _jobs:
                    break
                _cond.wait(_deferred[0][0] - time.monotonic() if _deferred else None)
            job, where = _jobs.popleft()
            _busy += 1
        try:
            _call(job, where)
        finally:
            with _cond:
                _busy -= 1
                _cond.notify_all()


def _call(job: Callable[[], Any], where: str) -> None:
    try:
        job()
    except Exception as exc:
        _errors.report(exc, where)


def run_pending_here() -> None:
    """Run every queued job, deferred ones too, on the calling thread (no worker
    thread to run them)."""
    while True:
        with _cond:
            _due_locked(everything=True)
            if not _jobs:
                return
            job, where = _jobs.popleft()
        _call(job, where)


def wait(timeout: float = 60.0) -> bool:
    """Block until every submitted job has finished; False if ``timeout`` passed first."""
    deadline = time.monotonic() + timeout
    with _cond:
        run_deferred_now()  # (the condition's lock is re-entrant)
        if _thread is None or not _thread.is_alive():
            pass
        else:
            while _jobs or _busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                _cond.wait(left)
            return True
    run_pending_here()
    return True


def pending() -> int:
    with _cond:
        return len(_jobs) + len(_deferred) + _busy


def reset_after_fork() -> None:
    """In a forked child: the parent's jobs and thread are not ours."""
    global _cond, _thread, _busy
    _jobs.clear()
    _deferred.clear()
    _cond = threading.Condition()
    _thread = None
    _busy = 0
