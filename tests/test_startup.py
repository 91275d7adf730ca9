"""The start-up cost contract: an active agent imports no framework and no heavy
dependency until a run needs it; an inactive one imports nothing; activating twice
is activating once; a framework imported before activation is patched at once.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import clean_env, list_runs, run_python, write_script

# Lists the modules without importing anything first (json would pull in re & co).
MODULES_PROBE = "import sys; print('\\n'.join(sorted(sys.modules)))"

HEAVY = ("numpy", "sklearn", "torch", "psutil", "git", "sqlite3", "_sqlite3", "wrapt")

TINY_FIT = """\
from sklearn.linear_model import LogisticRegression
LogisticRegression().fit([[0.0], [1.0], [0.2], [0.9]], [0, 1, 0, 1])
"""


def _modules(result_stdout: str) -> set[str]:
    return set(result_stdout.split())


def _heavy_loaded(modules: set[str]) -> list[str]:
    return sorted(
        name for name in modules if name.partition(".")[0] in HEAVY or name.startswith("_sqlite")
    )


def _sitecustomize_folder(cwd: Path) -> str:
    result = run_python(["-m", "autologagent", "sitecustomize"], cwd=cwd, check=True)
    return result.stdout.strip()


@pytest.mark.parametrize("door", ["AUTOLOG=1", "sitecustomize", "python -m autologagent"])
def test_active_agent_imports_nothing_heavy_at_start(workdir: Path, door: str) -> None:
    """With the agent on (any door), no framework, numpy, psutil, git, sqlite3 or wrapt loads."""
    env = clean_env(AUTOLOG_TESTING="1")
    if door == "AUTOLOG=1":
        env["AUTOLOG"] = "1"
        args = ["-c", MODULES_PROBE]
    elif door == "sitecustomize":
        env["PYTHONPATH"] = _sitecustomize_folder(workdir)
        args = ["-c", MODULES_PROBE]
    else:
        write_script(workdir, "mods.py", MODULES_PROBE + "\n")
        args = ["-m", "autologagent", "mods.py"]
    result = run_python(args, cwd=workdir, env=env, check=True)
    modules = _modules(result.stdout)
    assert "autologagent._bootstrap" in modules, "the agent did not start"
    assert _heavy_loaded(modules) == []
    assert not (workdir / "autologruns").exists()


def test_active_agent_adds_only_its_own_small_modules(workdir: Path) -> None:
    """Under AUTOLOG=1, the modules beyond plain python's are the agent's own (and atexit)."""
    plain = _modules(run_python(["-c", MODULES_PROBE], cwd=workdir, check=True).stdout)
    active = _modules(
        run_python(
            ["-c", MODULES_PROBE], cwd=workdir, env=clean_env(AUTOLOG="1"), check=True
        ).stdout
    )
    extra = sorted(active - plain)
    foreign = [name for name in extra if name.partition(".")[0] not in ("autologagent", "atexit")]
    assert foreign == [], extra
    for name in ("threading", "typing", "importlib.util", "json"):
        if name not in plain:
            assert name not in active


@pytest.mark.parametrize("autolog", [None, "0", ""], ids=["unset", "0", "empty"])
def test_inactive_agent_is_not_imported(workdir: Path, autolog: str | None) -> None:
    """With AUTOLOG unset, 0 or empty, `autologagent` is not imported at all."""
    env = clean_env() if autolog is None else clean_env(AUTOLOG=autolog)
    result = run_python(["-c", MODULES_PROBE], cwd=workdir, env=env, check=True)
    assert result.stderr == ""
    assert not [name for name in _modules(result.stdout) if name.startswith("autologagent")]


def test_activating_twice_is_activating_once(workdir: Path) -> None:
    """AUTOLOG=1, `python -m autologagent` and autolog() together: one finder, one run per fit."""
    source = (
        "import sys\n"
        "import autologagent\n"
        "autologagent.autolog()\n"
        "autologagent.autolog()\n"
        + TINY_FIT
        + "finders = [type(f).__module__ + '.' + type(f).__name__ for f in sys.meta_path]\n"
        + "print('\\n'.join(finders))\n"
    )
    write_script(workdir, "train.py", source)
    result = run_python(
        ["-m", "autologagent", "train.py"],
        cwd=workdir,
        env=clean_env(AUTOLOG="1", AUTOLOG_TESTING="1"),
        check=True,
    )
    assert result.stderr == ""
    ours = [name for name in result.stdout.split() if name.startswith("autologagent")]
    assert len(ours) == 1, result.stdout
    runs = list_runs(workdir)
    assert [run["name"] for run in runs] == ["LogisticRegression"]
    assert runs[0]["status"] == "FINISHED"


def test_framework_imported_before_activation_is_patched(workdir: Path) -> None:
    """`import sklearn...` first, then autologagent.autolog(): the next fit is still a run."""
    write_script(
        workdir,
        "train.py",
        """\
        import sklearn.linear_model
        import autologagent
        autologagent.autolog()
        sklearn.linear_model.LogisticRegression().fit([[0.0], [1.0], [0.2], [0.9]], [0, 1, 0, 1])
        print("done")
        """,
    )
    result = run_python(["train.py"], cwd=workdir, env=clean_env(AUTOLOG_TESTING="1"), check=True)
    assert result.stdout == "done\n"
    runs = list_runs(workdir)
    assert [run["name"] for run in runs] == ["LogisticRegression"]
    assert runs[0]["status"] == "FINISHED"
