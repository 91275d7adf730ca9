"""Run semantics: which run a record goes to, and when runs start and end.

- A training call with a clear boundary (an sklearn ``fit``) makes its own run
  when no run is active, ending with the call: FINISHED, or FAILED / KILLED if it
  raises. Those runs are per thread, so two threads fitting make two runs.
- The user's own runs (``start_run``) form a stack shared by all threads, and are
  reused by everything logged while they are active.
- Loop-shaped training and manual logging outside any run go to the *process
  run*, started at the first record and ended with the process: FINISHED, FAILED
  on an uncaught exception (its class and message as tags), KILLED on SIGTERM or
  Ctrl-C.
- In a worker process (see ``_session``) there is no process run: records go to
  the root's active run, and training calls make child runs of it, or nothing if
  the root is itself inside a training call.
"""

from __future__ import annotations

import gc
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from autologagent import _bootstrap, _context, _liveness, _session, _writer

FINISHED, FAILED, KILLED, RUNNING = "FINISHED", "FAILED", "KILLED", "RUNNING"
RUN_STATUSES = (FINISHED, FAILED, KILLED, RUNNING)


class RunInfo:
    """The identity and state of a run, with MLflow's attribute names."""

    def __init__(
        self,
        run_id: str,
        run_name: str,
        experiment_name: str,
        parent_run_id: str | None,
        start_time: float,
    ) -> None:
        self.run_id = run_id
        self.run_name = run_name
        self.experiment_name = experiment_name
        self.parent_run_id = parent_run_id
        self.start_time = int(start_time * 1000)
        self.end_time: int | None = None
        self.status = RUNNING

    @property
    def run_uuid(self) -> str:
        return self.run_id

    def __repr__(self) -> str:
        return f"<RunInfo run_id={self.run_id!r} run_name={self.run_name!r} status={self.status!r}>"


class ActiveRun:
    """A run this process started; a context manager that ends it, as MLflow's."""

    def __init__(self, info: RunInfo, kind: str) -> None:
        self.info = info
        self.kind = kind  # "user", "training", "process" or "worker-parent"

    def __enter__(self) -> ActiveRun:
        return self

    def __exit__(self, exc_type: type | None, exc: BaseException | None, tb: Any) -> None:
        status = status_for_exception(exc)
        end_run_object(self, status, exc)

    def __repr__(self) -> str:
        return f"<ActiveRun: run_id={self.info.run_id!r}, name={self.info.run_name!r}>"


def status_for_exception(exc: BaseException | None) -> str:
    if exc is None:
        return FINISHED
    if isinstance(exc, KeyboardInterrupt):
        return KILLED
    if isinstance(exc, SystemExit) and exc.code in (None, 0):
        return FINISHED
    return FAILED


class _State:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.stack: list[ActiveRun] = []  # user runs, shared by all threads
        self.process_run: ActiveRun | None = None
        self.last: ActiveRun | None = None
        self.exit_exception: BaseException | None = None
        self.signal_handler_installed = False


_state = _State()
# The run id records of any thread go to when the thread has no training run of
# its own: the user's innermost run, else the process run. Kept up to date on
# every change so that log_metric reads one global instead of walking the state.
shared_run_id: str | None = None
# shared_run_id while no thread has a training run (then every thread's records
# go there), else None: the one global that log_metric's fast path reads.
fast_run_id: str | None = None
_training_runs = 0
# Called (no arguments) whenever the run that records go to may have changed.
_change_listeners: list[Callable[[], None]] = []
_root_used = False  # whether this root process has made the root run its process run
_thread = threading.local()  # .run: this thread's training run


def _experiment() -> str:
    return str(_bootstrap.config().get("experiment"))


def _process_run_name() -> str:
    """The script's file name, or the module's name under ``-m``."""
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    if spec is not None and getattr(spec, "name", None):
        return str(spec.name)
    path = getattr(main, "__file__", None) or (sys.argv[0] if sys.argv else "")
    return os.path.basename(path) or "python"


# --- which run ----------------------------------------------------------------


def active_run() -> ActiveRun | None:
    """This thread's training run, else the user's innermost run, else the process run."""
    run = getattr(_thread, "run", None)
    if run is not None:
        return run
    stack = _state.stack
    if stack:
        return stack[-1]
    return _state.process_run


def current_run_id() -> str:
    """The run a record goes to now; starts the process run if there is none."""
    run = getattr(_thread, "run", None)
    if run is not None:
        return run.info.run_id
    stack = _state.stack
    if stack:
        return stack[-1].info.run_id
    process_run = _state.process_run
    if process_run is not None:
        return process_run.info.run_id
    return _start_implicit_run().info.run_id


def _start_implicit_run() -> ActiveRun:
    with _state.lock:
        if _state.process_run is not None:
            return _state.process_run
        if _session.rank is not None:
            run = _job_run()
        elif _session.is_worker():
            parent_id, _in_call = _session.read_context()
            run_id = parent_id or _ensure_root_run()
            info = RunInfo(run_id, "", _experiment(), None, time.time())
            run = ActiveRun(info, "worker-parent")
            _writer.ensure_started()
            _install_signal_handler()  # a pool's terminate() must not lose the points
        else:
            run = _new_run(_process_run_name(), "process", parent_run_id=None)
        _state.process_run = run
        _publish()
        return run


def _job_run() -> ActiveRun:
    """A rank's process run: the job's run, which rank 0 starts and ends."""
    run_id = _session.job_run_id()
    if run_id is None and _session.is_worker():
        run_id = _session.root_run_id
    if _session.rank == 0:
        return _new_run(_process_run_name(), "process", parent_run_id=None, run_id=run_id)
    if run_id is None:  # no launcher under the agent and no rendezvous id: nothing shared
        run_id = _session.new_run_id()
    now = time.time()
    name = _process_run_name()
    _writer.enqueue("run_starts", (run_id, _experiment(), name, now, None, RUNNING))
    run = ActiveRun(RunInfo(run_id, name, _experiment(), None, now), "worker-parent")
    _context.rank_joined(run)
    _install_signal_handler()
    return run


def _ensure_root_run() -> str:
    """Worker: the root's run id, its row created if the root has not made it yet."""
    run_id = _session.root_run_id
    name = _session.root_name or _process_run_name()
    _writer.enqueue("run_starts", (run_id, _experiment(), name, time.time(), None, RUNNING))
    return run_id


def _new_run(
    name: str,
    kind: str,
    parent_run_id: str | None,
    tags: dict[str, str] | None = None,
    run_id: str | None = None,
) -> ActiveRun:
    global _root_used
    now = time.time()
    if run_id is None:
        if kind == "process" and not _session.is_worker() and not _root_used:
            # The first process run takes the root run id, which workers may
            # already have created as their parent.
            run_id = _session.root_run_id
            _root_used = True
        else:
            run_id = _session.new_run_id()
    info = RunInfo(run_id, name, _experiment(), parent_run_id, now)
    run = ActiveRun(info, kind)
    _writer.enqueue("run_starts", (run_id, _experiment(), name, now, parent_run_id, RUNNING))
    _writer.enqueue("tags", (run_id, _liveness.PROCESS_TAG, _liveness.owned(run_id)))
    for key, value in (tags or {}).items():
        _writer.enqueue("tags", (run_id, key, value))
    _context.run_started(run)
    _state.last = run
    _install_signal_handler()
    return run


def on_change(listener: Callable[[], None]) -> None:
    """Have ``listener()`` called, in the thread that changed it, when the run that
    records go to may have changed (a run started or ended)."""
    _change_listeners.append(listener)


def _publish(in_training_call: bool | None = None) -> None:
    """Refresh ``shared_run_id``; root: tell workers which run they nest under now.

    ``in_training_call`` defaults to whether this thread is inside a patched
    training call; the end of that call passes False, since it is ending.
    """
    global shared_run_id, fast_run_id
    shared = _state.stack[-1] if _state.stack else _state.process_run
    shared_run_id = shared.info.run_id if shared is not None else None
    fast_run_id = shared_run_id if _training_runs == 0 else None
    for listener in _change_listeners:
        listener()
    if _session.is_worker():
        return
    try:
        run = active_run()
        if in_training_call is None:
            in_training_call = _in_training_call()
        _session.write_context(run.info.run_id if run is not None else None, in_training_call)
    except OSError:
        pass


def _in_training_call() -> bool:
    from autologagent._patching import inside_training_call

    return inside_training_call()


# --- user runs ------------------------------------------------------------------


def start_run(
    run_id: str | None = None,
    experiment_id: str | None = None,
    run_name: str | None = None,
    nested: bool = False,
    parent_run_id: str | None = None,
    tags: dict[str, Any] | None = None,
    description: str | None = None,
) -> ActiveRun:
    """Start a run of the user's (MLflow's signature); use it as a context manager."""
    with _state.lock:
        current = _state.stack[-1] if _state.stack else getattr(_thread, "run", None)
        if current is not None and not nested:
            raise RuntimeError(
                f"run {current.info.run_id} is already active: end it first, "
                "or call start_run(nested=True) for a child run"
            )
        if parent_run_id is None:
            parent = current or _state.process_run
            if parent is None and _session.is_worker():
                parent = _start_implicit_run()
            parent_run_id = parent.info.run_id if parent is not None else None
        all_tags = {str(k): str(v) for k, v in (tags or {}).items()}
        if description is not None:
            all_tags["mlflow.note.content"] = str(description)
        name = run_name or f"run-{os.urandom(3).hex()}"
        if run_id is not None:  # resume a run, as MLflow: RUNNING again, no end time
            info = RunInfo(run_id, name, _experiment(), parent_run_id, time.time())
            run = ActiveRun(info, "user")
            _writer.enqueue("run_ends", (run_id, RUNNING, time.time(), False))
            _writer.enqueue("tags", (run_id, _liveness.PROCESS_TAG, _liveness.owned(run_id)))
            for key, value in all_tags.items():
                _writer.enqueue("tags", (run_id, key, value))
            _state.last = run
        else:
            run = _new_run(name, "user", parent_run_id, all_tags)
        _state.stack.append(run)
        _publish()
        return run


def end_run(status: str = FINISHED) -> None:
    """End the innermost active run (MLflow's ``end_run``)."""
    if status not in RUN_STATUSES or status == RUNNING:
        raise ValueError(f"end_run(status={status!r}): expected FINISHED, FAILED or KILLED")
    run = active_run()
    if run is not None and run.kind != "worker-parent":
        end_run_object(run, status)


def end_run_object(run: ActiveRun, status: str, exc: BaseException | None = None) -> None:
    if run.info.status == RUNNING:
        _context.run_ending(run, status)  # its last system sample, packages (bounded wait)
    with _state.lock:
        if run.info.status != RUNNING:
            return
        run.info.status = status
        _liveness.released(run.info.run_id)
        now = time.time()
        run.info.end_time = int(now * 1000)
        if run in _state.stack:
            _state.stack.remove(run)
        if _state.process_run is run:
            _state.process_run = None
        if getattr(_thread, "run", None) is run:
            _thread.run = None
        if run.kind == "training":
            _count_training_run(-1)
        if exc is not None and status != FINISHED:
            _writer.enqueue("tags", (run.info.run_id, "autolog.exception_class", _qualname(exc)))
            _writer.enqueue("tags", (run.info.run_id, "autolog.exception_message", str(exc)[:5000]))
        _writer.enqueue("run_ends", (run.info.run_id, status, now, False))
        _state.last = run
        _publish(False if run.kind == "training" else None)
    if _session.is_worker():
        # A worker may be ended by os._exit or SIGTERM right after its task.
        _writer.flush()


def _count_training_run(delta: int) -> None:
    global _training_runs
    _training_runs += delta


def _qualname(exc: BaseException) -> str:
    cls = type(exc)
    module = cls.__module__
    return cls.__qualname__ if module == "builtins" else f"{module}.{cls.__qualname__}"


def last_active_run() -> ActiveRun | None:
    return active_run() or _state.last


# --- training runs ------------------------------------------------------------------


def begin_training_run(name: str, tags: dict[str, str]) -> ActiveRun | None:
    """Start this thread's run for a training call, or return None to reuse the active one.

    Raises ``SkipLogging`` in a worker whose root is inside a training call.
    """
    if _session.rank is not None:
        current_run_id()  # the job's run: rank 0's training call logs there
        if _session.is_other_rank():
            raise SkipLogging
    with _state.lock:
        existing = active_run()
        if existing is not None and existing.kind != "worker-parent":
            for key, value in tags.items():
                _writer.enqueue("tags", (existing.info.run_id, key, value))
            _publish()
            return None
        parent_run_id = None
        if _session.is_worker():
            parent_id, in_call = _session.read_context()
            if in_call:
                raise SkipLogging
            parent_run_id = parent_id or _ensure_root_run()
        run = _new_run(name, "training", parent_run_id, tags)
        _thread.run = run
        _count_training_run(+1)
        _publish()
        return run


def finish_training_run(run: ActiveRun | None, exc: BaseException | None) -> None:
    if run is None:
        _publish(False)
        return
    end_run_object(run, status_for_exception(exc), exc)


def record_child_run(
    parent_run_id: str,
    name: str,
    params: dict[str, str],
    metrics: dict[str, float],
    tags: dict[str, str],
) -> str:
    """A finished child run in one go (a search's candidate); returns its run id.

    It never becomes active: it only records what the parent's training call found.
    """
    run_id = _session.new_run_id()
    now = time.time()
    _writer.enqueue("run_starts", (run_id, _experiment(), name, now, parent_run_id, RUNNING))
    for key, value in params.items():
        _writer.enqueue("params", (run_id, key, value))
    for key, value in tags.items():
        _writer.enqueue("tags", (run_id, key, value))
    for key, value in metrics.items():
        _writer.metrics.append((run_id, key, float(value), 0, now))
    _writer.enqueue("run_ends", (run_id, FINISHED, now, False))
    return run_id


class SkipLogging(Exception):
    """This call is an inner call of the root's training call: log nothing."""


# --- process exit ----------------------------------------------------------------


def note_exit_exception(exc: BaseException | None) -> None:
    """The runner tells how the script ended (uncaught exception or SystemExit)."""
    _state.exit_exception = exc


def at_exit() -> None:
    """End what is still running and flush; runs last among atexit handlers.

    The cyclic garbage collector waits meanwhile: the program's own code is done,
    and a full collection that the agent's last jobs set off (the heap of a
    program that imported scikit-learn takes 70 ms to walk) would come just before
    the one the interpreter makes anyway as it shuts down.
    """
    collecting = gc.isenabled()
    gc.disable()
    try:
        _end_everything()
    finally:
        if collecting:
            gc.enable()


def _end_everything() -> None:
    _wait_for_background_jobs()
    exc = _state.exit_exception
    if exc is None:
        exc = getattr(sys, "last_value", None)
    status = status_for_exception(exc)
    _context.process_exiting(exc)
    for run in list(_state.stack)[::-1]:
        end_run_object(run, status, exc)
    training = getattr(_thread, "run", None)
    if training is not None:
        end_run_object(training, status, exc)
    if _state.process_run is not None and _state.process_run.kind == "process":
        end_run_object(_state.process_run, status, exc)
    elif _state.process_run is not None:
        _context.rank_leaving(_state.process_run)
    elif not _session.is_worker() and not _root_used and _bootstrap._root_run_may_exist():
        # Workers may have created the root run as their parent: close it.
        _writer.enqueue("run_ends", (_session.root_run_id, status, time.time(), True))
    _wait_for_background_jobs()  # what ending those runs queued (their requirements.txt)
    _writer.flush_at_exit()
    _session.remove_context()
    if isinstance(exc, KeyboardInterrupt) and "autologagent._execfile" not in sys.modules:
        _keep_exit_by_sigint()


def _keep_exit_by_sigint() -> None:
    """After an uncaught Ctrl-C python dies of SIGINT, as a shell expects.

    CPython forgets that whenever code runs from a string while it exits (an
    ``exec``, or a ``namedtuple`` made by a module the agent's threads import
    then), and exits with status 1 instead. One ``exec`` that ends in
    KeyboardInterrupt, run last, sets it back. (The command door dies of SIGINT
    by itself: see ``_cli._arm_exit_by_sigint``.)
    """
    try:
        exec("raise KeyboardInterrupt")
    except KeyboardInterrupt:
        pass


def _wait_for_background_jobs(timeout: float = 120.0) -> None:
    """Models, plots and context still being written: let them finish (bounded)."""
    render = sys.modules.get("autologagent._render")
    if render is not None and not render.wait(timeout):
        from autologagent import _errors

        _errors.warn(f"gave up waiting for the drawing process after {timeout:.0f} s at exit")
    background = sys.modules.get("autologagent._background")
    if background is not None and not background.wait(timeout):
        from autologagent import _errors

        _errors.warn(
            f"gave up waiting for {background.pending()} background job(s) after {timeout:.0f} s "
            "at exit; their artifacts may be missing"
        )


def on_terminate(signum: int) -> None:
    """SIGTERM: mark the runs this process started KILLED, flush, then die of the signal.

    A worker's parent run is not among them (its ``process_run`` is the parent's).
    """
    _context.process_exiting(signum=signum)
    for run in list(_state.stack)[::-1]:
        end_run_object(run, KILLED)
    if _state.process_run is not None and _state.process_run.kind == "process":
        end_run_object(_state.process_run, KILLED)
    elif _state.process_run is not None:
        _context.rank_leaving(_state.process_run)
    training = getattr(_thread, "run", None)
    if training is not None:
        end_run_object(training, KILLED)
    _writer.flush()
    _session.remove_context()


def _install_signal_handler() -> None:
    if _state.signal_handler_installed:
        return
    _state.signal_handler_installed = True
    if threading.current_thread() is not threading.main_thread():
        return
    import signal

    try:
        if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
            return  # the program handles SIGTERM itself; its handler's exit runs atexit

        def _die(signum: int) -> None:
            try:
                on_terminate(signum)
            finally:
                signal.signal(signum, signal.SIG_DFL)
                os.kill(os.getpid(), signum)

        def _handler(signum: int, frame: Any) -> None:
            # Mid-flush (a worker exiting), finish committing first, then die.
            if not _writer.run_after_flush(lambda: _die(signum)):
                _die(signum)

        signal.signal(signal.SIGTERM, _handler)
    except (ValueError, OSError, AttributeError):
        pass


def reset_after_fork() -> None:
    """In a forked child: the parent's runs are not ours to end."""
    global shared_run_id, fast_run_id, _training_runs
    shared_run_id = fast_run_id = None
    _training_runs = 0
    _state.lock = threading.RLock()
    _state.stack = []
    _state.process_run = None
    _state.exit_exception = None
    _thread.run = None
