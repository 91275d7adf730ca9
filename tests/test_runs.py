"""Run semantics, as a user sees them in the store after running a real script.

One run per training call, one run per process for loop-shaped logging, the
user's own runs reused by everything, and nothing logged before a run ends lost.
"""

from __future__ import annotations

import json
import math
import signal
import subprocess
from pathlib import Path

import pytest
from conftest import (
    PYTHON,
    clean_env,
    cli,
    list_runs,
    own_artifacts,
    own_metrics,
    own_tags,
    run_python,
    show_run,
    write_script,
)

DATA = """
from sklearn.datasets import make_classification
X, y = make_classification(n_samples=100, random_state=0)
"""

THREE_FITS = (
    DATA
    + """
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeClassifier
LogisticRegression(C=0.5).fit(X, y)
DecisionTreeClassifier(max_depth=2).fit(X, y)
LogisticRegression(C=2.0, max_iter=50).fit(X, y)
print("done")
"""
)


def _testing_env(**extra: str) -> dict[str, str]:
    return clean_env(AUTOLOG_TESTING="1", **extra)


def _autolog_env(**extra: str) -> dict[str, str]:
    return clean_env(AUTOLOG="1", AUTOLOG_TESTING="1", **extra)


def _history(cwd: Path, run: str, key: str) -> list[dict]:
    return cli(cwd, "runs", "history", run, key)


def _comparable(run: dict) -> tuple:
    """What two equivalent runs share (ids and times differ)."""
    return (run["name"], run["status"], run["params"], own_tags(run), run["parent_run_id"])


# --- one run per training call ---------------------------------------------------


def test_three_fits_make_three_finished_runs_newest_first(workdir: Path) -> None:
    """A script fitting three models shows three FINISHED runs, each with its own params."""
    script = write_script(workdir, "train.py", THREE_FITS)
    result = run_python([str(script)], cwd=workdir, env=_autolog_env(), check=True)
    assert result.stdout == "done\n"

    runs = list_runs(workdir)
    assert [run["name"] for run in runs] == [
        "LogisticRegression",
        "DecisionTreeClassifier",
        "LogisticRegression",
    ]
    assert all(run["status"] == "FINISHED" for run in runs)
    assert all(run["parent_run_id"] is None for run in runs)
    starts = [run["start_time"] for run in runs]
    assert starts == sorted(starts, reverse=True)
    assert len({run["run_id"] for run in runs}) == 3

    newest, middle, oldest = (show_run(workdir, run["run_id"]) for run in runs)
    assert oldest["params"]["C"] == "0.5"
    assert oldest["params"]["max_iter"] == "100"
    assert "max_depth" not in oldest["params"]
    assert middle["params"]["max_depth"] == "2"
    assert "C" not in middle["params"]
    assert newest["params"]["C"] == "2.0"
    assert newest["params"]["max_iter"] == "50"
    for run in (newest, middle, oldest):
        assert run["end_time"] >= run["start_time"]


FAILING_FIT = (
    DATA
    + """
from sklearn.linear_model import LogisticRegression
print("before")
LogisticRegression().fit(X, y[:-1])
"""
)


def test_failing_fit_makes_a_failed_run_with_the_exception(workdir: Path) -> None:
    """A fit that raises: its run is FAILED, the exception's class and message kept as tags."""
    script = write_script(workdir, "train.py", FAILING_FIT)
    result = run_python([str(script)], cwd=workdir, env=_autolog_env())
    assert result.returncode == 1
    assert result.stdout == "before\n"
    assert "ValueError" in result.stderr

    runs = list_runs(workdir)
    assert len(runs) == 1
    run = show_run(workdir, runs[0]["run_id"])
    assert run["name"] == "LogisticRegression"
    assert run["status"] == "FAILED"
    assert run["end_time"] is not None
    assert run["params"]["C"] == "1.0"
    assert run["tags"]["autolog.exception_class"] == "ValueError"
    message = run["tags"]["autolog.exception_message"]
    assert "inconsistent numbers of samples" in message
    assert f"ValueError: {message}\n" in result.stderr


def test_failing_fit_traceback_and_status_as_plain_python(workdir: Path) -> None:
    """A fit that raises: stdout, stderr (the traceback) and exit status equal plain python's."""
    script = write_script(workdir, "train.py", FAILING_FIT)
    plain = run_python([str(script)], cwd=workdir, env=clean_env())
    assert plain.returncode == 1
    assert "ValueError" in plain.stderr
    assert not (workdir / "autologruns").exists()

    for door_args, env in (
        (["-m", "autologagent", str(script)], _testing_env()),
        ([str(script)], _autolog_env()),
    ):
        agent = run_python(door_args, cwd=workdir, env=env)
        assert agent.returncode == plain.returncode, door_args
        assert agent.stdout == plain.stdout, door_args
        assert agent.stderr == plain.stderr, door_args
    assert [run["status"] for run in list_runs(workdir)] == ["FAILED", "FAILED"]


def test_both_doors_give_the_same_runs(tmp_path: Path) -> None:
    """`python -m autologagent train.py` and `AUTOLOG=1 python train.py` record the same runs."""
    results = []
    for door in ("module", "env"):
        folder = tmp_path / door
        folder.mkdir()
        script = write_script(folder, "train.py", THREE_FITS)
        if door == "module":
            run_python(
                ["-m", "autologagent", str(script)], cwd=folder, env=_testing_env(), check=True
            )
        else:
            run_python([str(script)], cwd=folder, env=_autolog_env(), check=True)
        results.append([_comparable(show_run(folder, r["run_id"])) for r in list_runs(folder)])
    assert len(results[0]) == 3
    assert results[0] == results[1]


# --- the manual API --------------------------------------------------------------------

MANUAL = """
import json
import autologagent

open("file.txt", "w").write("hello")
assert autologagent.active_run() is None
out = {}
with autologagent.start_run(run_name="r1") as run:
    out["run_id"] = run.info.run_id
    out["active_is_run"] = autologagent.active_run().info.run_id == run.info.run_id
    autologagent.log_param("lr", 0.01)
    autologagent.log_params({"layers": 3, "activation": "relu", "dropout": None})
    for step, value in [(3, 0.25), (0, 1.0), (2, 1 / 3), (1, 0.5), (4, 0.125)]:
        autologagent.log_metric("loss", value, step=step)
    autologagent.log_metric("accuracy", 0.75)
    autologagent.log_metrics({"accuracy": 0.875, "f1": 0.8}, step=1)
    autologagent.set_tag("team", "vision")
    autologagent.set_tags({"stage": "dev", "seed": 7})
    autologagent.log_artifact("file.txt")
    autologagent.log_artifact("file.txt", artifact_path="sub/dir")

    try:
        autologagent.start_run(run_name="again")
    except Exception as exc:
        out["second_error"] = [type(exc).__name__, str(exc)]
    with autologagent.start_run(run_name="child", nested=True) as child:
        out["child_id"] = child.info.run_id
        out["active_is_child"] = autologagent.active_run().info.run_id == child.info.run_id
        autologagent.log_metric("child_metric", 2.0)
    out["active_back_to_run"] = autologagent.active_run().info.run_id == run.info.run_id

out["active_after"] = autologagent.active_run()
last = autologagent.last_active_run()
out["last_active"] = None if last is None else last.info.run_id
print(json.dumps(out))
"""


def test_manual_api_records_everything_in_the_users_run(workdir: Path) -> None:
    """start_run / log_* / set_tag(s) / log_artifact under plain python, read back with the CLI."""
    script = write_script(workdir, "manual.py", MANUAL)
    result = run_python([str(script)], cwd=workdir, env=_testing_env(), check=True)
    out = json.loads(result.stdout)
    run_id = out["run_id"]

    assert out["active_is_run"] is True
    assert out["active_is_child"] is True
    assert out["active_back_to_run"] is True
    assert out["active_after"] is None
    assert out["last_active"] == run_id

    error_class, error_message = out["second_error"]
    assert error_class in ("RuntimeError", "Exception")
    assert "\n" not in error_message and error_message.strip()
    assert "nested=True" in error_message

    run = show_run(workdir, run_id)
    assert run["name"] == "r1"
    assert run["status"] == "FINISHED"
    assert run["parent_run_id"] is None
    assert run["params"] == {"lr": "0.01", "layers": "3", "activation": "relu", "dropout": "None"}
    assert own_metrics(run) == {"loss": 0.125, "accuracy": 0.875, "f1": 0.8}
    assert run["tags"]["team"] == "vision"
    assert run["tags"]["stage"] == "dev"
    assert run["tags"]["seed"] == "7"
    assert own_artifacts(run) == ["file.txt", "sub/dir/file.txt"]
    artifact_root = workdir / "autologruns" / "artifacts" / run_id
    assert (artifact_root / "sub" / "dir" / "file.txt").read_text() == "hello"

    history = _history(workdir, run_id, "loss")
    assert [point["step"] for point in history] == [0, 1, 2, 3, 4]
    assert [point["value"] for point in history] == [1.0, 0.5, 1 / 3, 0.25, 0.125]
    assert all(set(point) == {"step", "value", "timestamp"} for point in history)
    assert all(isinstance(point["timestamp"], int) for point in history)
    assert all(run["start_time"] <= p["timestamp"] <= run["end_time"] for p in history)

    accuracy = _history(workdir, run_id, "accuracy")
    assert [(p["step"], p["value"]) for p in accuracy] == [(0, 0.75), (1, 0.875)]

    child = show_run(workdir, out["child_id"])
    assert child["name"] == "child"
    assert child["status"] == "FINISHED"
    assert child["parent_run_id"] == run_id
    assert own_metrics(child) == {"child_metric": 2.0}
    assert "child_metric" not in run["metrics"]

    assert sorted(r["name"] for r in list_runs(workdir)) == ["child", "r1"]


def test_fit_inside_users_run_logs_into_it(workdir: Path) -> None:
    """A fit inside `with start_run()` adds its params to that run and makes no run of its own."""
    script = write_script(
        workdir,
        "train.py",
        DATA
        + """
import autologagent
from sklearn.linear_model import LogisticRegression
with autologagent.start_run(run_name="mine") as run:
    autologagent.log_param("note", "manual")
    LogisticRegression(C=0.3).fit(X, y)
    inside = autologagent.active_run().info.run_id
print(run.info.run_id, inside)
""",
    )
    result = run_python([str(script)], cwd=workdir, env=_autolog_env(), check=True)
    run_id, inside = result.stdout.split()
    assert inside == run_id

    runs = list_runs(workdir)
    assert [r["run_id"] for r in runs] == [run_id]
    run = show_run(workdir, run_id)
    assert run["name"] == "mine"
    assert run["status"] == "FINISHED"
    assert run["params"]["note"] == "manual"
    assert run["params"]["C"] == "0.3"
    assert run["tags"]["estimator_name"] == "LogisticRegression"


# --- the process run ----------------------------------------------------------------------

LOOP = """
import autologagent
for step in range(5):
    autologagent.log_metric("loss", 1.0 / (step + 1), step=step)
"""

DOORS = {
    "import": lambda script: [str(script)],
    "module": lambda script: ["-m", "autologagent", str(script)],
}


@pytest.mark.parametrize("door", sorted(DOORS))
def test_log_metric_outside_a_run_makes_one_process_run(workdir: Path, door: str) -> None:
    """Manual logging with no run: one run named after the script, FINISHED at exit."""
    script = write_script(workdir, "loop_train.py", LOOP + "autologagent.log_metric('acc', 0.9)\n")
    run_python(DOORS[door](script), cwd=workdir, env=_testing_env(), check=True)
    runs = list_runs(workdir)
    assert len(runs) == 1
    run = show_run(workdir, runs[0]["run_id"])
    assert run["name"] == "loop_train.py"
    assert run["status"] == "FINISHED"
    assert run["end_time"] is not None
    assert run["parent_run_id"] is None
    assert own_metrics(run) == {"loss": 0.2, "acc": 0.9}
    assert len(_history(workdir, "last", "loss")) == 5


def test_closing_the_runs_at_exit_sets_off_no_garbage_collection(workdir: Path) -> None:
    """Once the program's code is done, the agent ends its runs with the cyclic GC
    paused (a full collection its last jobs set off cost a program that imported
    scikit-learn 70 ms, just before the interpreter's own), and restores it."""
    script = write_script(
        workdir,
        "train.py",
        """
import atexit, gc, sys
import autologagent
log = open(sys.argv[1], "w", buffering=1)
done = []
def watch(phase, info):
    if phase == "start" and done and not sys.is_finalizing():
        print("collection of generation", info["generation"], file=log)
gc.callbacks.append(watch)
gc.set_threshold(1)  # a collection at every allocation the agent's exit work would make
atexit.register(done.append, True)  # runs before the agent's own exit handler
for step in range(2000):
    autologagent.log_metric("loss", 1.0 / (step + 1), step=step)
autologagent.log_params({f"p{index}": [index] for index in range(50)})
""",
    )
    record = workdir / "collections.txt"
    # The command door: the agent's exit handler is registered before the script's.
    run_python(DOORS["module"](script) + [str(record)], cwd=workdir, env=_testing_env(), check=True)
    assert show_run(workdir)["status"] == "FINISHED"
    assert record.read_text() == ""


@pytest.mark.parametrize("door", sorted(DOORS))
def test_uncaught_exception_fails_the_process_run_and_keeps_its_points(
    workdir: Path, door: str
) -> None:
    """A crash after logging: the run is FAILED with the exception as tags; no point is lost."""
    script = write_script(workdir, "crash.py", LOOP + "raise RuntimeError('diverged at step 5')\n")
    result = run_python(DOORS[door](script), cwd=workdir, env=_testing_env())
    assert result.returncode == 1
    assert result.stderr.rstrip().endswith("RuntimeError: diverged at step 5")

    run = show_run(workdir)
    assert run["name"] == "crash.py"
    assert run["status"] == "FAILED"
    assert run["tags"]["autolog.exception_class"] == "RuntimeError"
    assert run["tags"]["autolog.exception_message"] == "diverged at step 5"
    history = _history(workdir, "last", "loss")
    assert [(p["step"], p["value"]) for p in history] == [
        (step, 1.0 / (step + 1)) for step in range(5)
    ]


@pytest.mark.parametrize("door", sorted(DOORS))
def test_keyboard_interrupt_kills_the_process_run(workdir: Path, door: str) -> None:
    """Ctrl-C (a KeyboardInterrupt out of the script): run KILLED, exit status as python's."""
    script = write_script(workdir, "interrupted.py", LOOP + "raise KeyboardInterrupt\n")
    without_agent = write_script(workdir, "plain.py", "raise KeyboardInterrupt\n")
    plain = run_python([str(without_agent)], cwd=workdir)
    assert plain.returncode == -signal.SIGINT
    result = run_python(DOORS[door](script), cwd=workdir, env=_testing_env())
    assert result.returncode == plain.returncode
    assert "KeyboardInterrupt" in result.stderr

    run = show_run(workdir)
    assert run["name"] == "interrupted.py"
    assert run["status"] == "KILLED"
    assert len(_history(workdir, "last", "loss")) == 5


SLEEPER = """
import time
import autologagent
for step in range(100):
    autologagent.log_metric("loss", step * 0.5, step=step)
print("ready", flush=True)
time.sleep(60)
"""


@pytest.mark.parametrize("door", sorted(DOORS))
def test_sigterm_kills_the_process_run_and_keeps_its_points(workdir: Path, door: str) -> None:
    """SIGTERM while a loop sleeps: run KILLED, all points kept, returncode -15 as without agent."""
    script = write_script(workdir, "sleeper.py", SLEEPER)
    process = subprocess.Popen(
        [PYTHON, *DOORS[door](script)],
        cwd=workdir,
        env=_testing_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline() == "ready\n"
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == -signal.SIGTERM
    assert stderr == ""

    run = show_run(workdir)
    assert run["name"] == "sleeper.py"
    assert run["status"] == "KILLED"
    assert run["end_time"] is not None
    history = _history(workdir, "last", "loss")
    assert [(p["step"], p["value"]) for p in history] == [(s, s * 0.5) for s in range(100)]


# --- bad input -----------------------------------------------------------------------------


def test_bad_input_raises_clear_errors(workdir: Path) -> None:
    """'..' in artifact_path is a ValueError; a non-number metric is a TypeError naming the key."""
    script = write_script(
        workdir,
        "bad.py",
        """
        import json
        import autologagent
        open("file.txt", "w").write("x")
        errors = {}
        with autologagent.start_run(run_name="r"):
            for name, call in {
                "dotdot": lambda: autologagent.log_artifact("file.txt", artifact_path="../up"),
                "inner": lambda: autologagent.log_artifact("file.txt", artifact_path="a/../../b"),
                "text": lambda: autologagent.log_metric("val_loss", "high"),
                "none": lambda: autologagent.log_metric("val_loss", None),
            }.items():
                try:
                    call()
                except Exception as exc:
                    errors[name] = [type(exc).__name__, str(exc)]
                else:
                    errors[name] = None
        print(json.dumps(errors))
        """,
    )
    result = run_python([str(script)], cwd=workdir, env=_testing_env(), check=True)
    errors = json.loads(result.stdout)
    for name in ("dotdot", "inner"):
        assert errors[name] is not None, name
        kind, message = errors[name]
        assert kind == "ValueError"
        assert ".." in message and "artifact_path" in message
        assert "\n" not in message
    for name in ("text", "none"):
        assert errors[name] is not None, name
        kind, message = errors[name]
        assert kind == "TypeError"
        assert "val_loss" in message
    run = show_run(workdir)
    assert own_artifacts(run) == []
    assert own_metrics(run) == {}
    assert not (workdir / "autologruns" / "up").exists()
    assert not (workdir / "autologruns" / "artifacts" / "b").exists()


def test_nan_and_inf_metrics_are_kept(workdir: Path) -> None:
    """NaN and ±inf are stored as such; the JSON output writes them as "nan", "inf", "-inf"."""
    script = write_script(
        workdir,
        "nan.py",
        """
        import autologagent
        with autologagent.start_run(run_name="r"):
            autologagent.log_metric("a", float("nan"))
            autologagent.log_metric("b", float("inf"))
            autologagent.log_metric("c", float("-inf"))
            for step, value in enumerate([1.5, float("nan"), float("inf"), float("-inf"), 2.5]):
                autologagent.log_metric("series", value, step=step)
            autologagent.log_metric("last_nan", 1.0, step=0)
            autologagent.log_metric("last_nan", float("nan"), step=1)
        """,
    )
    run_python([str(script)], cwd=workdir, env=_testing_env(), check=True)
    run = show_run(workdir)
    assert own_metrics(run) == {
        "a": "nan",
        "b": "inf",
        "c": "-inf",
        "series": 2.5,
        "last_nan": "nan",
    }
    history = _history(workdir, "last", "series")
    assert [p["value"] for p in history] == [1.5, "nan", "inf", "-inf", 2.5]
    assert [p["step"] for p in history] == [0, 1, 2, 3, 4]
    assert math.isnan(float(_history(workdir, "last", "last_nan")[1]["value"]))
