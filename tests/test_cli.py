"""The `runs` command line, as DESIGN.md's "Command line" fixes it for tests and tools."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import (
    clean_env,
    cli,
    list_runs,
    own_artifacts,
    own_metrics,
    run_python,
    show_run,
    write_script,
)

SUMMARY_KEYS = {
    "run_id",
    "experiment",
    "name",
    "status",
    "start_time",
    "end_time",
    "parent_run_id",
}
SHOW_KEYS = SUMMARY_KEYS | {"params", "metrics", "tags", "artifacts"}

RECORD = """
import json
import os
import time
import autologagent

os.makedirs("out/deep", exist_ok=True)
open("out/a.txt", "w").write("a")
open("out/deep/b.txt", "w").write("b")
ids = {}
with autologagent.start_run(run_name="first") as run:
    ids["first"] = run.info.run_id
    autologagent.log_param("lr", 0.01)
    autologagent.log_param("optimizer", "adam")
    for step, value in [(2, 0.3), (0, 0.9), (1, 0.5)]:
        autologagent.log_metric("loss", value, step=step)
    autologagent.set_tag("team", "vision")
    autologagent.log_artifact("out")
    autologagent.log_artifact("out/a.txt", artifact_path="top")
    time.sleep(0.01)
    with autologagent.start_run(run_name="child", nested=True) as child:
        ids["child"] = child.info.run_id
        autologagent.log_metric("acc", 0.8)
time.sleep(0.01)
with autologagent.start_run(run_name="second") as run:
    ids["second"] = run.info.run_id
    autologagent.log_metric("acc", 0.6)
print(json.dumps(ids))
"""


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A working folder with three runs (first, its child, second) in its default store."""
    folder = tmp_path_factory.mktemp("cli") / "work"
    folder.mkdir()
    script = write_script(folder, "record.py", RECORD)
    result = run_python([str(script)], cwd=folder, env=clean_env(AUTOLOG_TESTING="1"), check=True)
    return folder, json.loads(result.stdout)


def _runs_cli(cwd: Path, *args: str) -> Any:
    return run_python(["-m", "autologagent", "runs", *args], cwd=cwd)


def test_list_json_is_newest_first_with_the_summary_keys(store: tuple[Path, dict]) -> None:
    """`runs list --json`: newest first, each entry with the documented keys and types."""
    folder, ids = store
    runs = list_runs(folder)
    assert [run["run_id"] for run in runs] == [ids["second"], ids["child"], ids["first"]]
    for run in runs:
        assert set(run) == SUMMARY_KEYS
        assert run["experiment"] == "Default"
        assert run["status"] == "FINISHED"
        assert isinstance(run["start_time"], int)
        assert isinstance(run["end_time"], int)
        assert run["start_time"] <= run["end_time"]
    by_name = {run["name"]: run for run in runs}
    assert by_name["child"]["parent_run_id"] == ids["first"]
    assert by_name["first"]["parent_run_id"] is None
    assert by_name["second"]["parent_run_id"] is None


def test_show_json_has_exactly_the_documented_shape(store: tuple[Path, dict]) -> None:
    """`runs show RUN --json`: exactly the documented keys, with their types."""
    folder, ids = store
    run = show_run(folder, ids["first"])
    assert set(run) == SHOW_KEYS
    assert run["run_id"] == ids["first"]
    assert run["name"] == "first"
    assert run["params"] == {"lr": "0.01", "optimizer": "adam"}
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in run["params"].items())
    assert own_metrics(run) == {"loss": 0.3}
    assert run["tags"]["team"] == "vision"
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in run["tags"].items())
    assert own_artifacts(run) == ["out/a.txt", "out/deep/b.txt", "top/a.txt"]


@pytest.mark.parametrize("ref", ["last", "full", "prefix"])
def test_show_accepts_last_a_full_id_or_a_unique_prefix(store: tuple[Path, dict], ref: str) -> None:
    """RUN may be 'last' (the newest run), a full run id or a unique prefix of one."""
    folder, ids = store
    target = ids["second"]
    argument = {"last": "last", "full": target, "prefix": target[:8]}[ref]
    run = show_run(folder, argument)
    assert run["run_id"] == target
    assert run["name"] == "second"
    assert own_metrics(run) == {"acc": 0.6}


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["show", "0123456789abcdef"], "0123456789abcdef"),
        (["show", "no-such-run", "--json"], "no-such-run"),
        (["history", "no-such-run", "loss"], "no-such-run"),
        (["history", "last", "no_such_metric", "--json"], "no_such_metric"),
    ],
)
def test_unknown_run_or_metric_is_a_one_line_error(
    store: tuple[Path, dict], args: list, named: str
) -> None:
    """An unknown run (or metric) exits with status 1 and a one-line message, no traceback."""
    folder, _ = store
    result = _runs_cli(folder, *args)
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert named in lines[0]


def test_history_json_is_in_step_order(store: tuple[Path, dict]) -> None:
    """`runs history RUN KEY --json`: [{step, value, timestamp}] sorted by step."""
    folder, ids = store
    history = cli(folder, "runs", "history", ids["first"], "loss")
    assert [(p["step"], p["value"]) for p in history] == [(0, 0.9), (1, 0.5), (2, 0.3)]
    for point in history:
        assert set(point) == {"step", "value", "timestamp"}
        assert isinstance(point["timestamp"], int)


def test_text_output_is_a_readable_table(store: tuple[Path, dict]) -> None:
    """Without --json: list prints a table with a header; show prints the params; history steps."""
    folder, ids = store
    listing = _runs_cli(folder, "list")
    assert listing.returncode == 0
    lines = listing.stdout.strip().splitlines()
    assert "RUN ID" in lines[0] and "STATUS" in lines[0]
    assert len(lines) == 4
    assert "second" in lines[1] and "FINISHED" in lines[1]
    assert "first" in lines[3]

    shown = _runs_cli(folder, "show", ids["first"])
    assert shown.returncode == 0
    assert ids["first"] in shown.stdout
    assert "lr" in shown.stdout and "0.01" in shown.stdout
    assert "optimizer" in shown.stdout and "adam" in shown.stdout
    assert "FINISHED" in shown.stdout

    history = _runs_cli(folder, "history", ids["first"], "loss")
    assert history.returncode == 0
    rows = history.stdout.strip().splitlines()
    assert len(rows) == 4
    assert "0.9" in rows[1] and "0.3" in rows[3]


@pytest.mark.parametrize("form", ["folder", "sqlite"])
def test_uri_selects_another_store(tmp_path: Path, workdir: Path, form: str) -> None:
    """`--uri` on list, show and history reads the store it names, not ./autologruns."""
    other = tmp_path / "elsewhere"
    uri = str(other) if form == "folder" else f"sqlite:///{other / 'mine.db'}"
    script = write_script(
        workdir,
        "log.py",
        """
        import sys
        import autologagent
        autologagent.log_metric("loss", float(sys.argv[1]))
        """,
    )
    env = clean_env(AUTOLOG_TESTING="1")
    run_python([str(script), "0.25"], cwd=workdir, env=env, check=True)
    run_python(
        [str(script), "0.5"], cwd=workdir, env={**env, "AUTOLOG_TRACKING_URI": uri}, check=True
    )
    assert (workdir / "autologruns").is_dir()

    here, there = list_runs(workdir), list_runs(workdir, uri=uri)
    assert len(here) == 1 and len(there) == 1
    assert here[0]["run_id"] != there[0]["run_id"]
    assert own_metrics(show_run(workdir, "last", uri=uri)) == {"loss": 0.5}
    assert own_metrics(show_run(workdir)) == {"loss": 0.25}
    history = cli(workdir, "runs", "history", there[0]["run_id"], "loss", "--uri", uri)
    assert [(p["step"], p["value"]) for p in history] == [(0, 0.5)]

    # AUTOLOG_TRACKING_URI is the default for --uri, and --uri wins over it.
    assert list_runs(workdir, uri=None) == here
    via_env = cli(workdir, "runs", "list", env={**env, "AUTOLOG_TRACKING_URI": uri})
    assert via_env == there
    via_flag = cli(
        workdir,
        "runs",
        "list",
        "--uri",
        str(workdir / "autologruns"),
        env={**env, "AUTOLOG_TRACKING_URI": uri},
    )
    assert via_flag == here


def test_list_on_an_empty_folder(workdir: Path) -> None:
    """`runs list` where nothing was recorded: 'no runs yet' (or [] with --json), status 0."""
    text = _runs_cli(workdir, "list")
    assert text.returncode == 0
    assert text.stdout.strip() == "no runs yet"
    assert text.stderr == ""
    assert list_runs(workdir) == []
    assert not (workdir / "autologruns").exists()


def test_console_script_gives_the_same_json(store: tuple[Path, dict]) -> None:
    """The `autologagent` console script beside python is the same program as `-m autologagent`."""
    folder, ids = store
    console = Path(sys.executable).parent / "autologagent"
    assert console.is_file()
    for args in (
        ["runs", "list", "--json"],
        ["runs", "show", ids["first"], "--json"],
        ["runs", "history", "last", "acc", "--json"],
    ):
        by_script = subprocess.run(
            [str(console), *args],
            cwd=folder,
            env=clean_env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        by_module = run_python(["-m", "autologagent", *args], cwd=folder)
        assert by_script.returncode == 0, by_script.stderr
        assert by_module.returncode == 0, by_module.stderr
        assert json.loads(by_script.stdout) == json.loads(by_module.stdout)
        assert by_script.stdout == by_module.stdout
