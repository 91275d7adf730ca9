"""Which process is the root of an autologged program, and what its workers see.

The first activated process of a program (the one the user started) is the
*root*. It writes ``AUTOLOG_SESSION=<pid>:<root run id>:<script name>`` into its
environment,
so every Python process it starts (``subprocess``, multiprocessing with spawn or
forkserver, joblib/loky, torchrun) inherits it and knows it is a *worker*. A
forked child becomes a worker through ``os.register_at_fork``.

Workers never make top-level runs. To know where their runs belong, they read a
small *context file* that the root rewrites whenever its active run changes:
the run a worker's runs nest under, and whether the root is inside a training
call (then the worker's fit is an inner fit of that call, e.g. a grid search
cell on a loky worker, and logs nothing). A file, not the environment, because
pools outlive the moment they were started (loky reuses its workers, and a
forkserver forks from a process started once).

A *rank* is one process of a distributed job that torchrun (or another launcher
setting torch's ``RANK``, ``LOCAL_RANK`` and ``WORLD_SIZE``) started. The job is
one run: rank 0 logs the training and ends it, every rank adds its own system
metrics, the other ranks log nothing else (Lightning's ``rank_zero_only``). The
ranks agree on the run without talking: a rendezvous id (``TORCHELASTIC_RUN_ID``,
the same on every node) names it when there is one, else their common root's run
(a launcher started under the agent) is theirs. A process that a rank starts
inherits those variables but is no rank: the rank marks its pid in
``AUTOLOG_RANK_PID``, and a fork forgets the rank.
"""

import os
import sys

SESSION_VAR = "AUTOLOG_SESSION"
RANK_PID_VAR = "AUTOLOG_RANK_PID"

role = "root"
root_pid = os.getpid()
root_run_id = ""
root_name = ""  # the root's script file name, when known at start-up
_context_path = ""
_last_written: tuple[str, bool] | None = None
rank: int | None = None  # this process's rank in a distributed job, if it is one
world_size = 1


def new_run_id() -> str:
    return os.urandom(16).hex()


def _context_file_for(run_id: str) -> str:
    folder = os.environ.get("TMPDIR") or "/tmp"
    return os.path.join(folder, f"autologagent-{run_id}.ctx")


def start() -> None:
    """Decide this process's role from the environment (idempotent per process)."""
    global role, root_pid, root_run_id, root_name, _context_path
    inherited = os.environ.get(SESSION_VAR, "")
    pid_text, _, rest = inherited.partition(":")
    run_id, _, name = rest.partition(":")
    if pid_text.isdigit() and run_id and int(pid_text) != os.getpid():
        role = "worker"
        root_pid = int(pid_text)
        root_run_id = run_id
        root_name = name
    else:
        role = "root"
        root_pid = os.getpid()
        root_run_id = run_id or new_run_id()
        root_name = _script_name()
        os.environ[SESSION_VAR] = f"{root_pid}:{root_run_id}:{root_name}"
    _context_path = _context_file_for(root_run_id)
    _find_rank()


def _find_rank() -> None:
    global rank, world_size
    env = os.environ
    marker = env.get(RANK_PID_VAR)
    if marker is not None and marker != str(os.getpid()):
        return  # a process that a rank started
    try:
        found, size = int(env["RANK"]), int(env["WORLD_SIZE"])
    except (KeyError, ValueError):
        return
    if "LOCAL_RANK" not in env or found < 0 or size < 1:
        return
    rank, world_size = found, size
    env[RANK_PID_VAR] = str(os.getpid())


def job_run_id() -> str | None:
    """The run every rank of this job logs to, when the rendezvous names the job."""
    name = os.environ.get("TORCHELASTIC_RUN_ID", "")
    if rank is None or not name or name == "none":
        return None
    import hashlib

    return hashlib.md5(f"autologagent-job:{name}".encode()).hexdigest()


def is_other_rank() -> bool:
    """A rank of a distributed job other than rank 0: it logs only system metrics."""
    return rank is not None and rank != 0


def logs_training() -> bool:
    """Whether this process's training hooks log: a root, or rank 0 of a job."""
    if rank is not None:
        return rank == 0
    return role == "root"


def _script_name() -> str:
    """The script's file name from ``sys.argv`` (empty for ``-m``/``-c``: not known yet)."""
    argv0 = sys.argv[0] if getattr(sys, "argv", None) else ""
    if argv0 in ("", "-m", "-c"):
        return ""
    return os.path.basename(argv0).replace(":", "_")


def became_forked_child() -> None:
    global role, _last_written, rank, world_size
    if role == "root":
        role = "worker"
    _last_written = None
    rank, world_size = None, 1


def is_worker() -> bool:
    return role == "worker"


def write_context(run_id: str | None, in_training_call: bool) -> None:
    """Root only: publish the run that workers nest under, if it changed."""
    global _last_written
    if role != "root" or not _context_path:
        return
    state = (run_id or "", in_training_call)
    if state == _last_written:
        return
    _last_written = state
    temporary = f"{_context_path}.{os.getpid()}"
    with open(temporary, "wb") as handle:
        handle.write(f"{state[0]}\n{int(state[1])}\n".encode())
    os.replace(temporary, _context_path)


def read_context() -> tuple[str | None, bool]:
    """Worker: (the root's active run id or None, whether the root is in a training call)."""
    try:
        with open(_context_path, encoding="ascii") as handle:
            run_id, in_call = (handle.read().split("\n") + ["", ""])[:2]
    except OSError:
        return None, False
    return (run_id or None), in_call == "1"


def remove_context() -> None:
    if role == "root" and _context_path:
        try:
            os.unlink(_context_path)
        except OSError:
            pass
