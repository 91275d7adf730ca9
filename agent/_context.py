"""The context of a run: the code, machine and packages that produced it.

Every run this process starts records where it came from (MLflow's
``mlflow.source.*`` and ``mlflow.user`` tags, the agent's ``autolog.*`` ones),
the git state of its repository (``_git``), the versions of the frameworks the
program imported and a ``requirements.txt`` (``_packages``), and system metrics
(``_system_metrics``). ``_runs`` calls :func:`run_started` and
:func:`run_ending`; everything else is here.

Cheap by construction, since a script may fit 25 small models in a loop: what
does not change within a process (the source tags, git's answers, the packages
behind a given set of modules) is worked out once, the costly parts (GitPython,
package metadata) on the background worker; later runs queue the cached tags
and leave their two small files to that worker. The end of a run does not wait
for its context jobs (but at exit): what they record follows it shortly after
(``_runs.at_exit`` waits for it), never lost. The first run's job itself starts
only when that run ends, or ``STATIC_DELAY_S`` into it, so that it does not slow
a short first training call; the packages' job is deferred (see
:func:`_record_packages`).

Worker processes log into the parent's run: they gather nothing for it, and
their own child runs get only the machine tags (host, Python, platform, user).
Every value that could carry a credential goes through ``_redact``.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import TYPE_CHECKING

from autologagent import _background, _bootstrap, _errors, _session, _writer

if TYPE_CHECKING:
    from autologagent._git import GitFacts
    from autologagent._runs import ActiveRun

# At exit or on SIGTERM, when there is no training left to delay, the longest the
# end of a run waits for its context jobs (otherwise it does not wait).
EXIT_WAIT_S = 2.0
# The first run's job (GitPython's import and git's answers: about a tenth of a
# second of CPU) waits for the end of that run, or this long: Python work on
# another thread contends for the GIL with the training thread, so a short
# training call is not slowed at all and a long one has its facts early.
STATIC_DELAY_S = 2.0

# Modules whose version becomes an ``autolog.version.<module>`` tag when imported.
FRAMEWORKS = (
    "sklearn",
    "numpy",
    "scipy",
    "pandas",
    "polars",
    "torch",
    "torchvision",
    "lightning",
    "pytorch_lightning",
    "xgboost",
    "lightgbm",
    "catboost",
    "tensorflow",
    "keras",
    "jax",
    "transformers",
    "statsmodels",
    "optuna",
)
# Environment variables that explain a run, recorded as ``autolog.env.<NAME>``.
ENV_TAGS = (
    "CUDA_VISIBLE_DEVICES",
    "OMP_NUM_THREADS",
    "SLURM_JOB_ID",
    "VIRTUAL_ENV",
    "CONDA_DEFAULT_ENV",
)
_IMPLEMENTATIONS = {"cpython": "CPython", "pypy": "PyPy", "graalpy": "GraalPy"}

_lock = threading.RLock()  # re-entrant: a SIGTERM handler may end runs mid-call
_pending: dict[str, list[threading.Event]] = {}  # run id -> its context jobs, while active
# The root's tags that hold for every run, and its git facts, once known.
_static: tuple[dict[str, str], GitFacts | None] | None = None
_static_waiting: list[str] = []  # runs started before the first job had them
_static_done = threading.Event()
_first_run_ended = threading.Event()  # releases the first run's job early
_static_submitted = False
_worker_tags: dict[str, str] | None = None
# (the top-level modules loaded, their version tags, requirements.txt) of the last answer
_packages_cache: tuple[frozenset[str], dict[str, str], str] | None = None
# the top-level modules -> the queued job's event and the runs that wait for its answer
_packages_waiting: dict[frozenset[str], tuple[threading.Event, list[str]]] = {}
_exiting = False  # the process is ending: nothing is left to delay
_exit_status: str | None = None  # and with this status, when it is known


# --- the hooks ---------------------------------------------------------------------


def run_started(run: ActiveRun) -> None:
    """Queue the run's context tags (now, or once the first job has them); start sampling."""
    global _static_submitted
    try:
        run_id = run.info.run_id
        if _session.is_worker() and _session.rank != 0:
            _enqueue_tags(run_id, _machine_tags_of_worker())
            return
        with _lock:
            _pending[run_id] = []
            static = _static
            if static is None:
                _static_waiting.append(run_id)
                _pending[run_id].append(_static_done)
                if not _static_submitted:
                    _static_submitted = True
                    _background.submit(
                        _static_job_after_delay, "gathering the run's source and git facts"
                    )
        try:
            _writer.enqueue("tags", (run_id, "autolog.cwd", os.getcwd()))
        except OSError:  # the working directory was removed
            pass
        if static is not None:
            _record_static(run_id, static, later=True)
        _start_system_metrics(run_id)
    except Exception as exc:
        _errors.report(exc, "recording the run's context")


def _start_system_metrics(run_id: str) -> None:
    settings = _bootstrap.config()
    if settings.get("system_metrics"):
        from autologagent import _system_metrics

        prefix = _system_metrics.PREFIX
        if _session.world_size > 1:  # every rank of a job samples into the job's run
            prefix = f"{prefix}rank_{_session.rank}/"
        _system_metrics.run_started(run_id, float(settings.get("system_metrics_interval")), prefix)


def rank_joined(run: ActiveRun) -> None:
    """A rank other than 0 joined its job's run: its own system metrics, nothing else."""
    try:
        _start_system_metrics(run.info.run_id)
    except Exception as exc:
        _errors.report(exc, "recording the rank's system metrics")


def rank_leaving(run: ActiveRun) -> None:
    """The process leaves a run it did not start: its last system sample, if it took any."""
    system_metrics = sys.modules.get("autologagent._system_metrics")
    if system_metrics is not None:
        system_metrics.run_ending(run.info.run_id, EXIT_WAIT_S)


def run_ending(run: ActiveRun, status: str) -> None:
    """The run's last system sample, its packages, and a bounded wait for its jobs."""
    started = time.perf_counter()
    _first_run_ended.set()
    try:
        run_id = run.info.run_id
        with _lock:
            pending = _pending.pop(run_id, None)
        if pending is None:  # not started here with a context (a worker's, a resumed run)
            return
        exiting = _exiting
        if _exit_status is not None:
            _writer.enqueue("tags", (run_id, "autolog.exit_status", _exit_status))
        system_metrics = sys.modules.get("autologagent._system_metrics")
        if system_metrics is not None:
            system_metrics.run_ending(run_id, EXIT_WAIT_S if exiting else 0.0)
        _record_packages(run_id, pending)
        if not exiting:
            return  # the training thread does not wait: what the jobs record follows
        _background.run_deferred_now()  # SIGTERM: the process dies after this flush
        deadline = started + EXIT_WAIT_S
        for done in pending:
            left = deadline - time.perf_counter()
            if left <= 0 or not done.wait(left):
                break
    except Exception as exc:
        _errors.report(exc, "recording the run's context")


def _enqueue_tags(run_id: str, tags: dict[str, str]) -> None:
    enqueue = _writer.enqueue
    for key, value in tags.items():
        enqueue("tags", (run_id, key, value))


def process_exiting(exc: BaseException | None = None, signum: int | None = None) -> None:
    """The process is ending (``exc``: how, or ``signum``): runs ended now get its status."""
    global _exiting, _exit_status
    _exiting = True
    if _session.is_worker():
        return
    code = 128 + signum if signum else exit_status_for(exc)
    _exit_status = None if code is None else str(code)


def exit_status_for(exc: BaseException | None) -> int | None:
    """The status the process exits with, as a shell shows it; None when it cannot be known.

    Under ``python -m autologagent`` the runner sees every way the script ends.
    Under ``AUTOLOG=1`` an uncaught exception is seen, a ``sys.exit(n)`` is not:
    a quiet ending then has no status rather than a guessed 0.
    """
    if isinstance(exc, SystemExit):
        code = exc.code
        if code is None:
            return 0
        return int(code) & 0xFF if isinstance(code, int) else 1
    if isinstance(exc, KeyboardInterrupt):
        return 130  # 128 + SIGINT: python dies of the signal
    if exc is not None:
        return 1
    return 0 if "autologagent._execfile" in sys.modules else None


# --- source, machine and git ----------------------------------------------------------


def _static_job_after_delay() -> None:
    _first_run_ended.wait(STATIC_DELAY_S)
    _static_job()


def _static_job() -> None:
    """The first run's job: the tags that hold for every run, and git's answers."""
    global _static
    tags: dict[str, str] = {}
    facts = None
    try:
        tags, start_dir = _source_tags()
        tags.update(_machine_tags())
        if start_dir:
            from autologagent import _git

            facts = _git.facts(start_dir)
    finally:
        static = (tags, facts)
        with _lock:
            _static = static
            waiting = list(_static_waiting)
            _static_waiting.clear()
        try:
            for run_id in waiting:
                _record_static(run_id, static, later=False)
        finally:
            _static_done.set()


def _record_static(
    run_id: str, static: tuple[dict[str, str], GitFacts | None], later: bool
) -> None:
    """Queue the tags; write ``git_diff.patch`` now (on the worker) or ``later`` (from a run)."""
    tags, facts = static
    _enqueue_tags(run_id, tags)
    if facts is None:
        return
    _enqueue_tags(run_id, facts.tags())
    if facts.diff:
        _write_artifact(run_id, "git_diff.patch", facts.diff, later)


def _machine_tags_of_worker() -> dict[str, str]:
    global _worker_tags
    if _worker_tags is None:
        _worker_tags = _machine_tags()
    return _worker_tags


def _machine_tags() -> dict[str, str]:
    """Where the run ran: host, process, Python, platform, user, some environment."""
    tags = {
        "mlflow.source.type": "LOCAL",
        "autolog.host": _host(),
        "autolog.pid": str(os.getpid()),
        "autolog.python_version": sys.version.split()[0],
        "autolog.python_implementation": _IMPLEMENTATIONS.get(
            sys.implementation.name, sys.implementation.name
        ),
        "autolog.python_executable": sys.executable,
        "autolog.platform": _platform(),
    }
    user = _user()
    if user:
        tags["mlflow.user"] = user
    found = {name: os.environ[name] for name in ENV_TAGS if name in os.environ}
    if found:
        from autologagent import _redact

        for name, value in found.items():
            tags[f"autolog.env.{name}"] = _redact.redact_env(name, value)
    return tags


def _source_tags() -> tuple[dict[str, str], str]:
    """The program's entry point and command line; the folder git starts from."""
    from autologagent import _redact

    file, module = _entry_point()
    tags = {"mlflow.source.name": _source_name(file)}
    if module:
        tags["autolog.source.module"] = module
    argv = getattr(sys, "orig_argv", None) or [sys.executable, *sys.argv]
    tags["autolog.command"] = _redact.redact_command(argv)
    try:
        start_dir = os.path.dirname(os.path.realpath(file)) if file else os.getcwd()
    except OSError:
        start_dir = ""
    return tags, start_dir


def _entry_point() -> tuple[str | None, str | None]:
    """(the ``__main__`` file, the module name under ``-m``)."""
    main = sys.modules.get("__main__")
    file = getattr(main, "__file__", None)
    spec = getattr(main, "__spec__", None)
    module = getattr(spec, "name", None) if spec is not None else None
    return (file if isinstance(file, str) else None), (module if isinstance(module, str) else None)


def _source_name(file: str | None) -> str:
    """The entry point, relative to its git repository's root when in one, else absolute."""
    if not file:
        argv0 = sys.argv[0] if sys.argv else ""
        return argv0 or "<interactive>"
    from autologagent import _git

    path = os.path.realpath(file)
    root = _git.find_root(os.path.dirname(path))
    if root is not None:
        relative = os.path.relpath(path, os.path.realpath(root))
        if not relative.startswith(os.pardir):
            return relative.replace(os.sep, "/")
    return path


def _host() -> str:
    try:
        return os.uname().nodename
    except AttributeError:  # Windows
        import platform

        return platform.node()


def _platform() -> str:
    """As ``platform.platform()`` says it, without its read of the interpreter's binary."""
    try:
        uname = os.uname()
    except AttributeError:
        import platform

        return platform.platform()
    text = f"{uname.sysname}-{uname.release}-{uname.machine}"
    try:
        libc = os.confstr("CS_GNU_LIBC_VERSION")  # "glibc 2.36"
    except (AttributeError, ValueError, OSError):
        libc = None
    return f"{text}-with-{libc.replace(' ', '')}" if libc else text


def _user() -> str | None:
    """As ``getpass.getuser()``, without importing it; None in a container without one."""
    for name in ("LOGNAME", "USER", "LNAME", "USERNAME"):
        value = os.environ.get(name)
        if value:
            return value
    try:
        import pwd

        return pwd.getpwuid(os.getuid()).pw_name
    except (ImportError, KeyError, AttributeError):
        return None


# --- packages -----------------------------------------------------------------------


def _record_packages(run_id: str, pending: list[threading.Event]) -> None:
    """Version tags and ``requirements.txt`` for the modules imported by now.

    The answer depends only on which top-level packages are loaded: while they
    stay the same, the last answer is reused here; otherwise it is worked out on
    the background worker. (Submodules come and go, the agent's own among them,
    without changing it: keyed on their count, a loop of 25 small fits worked it
    out again 12 times.) That job is deferred (``_background.submit_deferred``):
    nothing waits for it but the exit, and what it reads and builds had set off a
    full garbage collection (85 ms with scikit-learn's heap) while the seed
    program still scored, in a third of its runs; at exit it runs with the
    collector paused. Runs that end with the same packages while it waits share
    its answer; ``pending`` gets its event, for the wait at exit.
    """
    names = list(sys.modules)
    tops = frozenset(name.partition(".")[0] for name in names)
    with _lock:
        cached = _packages_cache
        if cached is not None and cached[0] != tops:
            cached = None
        if cached is None:
            queued = _packages_waiting.get(tops)
            if queued is not None:  # a job for these packages waits: it answers this run too
                queued[1].append(run_id)
                pending.append(queued[0])
                return
            done = threading.Event()
            _packages_waiting[tops] = (done, [run_id])
            pending.append(done)
    if cached is not None:
        _write_packages(run_id, cached[1], cached[2], later=True)
        return

    def job() -> None:
        global _packages_cache
        try:
            versions, text = _resolve_packages(names)
        except BaseException:
            with _lock:
                _packages_waiting.pop(tops, None)
            done.set()
            raise
        with _lock:
            _packages_cache = (tops, versions, text)
            _, run_ids = _packages_waiting.pop(tops, (done, []))
        try:
            for waiting_run in run_ids:
                _write_packages(waiting_run, versions, text, later=False)
        finally:
            done.set()

    _background.submit_deferred(job, "resolving the program's package versions")


def _resolve_packages(names: list[str]) -> tuple[dict[str, str], str]:
    from autologagent import _packages

    pins = _packages.program_distributions(names)
    loaded = _packages.top_level(names)
    versions: dict[str, str] = {}
    for module in FRAMEWORKS:
        if module in loaded:
            found = _packages.distributions_for([module])
            if found:
                versions[f"autolog.version.{module}"] = found[sorted(found)[0]]
    return versions, _packages.requirements_text(pins)


def _write_packages(run_id: str, versions: dict[str, str], requirements: str, later: bool) -> None:
    _enqueue_tags(run_id, versions)
    _write_artifact(run_id, "requirements.txt", requirements.encode("utf-8"), later)


def _write_artifact(run_id: str, path: str, data: bytes, later: bool) -> None:
    """Write a context file now (on the worker already) or ``later`` (from a run's thread)."""
    if later:
        _background.submit(lambda: _write_artifact(run_id, path, data, False), f"writing {path}")
        return
    from autologagent import _artifacts

    try:
        _artifacts.write_bytes(run_id, path, data)
    except OSError as exc:
        # The store's folder cannot be written: the writer says so once, under this key.
        _errors.warn(
            f"cannot write to the store at {_artifacts.run_artifact_dir(run_id)} "
            f"({type(exc).__name__}: {exc}); the program goes on",
            key="store-write",
        )


def reset_after_fork() -> None:
    """In a forked child (a worker): the parent's runs and jobs are not ours."""
    global _lock, _static_done, _static_submitted, _worker_tags, _exiting, _exit_status
    _lock = threading.RLock()
    _pending.clear()
    _static_waiting.clear()
    _packages_waiting.clear()
    if _static is None:
        _static_done = threading.Event()
        _static_submitted = False
    _worker_tags = None  # the pid changed
    _exiting = False
    _exit_status = None
    git = sys.modules.get("autologagent._git")
    if git is not None:
        git.reset_after_fork()
