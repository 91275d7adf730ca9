"""The three activation doors, each checked in real ``python`` processes.

``python -m autologagent`` must be invisible to the script it runs; ``AUTOLOG=1``
and the sitecustomize folder must turn the agent on (and only they); child
processes inherit the activation; a fitted model is the same with or without it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest
from conftest import (
    CHURN_SOURCE,
    PYTHON,
    clean_env,
    list_runs,
    run_python,
    show_run,
    write_script,
)

PROBE = """\
import json
import sys

print(json.dumps({
    "argv": sys.argv,
    "path0": sys.path[0],
    "name": __name__,
    "file": __file__,
    "spec": repr(__spec__),
    "spec_name": getattr(__spec__, "name", None),
    "spec_origin": getattr(__spec__, "origin", None),
    "package": __package__,
    "main_is_registered": __import__("__main__") is sys.modules["__main__"],
    "globals_are_main": sys.modules["__main__"].__dict__ is globals(),
    "loader": type(__loader__).__name__,
}))

if __name__ == "__main__":
    print("main block ran")
"""

# The namespace a script starts with, before any line of its own runs.
NAMESPACE_PROBE = """\
_names = sorted(globals())
import json
print(json.dumps({
    "names": _names,
    "builtins": type(__builtins__).__name__,
    "cached": __cached__,
    "doc": __doc__,
}))
"""

FIT = """\
import json
import sys
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression

X, y = make_classification(n_samples=100, random_state=0)
clf = LogisticRegression(C=1.0).fit(X, y)
print(json.dumps({
    "params": {key: str(value) for key, value in clf.get_params().items()},
    "agent_loaded": "autologagent" in sys.modules,
}))
"""


def _agent_env(**extra: str) -> dict[str, str]:
    return clean_env(AUTOLOG_TESTING="1", **extra)


def _plain_and_agent(
    args: list[str], cwd: Path
) -> tuple[subprocess.CompletedProcess[str], subprocess.CompletedProcess[str]]:
    """Run ``python ARGS`` and ``python -m autologagent ARGS`` in the same folder."""
    plain = run_python(args, cwd=cwd)
    agent = run_python(["-m", "autologagent", *args], cwd=cwd, env=_agent_env())
    return plain, agent


def _probe_output(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert result.returncode == 0, result.stderr
    first, *rest = result.stdout.splitlines()
    assert rest == ["main block ran"], result.stdout
    return json.loads(first)


# --- door 1: python -m autologagent ----------------------------------------------


def test_script_sees_the_same_as_under_plain_python(workdir: Path) -> None:
    """`python -m autologagent probe.py a b` looks exactly like `python probe.py a b`."""
    write_script(workdir, "probe.py", PROBE)
    plain, agent = _plain_and_agent(["probe.py", "a", "b"], workdir)
    assert plain.stderr == agent.stderr == ""
    expected = _probe_output(plain)
    assert expected["argv"] == ["probe.py", "a", "b"]
    assert _probe_output(agent) == expected


def test_script_in_a_subfolder_by_relative_path(workdir: Path) -> None:
    """A relative path into a subfolder gives the same argv, sys.path[0] and __file__."""
    write_script(workdir, "scripts/probe.py", PROBE)
    plain, agent = _plain_and_agent(["scripts/probe.py", "--flag", "x y"], workdir)
    expected = _probe_output(plain)
    assert expected["path0"] == str((workdir / "scripts").resolve())
    assert _probe_output(agent) == expected


def test_script_through_a_symlink(workdir: Path) -> None:
    """A symlinked script: sys.path[0] is the real folder, __file__ the link, as python does."""
    write_script(workdir, "real/probe.py", PROBE)
    (workdir / "link.py").symlink_to(workdir / "real" / "probe.py")
    plain, agent = _plain_and_agent(["link.py", "1"], workdir)
    expected = _probe_output(plain)
    assert expected["path0"] == str((workdir / "real").resolve())
    assert _probe_output(agent) == expected


def _module_fields(output: dict[str, Any]) -> dict[str, Any]:
    """The probe's fields without the spec's repr, which holds a loader's address."""
    return {key: value for key, value in output.items() if key != "spec"}


@pytest.mark.parametrize(
    ("module", "spec_name"),
    [("pkg.mod", "pkg.mod"), ("pkg", "pkg.__main__")],
    ids=["module", "package-main"],
)
def test_dash_m_module_runs_as_under_plain_python(
    workdir: Path, module: str, spec_name: str
) -> None:
    """`-m pkg.mod args` and `-m pkg` (pkg/__main__.py) run as `python -m` runs them."""
    write_script(workdir, "pkg/__init__.py", "")
    write_script(workdir, "pkg/mod.py", PROBE)
    write_script(workdir, "pkg/__main__.py", PROBE)
    plain = run_python(["-m", module, "a", "--b"], cwd=workdir)
    agent = run_python(
        ["-m", "autologagent", "-m", module, "a", "--b"], cwd=workdir, env=_agent_env()
    )
    expected = _probe_output(plain)
    assert expected["spec_name"] == spec_name
    assert expected["package"] == "pkg"
    got = _probe_output(agent)
    assert _module_fields(got) == _module_fields(expected)
    assert agent.stderr == plain.stderr == ""


@pytest.mark.parametrize("how", ["script", "module"])
def test_main_namespace_matches_plain_python(workdir: Path, how: str) -> None:
    """The script starts with the same globals as under python: names, __builtins__, __cached__."""
    write_script(workdir, "pkg/__init__.py", "")
    write_script(workdir, "pkg/ns.py", NAMESPACE_PROBE)
    write_script(workdir, "ns.py", NAMESPACE_PROBE)
    target = ["ns.py"] if how == "script" else ["-m", "pkg.ns"]
    plain = run_python(target, cwd=workdir, check=True)
    agent = run_python(["-m", "autologagent", *target], cwd=workdir, env=_agent_env(), check=True)
    assert json.loads(agent.stdout) == json.loads(plain.stdout)


# --- exit status and tracebacks ----------------------------------------------------

UNCAUGHT = """\
def load(path):
    try:
        return open(path).read()
    except OSError as exc:
        raise RuntimeError(f"cannot load {path}") from exc


def main():
    load("no/such/file.txt")


main()
"""


@pytest.mark.parametrize(
    ("source", "status", "stderr"),
    [
        (UNCAUGHT, 1, None),
        ("import sys\nprint('before')\nsys.exit('text')\n", 1, "text\n"),
        ("print('before')\nraise SystemExit(0)\n", 0, ""),
        ("import sys\nsys.exit(3)\n", 3, ""),
        ("print('before')\nraise KeyboardInterrupt\n", -signal.SIGINT, None),
        ("x = 1\n  y = 2\n", 1, None),
    ],
    ids=["uncaught", "exit-text", "exit-0", "exit-3", "keyboard-interrupt", "syntax-error"],
)
def test_exit_status_and_stderr_as_plain_python(
    workdir: Path, source: str, status: int, stderr: str | None
) -> None:
    """Exit status, stdout and the traceback text are the ones plain python gives."""
    write_script(workdir, "prog.py", source)
    plain, agent = _plain_and_agent(["prog.py"], workdir)
    assert plain.returncode == status
    if stderr is not None:
        assert plain.stderr == stderr
    assert agent.returncode == plain.returncode
    assert agent.stdout == plain.stdout
    assert agent.stderr == plain.stderr


def test_program_runs_with_room_on_the_frame_stack(workdir: Path) -> None:
    """The door's own frames below the program do not make its calls churn memory.

    Calls at every depth up to 400 frames: under plain python (3.11+) those whose
    frame begins a 16 KiB frame-stack chunk map and page-fault a fresh one each
    time; the agent runs the program where none of them does.
    """
    write_script(workdir, "deep.py", CHURN_SOURCE + "\nprint(page_faults_of_deep_calls())\n")
    plain, agent = _plain_and_agent(["deep.py"], workdir)
    assert plain.returncode == agent.returncode == 0, agent.stderr
    assert int(plain.stdout) > 1000
    assert int(agent.stdout) < 100


def test_missing_script_is_a_usage_error(workdir: Path) -> None:
    """`python -m autologagent nope.py`: status 2 and one stderr line naming the file."""
    result = run_python(["-m", "autologagent", "nope.py"], cwd=workdir, env=_agent_env())
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert "nope.py" in lines[0]
    assert not (workdir / "autologruns").exists()


def test_no_arguments_prints_usage_with_status_2(workdir: Path) -> None:
    """`python -m autologagent` alone: status 2 and the usage text."""
    result = run_python(["-m", "autologagent"], cwd=workdir, env=_agent_env())
    assert result.returncode == 2
    assert "usage" in (result.stdout + result.stderr).lower()
    assert "Traceback" not in result.stderr


def test_unknown_agent_option_is_a_usage_error(workdir: Path) -> None:
    """`--bogus x prog.py`: status 2, the option named, the script not run."""
    write_script(workdir, "prog.py", "print('script ran')\n")
    result = run_python(
        ["-m", "autologagent", "--bogus", "x", "prog.py"], cwd=workdir, env=_agent_env()
    )
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert "--bogus" in lines[0]


# --- door 2: AUTOLOG=1 ---------------------------------------------------------------


def test_autolog_env_records_a_fit(workdir: Path) -> None:
    """`AUTOLOG=1 python fit.py`: one FINISHED run with every param as str(value) and the tags."""
    write_script(workdir, "fit.py", FIT)
    result = run_python(["fit.py"], cwd=workdir, env=_agent_env(AUTOLOG="1"), check=True)
    printed = json.loads(result.stdout)
    assert printed["params"]["C"] == "1.0"
    runs = list_runs(workdir)
    assert len(runs) == 1
    run = show_run(workdir, runs[0]["run_id"])
    assert run["status"] == "FINISHED"
    assert run["experiment"] == "Default"
    assert run["parent_run_id"] is None
    assert run["params"] == printed["params"]
    assert run["tags"]["estimator_name"] == "LogisticRegression"
    assert run["tags"]["estimator_class"] == "sklearn.linear_model._logistic.LogisticRegression"
    assert run["tags"]["autolog.integration"] == "sklearn"


@pytest.mark.parametrize("autolog", ["0", None], ids=["AUTOLOG=0", "unset"])
def test_agent_stays_out_without_autolog(workdir: Path, autolog: str | None) -> None:
    """With AUTOLOG=0 or unset, a fit leaves no store and autologagent is never imported."""
    write_script(workdir, "fit.py", FIT)
    env = clean_env() if autolog is None else clean_env(AUTOLOG=autolog)
    result = run_python(["fit.py"], cwd=workdir, env=env, check=True)
    assert json.loads(result.stdout)["agent_loaded"] is False
    assert result.stderr == ""
    assert not (workdir / "autologruns").exists()


# --- door 3: the sitecustomize folder ---------------------------------------------------


def _sitecustomize_folder(cwd: Path) -> Path:
    result = run_python(["-m", "autologagent", "sitecustomize"], cwd=cwd, check=True)
    lines = result.stdout.splitlines()
    assert len(lines) == 1, result.stdout
    folder = Path(lines[0])
    assert folder.is_absolute()
    assert (folder / "sitecustomize.py").is_file()
    return folder


def test_sitecustomize_folder_activates_the_agent(workdir: Path) -> None:
    """`PYTHONPATH=$(python -m autologagent sitecustomize) python fit.py` records the fit."""
    folder = _sitecustomize_folder(workdir)
    write_script(workdir, "fit.py", FIT)
    run_python(["fit.py"], cwd=workdir, env=_agent_env(PYTHONPATH=str(folder)), check=True)
    runs = list_runs(workdir)
    assert [run["name"] for run in runs] == ["LogisticRegression"]
    assert runs[0]["status"] == "FINISHED"


def test_sitecustomize_chains_to_the_users_own(workdir: Path) -> None:
    """A user sitecustomize.py later on PYTHONPATH still runs, and the fit is still recorded."""
    folder = _sitecustomize_folder(workdir)
    write_script(
        workdir,
        "user_site/sitecustomize.py",
        """\
        import os
        print("user sitecustomize ran")
        os.environ["USER_SITECUSTOMIZE_VAR"] = "set by user"
        """,
    )
    write_script(
        workdir, "fit.py", FIT + "import os\nprint(os.environ['USER_SITECUSTOMIZE_VAR'])\n"
    )
    pythonpath = os.pathsep.join([str(folder), str(workdir / "user_site")])
    result = run_python(["fit.py"], cwd=workdir, env=_agent_env(PYTHONPATH=pythonpath), check=True)
    lines = result.stdout.splitlines()
    assert lines[0] == "user sitecustomize ran"
    assert lines[-1] == "set by user"
    assert "Error in sitecustomize" not in result.stderr
    runs = list_runs(workdir)
    assert [run["name"] for run in runs] == ["LogisticRegression"]


# --- child processes ------------------------------------------------------------------


@pytest.fixture(scope="module")
def parent_and_child(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict]]:
    """`python -m autologagent parent.py`, where parent.py runs `python child.py` (a fit)."""
    folder = tmp_path_factory.mktemp("children")
    write_script(
        folder,
        "parent.py",
        """\
        import subprocess
        import sys
        subprocess.run([sys.executable, "child.py"], check=True)
        print("parent done")
        """,
    )
    write_script(folder, "child.py", FIT)
    result = run_python(["-m", "autologagent", "parent.py"], cwd=folder, env=_agent_env())
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "parent done"
    assert json.loads(result.stdout.splitlines()[0])["agent_loaded"] is True
    return folder, list_runs(folder)


def test_child_process_inherits_activation(parent_and_child: tuple[Path, list[dict]]) -> None:
    """The child's fit is recorded as a child run; no stray top-level run appears."""
    _, runs = parent_and_child
    fits = [run for run in runs if run["name"] == "LogisticRegression"]
    assert len(fits) == 1
    child = fits[0]
    assert child["status"] == "FINISHED"
    assert child["parent_run_id"] is not None
    top_level = [run for run in runs if run["parent_run_id"] is None]
    assert len(top_level) <= 1
    if top_level:
        assert child["parent_run_id"] == top_level[0]["run_id"]
        assert top_level[0]["status"] == "FINISHED"
    assert len(runs) == len(fits) + len(top_level)


def test_root_run_is_named_after_the_parent_script(
    parent_and_child: tuple[Path, list[dict]],
) -> None:
    """The run the child nests under is the parent program's: named parent.py, not child.py."""
    _, runs = parent_and_child
    top_level = [run for run in runs if run["parent_run_id"] is None]
    if top_level:
        assert top_level[0]["name"] == "parent.py"


# --- the console script ---------------------------------------------------------------


def _console_script() -> Path:
    script = Path(PYTHON).parent / "autologagent"
    assert script.is_file(), f"no console script next to {PYTHON}"
    return script


def test_console_script_prints_its_version(workdir: Path) -> None:
    """`autologagent --version` (next to the interpreter) exits 0 and prints the version."""
    result = subprocess.run(
        [str(_console_script()), "--version"],
        cwd=workdir,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    from autologagent import __version__

    assert __version__ in result.stdout


def test_console_script_runs_a_script_like_python(workdir: Path) -> None:
    """`autologagent probe.py a` looks to the script exactly like `python probe.py a`."""
    write_script(workdir, "probe.py", PROBE)
    plain = run_python(["probe.py", "a"], cwd=workdir)
    agent = subprocess.run(
        [str(_console_script()), "probe.py", "a"],
        cwd=workdir,
        env=_agent_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert _probe_output(agent) == _probe_output(plain)


# --- the model itself is untouched -----------------------------------------------------------

PICKLE = """\
import hashlib
import pickle
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier

X, y = make_classification(n_samples=100, random_state=0)
clf = RandomForestClassifier(n_estimators=5, random_state=0).fit(X, y)
print(hashlib.sha256(pickle.dumps(clf)).hexdigest())
print(clf.predict(X).tolist())
"""


def test_fitted_model_pickles_identically(workdir: Path) -> None:
    """The same forest pickles to the same bytes and predicts the same with the agent on."""
    write_script(workdir, "forest.py", PICKLE)
    plain, agent = _plain_and_agent(["forest.py"], workdir)
    assert plain.returncode == 0, plain.stderr
    assert agent.returncode == 0, agent.stderr
    assert agent.stdout == plain.stdout
    assert [run["name"] for run in list_runs(workdir)] == ["RandomForestClassifier"]
