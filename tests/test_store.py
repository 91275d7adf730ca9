"""The SQLite store: where it lives, WAL, several writers at once, and when data lands."""

from __future__ import annotations

import sqlite3
import subprocess
import time
from pathlib import Path

from conftest import (
    PYTHON,
    clean_env,
    cli,
    list_runs,
    own_artifacts,
    own_metrics,
    run_python,
    show_run,
    write_script,
)


def _testing_env(**extra: str) -> dict[str, str]:
    return clean_env(AUTOLOG_TESTING="1", **extra)


def _history(cwd: Path, run: str, key: str) -> list[dict]:
    return cli(cwd, "runs", "history", run, key)


def test_store_is_a_wal_sqlite_file_with_artifacts_beside_it(workdir: Path) -> None:
    """By default the store is ./autologruns/runs.db (WAL) with artifacts/<run_id>/ beside it."""
    script = write_script(
        workdir,
        "train.py",
        """
        import autologagent
        open("notes.txt", "w").write("notes")
        with autologagent.start_run(run_name="r") as run:
            autologagent.log_metric("loss", 0.5)
            autologagent.log_artifact("notes.txt", artifact_path="docs")
        print(run.info.run_id)
        """,
    )
    result = run_python([str(script)], cwd=workdir, env=_testing_env(), check=True)
    run_id = result.stdout.strip()

    database = workdir / "autologruns" / "runs.db"
    assert database.is_file()
    assert (workdir / "autologruns" / "artifacts" / run_id / "docs" / "notes.txt").is_file()
    connection = sqlite3.connect(database)
    try:
        (mode,) = connection.execute("PRAGMA journal_mode").fetchone()
    finally:
        connection.close()
    assert mode == "wal"
    run = show_run(workdir, run_id)
    assert own_artifacts(run) == ["docs/notes.txt"]
    assert own_metrics(run) == {"loss": 0.5}


WRITER = """
import os
import sys
import time
import autologagent
index = int(sys.argv[1])
# Start together, and spread the points over ~2 s so that the four writers'
# commits overlap.
open(f"ready-{index}", "w").close()
while not all(os.path.exists(f"ready-{other}") for other in range(4)):
    time.sleep(0.01)
with autologagent.start_run(run_name=f"writer-{index}") as run:
    for step in range(20_000):
        autologagent.log_metric("value", index * 100_000 + step * 0.5, step=step)
        if step % 500 == 499:
            time.sleep(0.05)
print(run.info.run_id)
"""


def test_four_processes_write_at_once(workdir: Path) -> None:
    """Four processes logging 20,000 points each into one store: every point of every run lands."""
    script = write_script(workdir, "writer.py", WRITER)
    processes = [
        subprocess.Popen(
            [PYTHON, str(script), str(index)],
            cwd=workdir,
            env=_testing_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for index in range(4)
    ]
    outputs = []
    try:
        for process in processes:
            outputs.append(process.communicate(timeout=120))
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    for process, (_, stderr) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, stderr
        assert stderr == ""
    run_ids = [stdout.strip() for stdout, _ in outputs]

    runs = list_runs(workdir)
    assert sorted(run["run_id"] for run in runs) == sorted(run_ids)
    assert all(run["status"] == "FINISHED" for run in runs)
    for index, run_id in enumerate(run_ids):
        history = _history(workdir, run_id, "value")
        assert len(history) == 20_000
        assert [point["step"] for point in history] == list(range(20_000))
        assert [point["value"] for point in history] == [
            index * 100_000 + step * 0.5 for step in range(20_000)
        ]
        assert own_metrics(show_run(workdir, run_id)) == {"value": index * 100_000 + 19_999 * 0.5}


def test_points_are_committed_within_about_a_second(workdir: Path) -> None:
    """A point logged by a running script is readable from another process 2 s later."""
    script = write_script(
        workdir,
        "slow.py",
        """
        import sys
        import autologagent
        autologagent.log_metric("loss", 0.75, step=3)
        print("logged", flush=True)
        sys.stdin.readline()  # the test says when to end, after it has read the store
        """,
    )
    process = subprocess.Popen(
        [PYTHON, str(script)],
        cwd=workdir,
        env=_testing_env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline() == "logged\n"
        time.sleep(2)
        history = _history(workdir, "last", "loss")
        run = show_run(workdir)
        assert process.poll() is None
    finally:
        _, stderr = process.communicate("\n", timeout=30)
    assert [(p["step"], p["value"]) for p in history] == [(3, 0.75)]
    assert run["status"] == "RUNNING"
    assert run["name"] == "slow.py"
    assert process.returncode == 0, stderr
    assert show_run(workdir)["status"] == "FINISHED"


def test_points_logged_right_before_exit_are_flushed(workdir: Path) -> None:
    """10,000 points logged just before a normal exit are all in the store."""
    script = write_script(
        workdir,
        "burst.py",
        """
        import autologagent
        for step in range(10_000):
            autologagent.log_metric("x", step * 2.0, step=step)
        """,
    )
    run_python([str(script)], cwd=workdir, env=_testing_env(), check=True)
    history = _history(workdir, "last", "x")
    assert len(history) == 10_000
    assert history[-1] == {"step": 9_999, "value": 19_998.0, "timestamp": history[-1]["timestamp"]}
    assert [p["value"] for p in history] == [step * 2.0 for step in range(10_000)]
    assert show_run(workdir)["status"] == "FINISHED"


def test_a_record_the_store_cannot_take_loses_nothing_else(workdir: Path) -> None:
    """A param SQLite cannot encode (a lone surrogate) is dropped alone, not with all later data."""
    script = write_script(
        workdir,
        "poison.py",
        """
        import autologagent
        autologagent.log_metric("before", 1.0)
        autologagent.log_param("path", "data\\udcff.csv")  # an undecodable file name
        autologagent.log_param("ok", "yes")
        autologagent.flush()
        autologagent.log_metric("after", 2.0)
        with autologagent.start_run(run_name="later"):
            autologagent.log_metric("x", 3.0)
        """,
    )
    result = run_python([str(script)], cwd=workdir, check=True)
    assert "dropped a record" in result.stderr
    runs = list_runs(workdir)
    assert sorted((run["name"], run["status"]) for run in runs) == [
        ("later", "FINISHED"),
        ("poison.py", "FINISHED"),
    ]
    process_run = show_run(workdir, next(r["run_id"] for r in runs if r["name"] == "poison.py"))
    assert own_metrics(process_run) == {"before": 1.0, "after": 2.0}
    assert process_run["params"] == {"ok": "yes"}
    assert process_run["experiment"] == "Default"


def test_a_store_locked_for_seconds_loses_nothing(workdir: Path) -> None:
    """Another process holding the store's write lock for 3 s: the script waits it out at exit."""
    setup = write_script(
        workdir,
        "setup.py",
        """
        import autologagent
        autologagent.log_metric("created", 1.0)
        """,
    )
    run_python([str(setup)], cwd=workdir, env=_testing_env(), check=True)
    script = write_script(
        workdir,
        "train.py",
        """
        import autologagent
        with autologagent.start_run(run_name="locked-out"):
            for step in range(5000):
                autologagent.log_metric("loss", step / 5000, step=step)
        """,
    )
    database = sqlite3.connect(workdir / "autologruns" / "runs.db", isolation_level=None)
    database.execute("BEGIN EXCLUSIVE")
    try:
        process = subprocess.Popen(
            [PYTHON, str(script)], cwd=workdir, env=_testing_env(), stderr=subprocess.PIPE
        )
        time.sleep(3)
    finally:
        database.execute("COMMIT")
        database.close()
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr
    assert b"autologagent" not in stderr
    run = next(run for run in list_runs(workdir) if run["name"] == "locked-out")
    assert run["status"] == "FINISHED"
    points = _history(workdir, run["run_id"], "loss")
    assert [point["step"] for point in points] == list(range(5000))
