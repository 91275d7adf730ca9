"""Work that costs something, done off the training thread: one daemon worker.

Writing a model file, drawing plots, asking git about the repository, resolving
package versions: each is a job submitted here and run in order by one thread,
so that the user's ``fit`` returns as soon as what must be captured at once (a
snapshot of the model, the predictions behind a metric) is captured. At exit the
runs wait for the queue to drain (bounded) before the last flush, so nothing a
job records is lost. A job that fails is reported once, like every agent error.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from autologagent import _errors

_jobs: deque[tuple[Callable[[], Any], str]] = deque()
_cond = threading.Condition()
_thread: threading.Thread | None = None
_busy = 0  # jobs taken off the queue and not finished yet


def submit(job: Callable[[], Any], where: str) -> None:
    """Run ``job()`` on the background thread; ``where`` names it in a warning."""
    global _thread
    with _cond:
        _jobs.append((job, where))
        _cond.notify()
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


def _run() -> None:
    global _busy
    from autologagent._writer import _block_async_signals

    _block_async_signals()
    while True:
        with _cond:
            while not _jobs:
                _cond.wait()
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
    """Run every queued job on the calling thread (no worker thread to run them)."""
    while True:
        with _cond:
            if not _jobs:
                return
            job, where = _jobs.popleft()
        _call(job, where)


def wait(timeout: float = 60.0) -> bool:
    """Block until every submitted job has finished; False if ``timeout`` passed first."""
    deadline = time.monotonic() + timeout
    with _cond:
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
        return len(_jobs) + _busy


def reset_after_fork() -> None:
    """In a forked child: the parent's jobs and thread are not ours."""
    global _cond, _thread, _busy
    _jobs.clear()
    _cond = threading.Condition()
    _thread = None
    _busy = 0
