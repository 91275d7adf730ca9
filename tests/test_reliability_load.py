"""Load and awkward values: many writers at once, one huge series, oversized and odd input.

Points are read back through the store's own reader (``SqliteStore``, what
``runs history`` uses) rather than as JSON: a million points as JSON is slow to
print and to parse, and proves nothing more.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from autologagent._sqlite_store import SqliteStore
from conftest import (
    PYTHON,
    clean_env,
    cli,
    list_runs,
    own_metrics,
    run_python,
    show_run,
    write_script,
)

WRITERS, POINTS = 8, 100_000

WRITER = """
import os
import sys
import time
import autologagent
index = int(sys.argv[1])
open(f"ready-{index}", "w").close()
while not all(os.path.exists(f"ready-{other}") for other in range(int(sys.argv[2]))):
    time.sleep(0.01)
with autologagent.start_run(run_name=f"writer-{index}") as run:
    for step in range(int(sys.argv[3])):
        autologagent.log_metric("value", index * 1e6 + step, step=step)
print(run.info.run_id)
"""


def _store(workdir: Path) -> SqliteStore:
    root = workdir / "autologruns"
    return SqliteStore(str(root / "runs.db"), str(root / "artifacts"), create=False)


def test_eight_processes_log_100k_points_each_into_one_store(workdir: Path) -> None:
    """8 × 100,000 points at once: no error, every run FINISHED, every point in order."""
    script = write_script(workdir, "writer.py", WRITER)
    processes = [
        subprocess.Popen(
            [PYTHON, str(script), str(index), str(WRITERS), str(POINTS)],
            cwd=workdir,
            env=clean_env(AUTOLOG_TESTING="1", AUTOLOG_SYSTEM_METRICS="false"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for index in range(WRITERS)
    ]
    outputs = []
    try:
        for process in processes:
            outputs.append(process.communicate(timeout=300))
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
    assert {run["status"] for run in runs} == {"FINISHED"}
    store = _store(workdir)
    try:
        for index, run_id in enumerate(run_ids):
            points = store.metric_history(run_id, "value")
            assert [p.step for p in points] == list(range(POINTS)), index
            assert [p.value for p in points] == [index * 1e6 + step for step in range(POINTS)]
            assert store.get_run(run_id).metrics == {"value": index * 1e6 + POINTS - 1}
    finally:
        store.close()


def test_one_run_with_a_million_points_of_one_metric(workdir: Path) -> None:
    """1,000,000 points of one series: all kept, in step order, the latest value right."""
    script = write_script(
        workdir,
        "long.py",
        """
        import autologagent
        with autologagent.start_run(run_name="long") as run:
            for step in range(1_000_000):
                autologagent.log_metric("loss", step * 0.25, step=step)
        print(run.info.run_id)
        """,
    )
    env = clean_env(AUTOLOG_TESTING="1", AUTOLOG_SYSTEM_METRICS="false")
    run_id = run_python([str(script)], cwd=workdir, env=env, check=True).stdout.strip()
    run = show_run(workdir, run_id)
    assert run["status"] == "FINISHED"
    assert run["metrics"] == {"loss": 999_999 * 0.25}
    store = _store(workdir)
    try:
        points = store.metric_history(run_id, "loss")
    finally:
        store.close()
    assert len(points) == 1_000_000
    assert [p.step for p in points] == list(range(1_000_000))
    assert all(p.value == p.step * 0.25 for p in points)


def test_a_1mb_param_is_truncated_and_tagged_and_logging_goes_on(workdir: Path) -> None:
    """A 1 MB value is cut to 6,000 characters with a tag; every other record still lands."""
    script = write_script(
        workdir,
        "big.py",
        """
        import autologagent
        with autologagent.start_run(run_name="r"):
            autologagent.log_param("before", 1)
            autologagent.log_param("config", "x" * 1_000_000)
            autologagent.log_params({"huge": "y" * 1_000_000, "after": 2})
            autologagent.log_metric("loss", 0.5)
        """,
    )
    run_python([str(script)], cwd=workdir, env=clean_env(AUTOLOG_TESTING="1"), check=True)
    run = show_run(workdir)
    assert run["status"] == "FINISHED"
    assert run["params"] == {
        "before": "1",
        "config": "x" * 6000,
        "huge": "y" * 6000,
        "after": "2",
    }
    assert run["tags"]["autolog.truncated_param.config"] == "1000000"
    assert run["tags"]["autolog.truncated_param.huge"] == "1000000"
    assert run["metrics"]["loss"] == 0.5


NAMES = ["loss/train", "val/accuracy@top-5", "Verlust/Prüfung", "验证/损失", "🚀 speed", "a//b/"]


def test_metric_names_with_unicode_and_slashes_are_stored(workdir: Path) -> None:
    """Names with slashes, accents, CJK and emoji: stored under exactly that name."""
    script = write_script(
        workdir,
        "names.py",
        f"""
        import autologagent
        with autologagent.start_run(run_name="r"):
            for index, name in enumerate({NAMES!r}):
                for step in range(3):
                    autologagent.log_metric(name, index + step / 10, step=step)
        """,
    )
    run_python([str(script)], cwd=workdir, env=clean_env(AUTOLOG_TESTING="1"), check=True)
    run = show_run(workdir)
    assert own_metrics(run) == {name: index + 0.2 for index, name in enumerate(NAMES)}
    for index, name in enumerate(NAMES):
        points = cli(workdir, "runs", "history", "last", name)
        assert [(p["step"], p["value"]) for p in points] == [
            (step, index + step / 10) for step in range(3)
        ]


def test_param_values_of_any_type_are_stored_as_their_str(workdir: Path) -> None:
    """Numbers, None, booleans, lists, dicts, numpy scalars, objects: ``str(value)``, as MLflow."""
    script = write_script(
        workdir,
        "param_types.py",
        """
        import json
        import numpy as np
        import autologagent

        class Config:
            def __str__(self):
                return "Config(lr=0.1)"

        values = {
            "int": 3, "float": 0.1, "none": None, "bool": True, "list": [1, "a"],
            "dict": {"k": 1.5}, "np_float": np.float32(0.5), "np_array": np.arange(3),
            "object": Config(), "bytes": b"raw", "tuple": (1, 2),
        }
        with autologagent.start_run(run_name="r"):
            for key, value in values.items():
                autologagent.log_param(key, value)
            autologagent.log_params({"many_" + key: value for key, value in values.items()})
        print(json.dumps({key: str(value) for key, value in values.items()}))
        """,
    )
    result = run_python([str(script)], cwd=workdir, env=clean_env(AUTOLOG_TESTING="1"), check=True)
    expected = json.loads(result.stdout)
    params = show_run(workdir)["params"]
    assert params == {**expected, **{"many_" + key: value for key, value in expected.items()}}
