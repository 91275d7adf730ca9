"""Configuration: DESIGN.md's table of variables, the CLI options and the code options.

A bad value is one line naming the variable and what it accepts: under
``python -m autologagent`` the script never starts (status 2); under ``AUTOLOG=1``
the agent warns, stays off, and the program runs unchanged.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from conftest import clean_env, list_runs, own_artifacts, run_python, show_run, write_script

FIT = """\
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression

X, y = make_classification(n_samples=100, random_state=0)
LogisticRegression().fit(X, y)
print("script ran")
"""

# (variable, bad value, a piece of the accepted values the message must show)
BAD_VALUES = [
    ("AUTOLOG_LOG_MODELS", "maybe", "true or false"),
    ("AUTOLOG_LOG_DATASETS", "2x", "true or false"),
    ("AUTOLOG_MAX_TUNING_RUNS", "-1", "integer"),
    ("AUTOLOG_LOG_EVERY_N_STEPS", "0", "integer"),
    ("AUTOLOG_SYSTEM_METRICS", "perhaps", "true or false"),
    ("AUTOLOG_SYSTEM_METRICS_INTERVAL", "abc", "seconds"),
    ("AUTOLOG_SILENT", "loud", "true or false"),
    ("AUTOLOG_DISABLE", "nosuchlib", "sklearn"),
    ("AUTOLOG_TRACKING_URI", "ftp://x", "sqlite:///"),
    ("AUTOLOG_TRACKING_URI", "http://:5000", "http(s)://host"),
]
BAD_IDS = [f"{name}={value}" for name, value, _ in BAD_VALUES]


def _no_runs(workdir: Path) -> bool:
    return not (workdir / "autologruns").exists() or list_runs(workdir) == []


@pytest.mark.parametrize(("variable", "value", "accepted"), BAD_VALUES, ids=BAD_IDS)
def test_bad_value_stops_the_door_before_the_script(
    workdir: Path, variable: str, value: str, accepted: str
) -> None:
    """`VAR=bad python -m autologagent fit.py`: status 2, one line, the script never runs."""
    write_script(workdir, "fit.py", FIT)
    result = run_python(
        ["-m", "autologagent", "fit.py"], cwd=workdir, env=clean_env(**{variable: value})
    )
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert variable in lines[0]
    assert accepted in lines[0]
    assert not (workdir / "autologruns").exists()


@pytest.mark.parametrize(
    ("variable", "value", "accepted"),
    [*BAD_VALUES, ("AUTOLOG", "maybe", "true or false")],
    ids=[*BAD_IDS, "AUTOLOG=maybe"],
)
def test_bad_value_under_autolog_warns_and_stays_off(
    workdir: Path, variable: str, value: str, accepted: str
) -> None:
    """`AUTOLOG=1 VAR=bad python fit.py`: one warning line, the program as usual, no run."""
    write_script(workdir, "fit.py", FIT)
    env = clean_env(AUTOLOG="1")
    env[variable] = value
    result = run_python(["fit.py"], cwd=workdir, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "script ran\n"
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("autologagent: warning:")
    assert variable in lines[0]
    assert accepted in lines[0]
    assert not (workdir / "autologruns").exists()


def test_bad_value_under_sitecustomize_warns_and_stays_off(workdir: Path) -> None:
    """The container door with AUTOLOG_LOG_MODELS=maybe: one warning, the program as usual."""
    folder = run_python(["-m", "autologagent", "sitecustomize"], cwd=workdir, check=True)
    write_script(workdir, "fit.py", FIT)
    env = clean_env(PYTHONPATH=folder.stdout.strip(), AUTOLOG_LOG_MODELS="maybe")
    result = run_python(["fit.py"], cwd=workdir, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "script ran\n"
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("autologagent: warning:")
    assert "AUTOLOG_LOG_MODELS" in lines[0]
    assert not (workdir / "autologruns").exists()


def test_empty_experiment_means_default(workdir: Path) -> None:
    """AUTOLOG_EXPERIMENT="" is the same as unset: the run goes to experiment Default."""
    write_script(workdir, "fit.py", FIT)
    result = run_python(
        ["fit.py"],
        cwd=workdir,
        env=clean_env(AUTOLOG="1", AUTOLOG_TESTING="1", AUTOLOG_EXPERIMENT=""),
        check=True,
    )
    assert result.stderr == ""
    assert [run["experiment"] for run in list_runs(workdir)] == ["Default"]


# --- CLI options ----------------------------------------------------------------------------


def test_cli_options_choose_store_and_experiment(workdir: Path, tmp_path: Path) -> None:
    """`--experiment exp1 --uri <folder>` records into that folder, under exp1."""
    write_script(workdir, "fit.py", FIT)
    store = tmp_path / "store"
    result = run_python(
        ["-m", "autologagent", "--experiment", "exp1", "--uri", str(store), "fit.py"],
        cwd=workdir,
        env=clean_env(AUTOLOG_TESTING="1"),
        check=True,
    )
    assert result.stdout == "script ran\n"
    assert (store / "runs.db").is_file()
    assert not (workdir / "autologruns").exists()
    runs = list_runs(workdir, uri=str(store))
    assert [(run["name"], run["experiment"]) for run in runs] == [("LogisticRegression", "exp1")]


def test_cli_option_with_bad_value_is_a_usage_error(workdir: Path) -> None:
    """`--log-models maybe`: status 2, one line naming the option's variable, no script run."""
    write_script(workdir, "fit.py", FIT)
    result = run_python(
        ["-m", "autologagent", "--log-models", "maybe", "fit.py"], cwd=workdir, env=clean_env()
    )
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert "AUTOLOG_LOG_MODELS" in lines[0] or "--log-models" in lines[0]
    assert "true or false" in lines[0]


# --- variables that shape the runs ---------------------------------------------------------


def test_disable_sklearn_makes_no_run(workdir: Path) -> None:
    """AUTOLOG_DISABLE=sklearn: the fit runs as usual and no run is recorded."""
    write_script(workdir, "fit.py", FIT)
    result = run_python(
        ["fit.py"],
        cwd=workdir,
        env=clean_env(AUTOLOG="1", AUTOLOG_TESTING="1", AUTOLOG_DISABLE="sklearn"),
        check=True,
    )
    assert result.stdout == "script ran\n"
    assert result.stderr == ""
    assert _no_runs(workdir)


def test_experiment_variable_names_the_experiment(workdir: Path) -> None:
    """AUTOLOG_EXPERIMENT=myexp: the fit's run belongs to experiment myexp."""
    write_script(workdir, "fit.py", FIT)
    run_python(
        ["fit.py"],
        cwd=workdir,
        env=clean_env(AUTOLOG="1", AUTOLOG_TESTING="1", AUTOLOG_EXPERIMENT="myexp"),
        check=True,
    )
    assert show_run(workdir)["experiment"] == "myexp"


def test_tracking_uri_as_a_folder(workdir: Path, tmp_path: Path) -> None:
    """AUTOLOG_TRACKING_URI=<folder>: runs.db lands in it, and the default store is not made."""
    write_script(workdir, "fit.py", FIT)
    store = tmp_path / "elsewhere" / "runs"
    run_python(
        ["fit.py"],
        cwd=workdir,
        env=clean_env(AUTOLOG="1", AUTOLOG_TESTING="1", AUTOLOG_TRACKING_URI=str(store)),
        check=True,
    )
    assert (store / "runs.db").is_file()
    assert not (workdir / "autologruns").exists()
    assert [run["name"] for run in list_runs(workdir, uri=str(store))] == ["LogisticRegression"]


def test_tracking_uri_as_relative_sqlite(workdir: Path) -> None:
    """AUTOLOG_TRACKING_URI=sqlite:///relative.db: the db in the working folder, artifacts by it."""
    write_script(
        workdir,
        "fit.py",
        FIT
        + """\
import autologagent
with open("note.txt", "w") as handle:
    handle.write("hello")
with autologagent.start_run():
    autologagent.log_artifact("note.txt")
""",
    )
    uri = "sqlite:///relative.db"
    run_python(
        ["fit.py"],
        cwd=workdir,
        env=clean_env(AUTOLOG="1", AUTOLOG_TESTING="1", AUTOLOG_TRACKING_URI=uri),
        check=True,
    )
    database = workdir / "relative.db"
    assert database.is_file()
    with sqlite3.connect(database) as connection:
        assert connection.execute("select count(*) from sqlite_master").fetchone()[0] > 0
    assert not (workdir / "autologruns").exists()
    runs = list_runs(workdir, uri=uri)
    assert len(runs) == 2
    assert runs[1]["name"] == "LogisticRegression"
    manual = show_run(workdir, runs[0]["run_id"], uri=uri)
    assert own_artifacts(manual) == ["note.txt"]
    assert (workdir / "artifacts" / manual["run_id"] / "note.txt").read_text() == "hello"


# --- options in code -----------------------------------------------------------------------

CODE_FIT = """\
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression

X, y = make_classification(n_samples=100, random_state=0)
LogisticRegression().fit(X, y)
print("script ran")
"""


@pytest.mark.parametrize(
    ("calls", "expected_runs"),
    [
        ("autologagent.autolog()", 1),
        (
            "autologagent.integrations.sklearn.autolog(disable=True)\nautologagent.autolog()",
            0,
        ),
        (
            "autologagent.autolog()\nautologagent.integrations.sklearn.autolog(disable=True)",
            0,
        ),
        ("autologagent.autolog()\nautologagent.autolog(disable=True)", 0),
    ],
    ids=["autolog", "sklearn-off-then-autolog", "autolog-then-sklearn-off", "autolog-then-off"],
)
def test_code_options_under_plain_python(workdir: Path, calls: str, expected_runs: int) -> None:
    """autolog() in code turns logging on; a disable (universal or sklearn's) wins as documented."""
    source = "import autologagent\nimport autologagent.integrations.sklearn\n"
    write_script(workdir, "fit.py", source + calls + "\n" + CODE_FIT)
    result = run_python(["fit.py"], cwd=workdir, env=clean_env(AUTOLOG_TESTING="1"), check=True)
    assert result.stdout == "script ran\n"
    assert result.stderr == ""
    if expected_runs:
        runs = list_runs(workdir)
        assert [run["name"] for run in runs] == ["LogisticRegression"]
        assert runs[0]["status"] == "FINISHED"
    else:
        assert _no_runs(workdir)


def test_unknown_code_option_is_a_value_error(workdir: Path) -> None:
    """autologagent.autolog(bogus=1) raises ValueError naming 'bogus'."""
    write_script(
        workdir,
        "bad.py",
        """\
        import autologagent
        try:
            autologagent.autolog(bogus=1)
        except ValueError as exc:
            print("ValueError:", exc)
        """,
    )
    result = run_python(["bad.py"], cwd=workdir, env=clean_env(AUTOLOG_TESTING="1"), check=True)
    assert result.stdout.startswith("ValueError:")
    assert "bogus" in result.stdout
    assert len(result.stdout.splitlines()) == 1


# --- a store that cannot be written ----------------------------------------------------------


def test_unwritable_store_warns_and_the_program_goes_on(workdir: Path) -> None:
    """A store under a regular file: the program finishes normally, one or two warning lines."""
    write_script(workdir, "fit.py", FIT)
    (workdir / "afile").write_text("not a folder")
    store = workdir / "afile" / "store"
    result = run_python(
        ["fit.py"], cwd=workdir, env=clean_env(AUTOLOG="1", AUTOLOG_TRACKING_URI=str(store))
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "script ran\n"
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert 1 <= len(lines) <= 2, result.stderr
    for line in lines:
        assert line.startswith("autologagent: warning:")
        assert "store" in line
