"""Faults: a process killed without warning, a full disk, a read-only store.

What other files already prove, and docs/reliability.md lists: an uncaught
exception (test_runs: FAILED, every point kept), Ctrl-C and SIGTERM (test_runs:
KILLED, flushed), a store locked by another process for seconds
(test_store: waits, loses nothing), a store under a regular file (test_config).

The full-disk and read-only cases mount a real tmpfs in a private mount
namespace (``unshare``): the store really runs out of space, or really turns
read-only, and the program under the agent must not notice beyond one warning.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

from conftest import PYTHON, clean_env, cli, list_runs, run_python, show_run, write_script

LOGGER = """
import os
import sys
import time
import autologagent
for step in range(1000):
    autologagent.log_metric("loss", step / 1000, step=step)
print("logged", flush=True)
time.sleep(2.5)  # more than the writer's flush interval (1 s)
if sys.argv[1] == "exit":
    os._exit(3)
print("flushed", flush=True)
time.sleep(60)
"""


def _raw_status(workdir: Path, run_id: str) -> str:
    """The status as committed, read straight from SQLite (the CLI may settle it)."""
    connection = sqlite3.connect(workdir / "autologruns" / "runs.db")
    try:
        (status,) = connection.execute(
            "SELECT status FROM runs WHERE run_id = ?", (run_id,)
        ).fetchone()
    finally:
        connection.close()
    return str(status)


def _assert_shown_dead_with_every_point(workdir: Path, pid: int) -> None:
    run = show_run(workdir)
    assert _raw_status(workdir, run["run_id"]) == "RUNNING"  # reading did not rewrite it
    assert run["status"] == "KILLED"
    assert f"process {pid} " in run["tags"]["autolog.liveness"]
    listed = cli(workdir, "runs", "list")
    assert [(r["run_id"], r["status"]) for r in listed] == [(run["run_id"], "KILLED")]
    points = cli(workdir, "runs", "history", "last", "loss")
    assert [(p["step"], p["value"]) for p in points] == [(s, s / 1000) for s in range(1000)]


def test_sigkill_keeps_committed_points_and_the_run_is_shown_dead(workdir: Path) -> None:
    """SIGKILL 2.5 s after the last point: all 1,000 points kept; the run reads KILLED."""
    script = write_script(workdir, "victim.py", LOGGER)
    process = subprocess.Popen(
        [PYTHON, str(script), "kill"],
        cwd=workdir,
        env=clean_env(AUTOLOG_TESTING="1"),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline() == "logged\n"
        assert process.stdout.readline() == "flushed\n"
        alive = show_run(workdir)
        assert alive["status"] == "RUNNING"  # alive: not mistaken for dead
        # Its writer has stamped the first heartbeat (then one a minute).
        assert 0 <= time.time() - int(alive["tags"]["autolog.heartbeat"]) / 1000 < 10
        process.kill()
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdout.close()
    assert process.returncode == -signal.SIGKILL
    _assert_shown_dead_with_every_point(workdir, process.pid)


def test_os_exit_keeps_committed_points_and_the_run_is_shown_dead(workdir: Path) -> None:
    """``os._exit(3)`` skips atexit: exit status 3 as without the agent; the run reads KILLED."""
    script = write_script(workdir, "victim.py", LOGGER)
    result = run_python([str(script), "exit"], cwd=workdir, env=clean_env(AUTOLOG_TESTING="1"))
    plain = run_python(["-c", "import os; os._exit(3)"], cwd=workdir)
    assert result.returncode == plain.returncode == 3
    assert result.stdout == "logged\n"
    assert result.stderr == ""
    run = show_run(workdir)
    pid = int(run["tags"]["autolog.process"].split()[1])
    _assert_shown_dead_with_every_point(workdir, pid)


def _set_owner(workdir: Path, run_id: str, owner: str) -> None:
    connection = sqlite3.connect(workdir / "autologruns" / "runs.db", isolation_level=None)
    try:
        connection.execute(
            "UPDATE tags SET value = ? WHERE run_id = ? AND key = 'autolog.process'",
            (owner, run_id),
        )
        connection.execute(
            "UPDATE runs SET status = 'RUNNING', end_time = NULL WHERE run_id = ?", (run_id,)
        )
    finally:
        connection.close()


def test_liveness_tells_a_reused_pid_and_leaves_other_hosts_alone(workdir: Path) -> None:
    """A live pid that started at another time is not the owner; another host is not judged.

    Nor is another pid namespace (a container that shares the host's name).
    """
    script = write_script(
        workdir, "one.py", "import autologagent\nautologagent.log_metric('x', 1.0)\n"
    )
    run_python([str(script)], cwd=workdir, env=clean_env(AUTOLOG_TESTING="1"), check=True)
    run = show_run(workdir)
    host, pid, started, namespace = run["tags"]["autolog.process"].split()
    assert pid.isdigit() and float(started) > 0
    assert host == os.uname().nodename
    assert namespace == os.readlink("/proc/self/ns/pid").strip("pid:[]")
    me = os.getpid()

    # This pytest process is alive, but it did not start at the recorded time.
    _set_owner(workdir, run["run_id"], f"{host} {me} 1000.00 {namespace}")
    assert show_run(workdir)["status"] == "KILLED"
    # The same pid with its real start time: alive, so RUNNING.
    _set_owner(workdir, run["run_id"], f"{host} {me} {_start_of(me)} {namespace}")
    assert show_run(workdir)["status"] == "RUNNING"
    # The dead owner on another machine, or in another pid namespace: shown as recorded.
    for owner in (f"gpu-node-7 {pid} {started} {namespace}", f"{host} {pid} {started} 1"):
        _set_owner(workdir, run["run_id"], owner)
        shown = show_run(workdir)
        assert shown["status"] == "RUNNING", owner
        assert "autolog.liveness" not in shown["tags"]


def _set_heartbeat(workdir: Path, run_id: str, stamp_ms: int) -> None:
    connection = sqlite3.connect(workdir / "autologruns" / "runs.db", isolation_level=None)
    try:
        connection.execute(
            "INSERT OR REPLACE INTO tags (run_id, key, value) VALUES (?, 'autolog.heartbeat', ?)",
            (run_id, str(stamp_ms)),
        )
    finally:
        connection.close()


def test_a_run_of_another_host_is_dead_once_its_heartbeat_stops(workdir: Path) -> None:
    """Another host's run: RUNNING while its heartbeat is fresh, KILLED after ten silent minutes."""
    script = write_script(
        workdir, "one.py", "import autologagent\nautologagent.log_metric('x', 1.0)\n"
    )
    run_python([str(script)], cwd=workdir, env=clean_env(AUTOLOG_TESTING="1"), check=True)
    run = show_run(workdir)
    _host, pid, started, namespace = run["tags"]["autolog.process"].split()
    _set_owner(workdir, run["run_id"], f"gpu-node-7 {pid} {started} {namespace}")
    now_ms = int(time.time() * 1000)

    _set_heartbeat(workdir, run["run_id"], now_ms - 5 * 60_000)
    assert show_run(workdir)["status"] == "RUNNING"
    _set_heartbeat(workdir, run["run_id"], now_ms - 11 * 60_000)
    shown = show_run(workdir)
    assert shown["status"] == "KILLED"
    assert "no heartbeat from process" in shown["tags"]["autolog.liveness"]
    assert "gpu-node-7" in shown["tags"]["autolog.liveness"]
    listed = cli(workdir, "runs", "list")
    assert [r["status"] for r in listed] == ["KILLED"]


def _start_of(pid: int) -> str:
    """Process ``pid``'s start time as the agent writes it, computed here independently."""
    import psutil

    return f"{psutil.Process(pid).create_time():.2f}"


# --- full disk and read-only store ------------------------------------------------------

TRAIN = """
import autologagent
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
X, y = make_classification(n_samples=200, random_state=0)
autologagent.log_param("first", 1)
autologagent.log_metric("before", 1.0)
autologagent.flush()
for step in range(200_000):  # about 5 MB of points: the disk fills here
    autologagent.log_metric("loss", 1.0 / (step + 1), step=step)
autologagent.flush()
autologagent.log_param("blob", "x" * 5000)
model = LogisticRegression().fit(X, y)
open("notes.txt", "w").write("n" * 300_000)
autologagent.log_artifact("notes.txt")
print("score", round(model.score(X, y), 6))
"""


def _in_private_mount(workdir: Path, shell: str) -> subprocess.CompletedProcess[str]:
    """Run ``shell`` as root of a new user and mount namespace (a real tmpfs, no privileges)."""
    return subprocess.run(
        ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", shell],
        cwd=workdir,
        env=clean_env(AUTOLOG="1", AUTOLOG_TRACKING_URI=str(workdir / "store")),
        capture_output=True,
        text=True,
        timeout=300,
    )


def _plain_output(workdir: Path) -> str:
    return run_python(["train.py"], cwd=workdir, check=True).stdout


def _assert_one_warning(stderr: str) -> None:
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("autologagent: warning: ")
    assert "store" in lines[0]


def test_a_full_disk_is_one_warning_and_keeps_what_fits(workdir: Path) -> None:
    """The store's 1 MB disk fills mid-run: same output, one warning; what fits is kept.

    Committed records stay; the runs still end FINISHED with their params and
    small metrics, since a series too large for the disk no longer holds back
    the records queued after it.
    """
    write_script(workdir, "train.py", TRAIN)
    (workdir / "store").mkdir()
    python, store, saved = PYTHON, workdir / "store", workdir / "saved"
    result = _in_private_mount(
        workdir,
        f"mount -t tmpfs -o size=1m tmpfs {store} && {python} train.py; "
        f"status=$?; cp -r {store} {saved}; exit $status",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == _plain_output(workdir)
    _assert_one_warning(result.stderr)
    runs = list_runs(workdir, str(saved))
    assert [(run["name"], run["status"]) for run in runs] == [("train.py", "FINISHED")]
    run = show_run(workdir, runs[0]["run_id"], str(saved))
    assert run["params"]["first"] == "1"
    assert run["params"]["blob"] == "x" * 5000
    assert run["params"]["C"] == "1.0"  # the fit logged into the process run
    assert run["metrics"]["before"] == 1.0
    assert "training_accuracy_score" in run["metrics"]


def test_a_read_only_store_is_one_warning(workdir: Path) -> None:
    """A store remounted read-only before the program starts: same output, one warning."""
    write_script(workdir, "train.py", TRAIN)
    write_script(workdir, "first.py", "import autologagent\nautologagent.log_metric('x', 1.0)\n")
    (workdir / "store").mkdir()
    python, store = PYTHON, workdir / "store"
    result = _in_private_mount(
        workdir,
        f"mount -t tmpfs tmpfs {store} && {python} first.py && "
        f"mount -o remount,ro {store} && exec {python} train.py",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == _plain_output(workdir)
    _assert_one_warning(result.stderr)
