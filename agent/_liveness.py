"""Whether the process that owns a RUNNING run is still alive.

A run ends when its process ends it: at the end of a training call, at exit, on
SIGTERM or Ctrl-C. A process killed with SIGKILL (the OOM killer, a scheduler's
hard limit) or ended with ``os._exit`` never gets to, and its run would read
RUNNING forever, as it does in MLflow. So each run records the process that owns
it (the tag ``autolog.process``: host, pid, the process's start time and pid
namespace), and a reader on the same host, in the same pid namespace, checks it:
no such process, or the pid now belongs to a process that started at another
time, means the owner is gone, and the run is shown KILLED with the tag
``autolog.liveness`` saying why. Reading never writes to the store: what is
recorded stays as it was committed.

A run owned by a process on another host, or in another pid namespace (a
container), cannot be checked from here. For those, the owner's writer thread
stamps the tag ``autolog.heartbeat`` on each run it owns every minute; a RUNNING
run whose heartbeat is more than ten minutes old is shown KILLED the same way.
"""

from __future__ import annotations

import os
import sys
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from autologagent._store import RunRecord

PROCESS_TAG = "autolog.process"
LIVENESS_TAG = "autolog.liveness"
HEARTBEAT_TAG = "autolog.heartbeat"  # milliseconds since the epoch, as MLflow's times
HEARTBEAT_S = 60.0
STALE_S = 600.0  # ten missed heartbeats: the owner of another host's run is gone
# Two reads of one process's start time agree to the clock tick; a reused pid
# starts later by far more than this.
_START_TOLERANCE_S = 1.0

_identity: tuple[int, str] | None = None  # (pid, tag value), recomputed after fork


def identity() -> str:
    """This process, as ``"host pid start pid-namespace"``.

    start: seconds since the epoch, or ``?``; pid-namespace: the inode of
    ``/proc/self/ns/pid`` (Linux), or ``-``. A container with the host's name but
    its own pid namespace is then not judged by the host's process table.
    """
    global _identity
    pid = os.getpid()
    if _identity is None or _identity[0] != pid:
        start = _start_time(pid)
        started = f"{start:.2f}" if start is not None else "?"
        _identity = (pid, f"{_host()} {pid} {started} {_pid_namespace()}")
    return _identity[1]


def _pid_namespace() -> str:
    try:
        return os.readlink("/proc/self/ns/pid").partition("[")[2].rstrip("]") or "-"
    except (OSError, AttributeError):
        return "-"


def _host() -> str:
    try:
        return os.uname().nodename
    except AttributeError:  # Windows
        import platform

        return platform.node()


def _start_time(pid: int) -> float | None:
    """When process ``pid`` started (seconds since the epoch), or None if it is gone.

    Linux reads ``/proc`` (no import); elsewhere psutil, as the system metrics do.
    A zombie (killed, not yet reaped by its parent) counts as gone.
    """
    if sys.platform.startswith("linux"):
        return _linux_start_time(pid)
    try:
        import psutil

        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return None
        return float(process.create_time())
    except Exception:
        return None


_boot_time: float | None = None


def _linux_start_time(pid: int) -> float | None:
    global _boot_time
    try:
        with open(f"/proc/{pid}/stat", "rb") as file:
            stat = file.read()
        # The command name may hold spaces and parentheses: fields start after the last ')'.
        fields = stat[stat.rindex(b")") + 2 :].split()
        if fields[0] == b"Z":
            return None
        ticks = int(fields[19])  # field 22 of proc(5): starttime, in clock ticks after boot
        if _boot_time is None:
            with open("/proc/stat", "rb") as file:
                for line in file:
                    if line.startswith(b"btime "):
                        _boot_time = float(line.split()[1])
                        break
        return (_boot_time or 0.0) + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def owner_gone(process: str) -> bool:
    """Whether the process named by an ``autolog.process`` value has ended.

    False when it cannot be told: another host, or a value this agent did not write.
    """
    if not _checkable_here(process):
        return False
    _host_name, pid_text, start_text, _namespace = process.split(" ")
    try:
        pid = int(pid_text)
    except ValueError:
        return False
    if pid <= 0:
        return False
    started = _start_time(pid)
    if started is None:
        return True
    if start_text == "?":
        return False
    try:
        return abs(started - float(start_text)) > _START_TOLERANCE_S
    except ValueError:
        return False


def _checkable_here(process: str) -> bool:
    """Whether the owner ran on this host, in this pid namespace (its pid means something)."""
    parts = process.split(" ")
    return len(parts) == 4 and parts[0] == _host() and parts[3] == _pid_namespace()


def gone_reason(tags: Mapping[str, str], now: float | None = None) -> str | None:
    """Why the owner of a RUNNING run with these tags is gone, or None if it may be alive.

    On this host its process is checked; a run of another host (or container) is
    judged by its heartbeat, if it has one.
    """
    process = tags.get(PROCESS_TAG)
    if not process:
        return None
    host, pid = (process.split(" ") + ["?"])[:2]
    if _checkable_here(process):
        if owner_gone(process):  # checked here, the heartbeat does not matter
            return (
                f"process {pid} on {host} ended without ending the run (killed, or os._exit); "
                "the store still says RUNNING"
            )
        return None
    beat = tags.get(HEARTBEAT_TAG, "")
    if not beat.isdigit():
        return None
    silent_s = (time.time() if now is None else now) - int(beat) / 1000
    if silent_s <= STALE_S:
        return None
    return (
        f"no heartbeat from process {pid} on {host} for {silent_s / 60:.0f} min "
        f"(one is sent every {HEARTBEAT_S:.0f} s while it runs); the store still says RUNNING"
    )


def settle(record: RunRecord) -> RunRecord:
    """The record as a reader should see it: a RUNNING run whose owner is gone is KILLED.

    ``record`` must carry its tags (``get_run``'s records do).
    """
    if record.status != "RUNNING":
        return record
    reason = gone_reason(record.tags)
    if reason is not None:
        record.status = "KILLED"
        record.tags[LIVENESS_TAG] = reason
    return record


# --- the owner's side: which runs this process owns, and their heartbeat ------------

_owned: dict[str, int] = {}  # run id -> the pid that started it (a forked child owns none)
_last_beat = 0.0


def owned(run_id: str) -> str:
    """Note that this process owns ``run_id``; return its ``autolog.process`` value."""
    _owned[run_id] = os.getpid()
    return identity()


def released(run_id: str) -> None:
    """The run ended: no more heartbeats for it."""
    _owned.pop(run_id, None)


def heartbeat(enqueue: Callable[[str, Any], None], now: float) -> None:
    """From the writer thread: every ``HEARTBEAT_S``, stamp each run this process owns."""
    global _last_beat
    if now - _last_beat < HEARTBEAT_S:
        return
    _last_beat = now
    pid = os.getpid()
    stamp = str(int(now * 1000))
    for run_id, owner in list(_owned.items()):
        if owner == pid:
            enqueue("tags", (run_id, HEARTBEAT_TAG, stamp))
