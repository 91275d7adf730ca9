"""``pip install .`` and ``pip install -e .`` both give the three doors.

Each case builds a fresh virtual environment, installs the project into it the
way a user would (dependencies left out to keep it fast: the doors and the
manual API need none of them), and uses it only through its executables.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, clean_env


def _venv(tmp_path: Path, editable: bool) -> Path:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    target = ["-e", str(REPO)] if editable else [str(REPO)]
    subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-deps", *target],
        check=True,
        capture_output=True,
        cwd=tmp_path,
    )
    return venv


@pytest.mark.parametrize("editable", [False, True], ids=["pip-install", "pip-install-e"])
def test_install_gives_every_door(tmp_path: Path, editable: bool) -> None:
    venv = _venv(tmp_path, editable)
    python = str(venv / "bin" / "python")
    work = tmp_path / "work"
    work.mkdir()

    def run(args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            args, cwd=work, env=clean_env(**env), capture_output=True, text=True, check=True
        )

    assert run([python, "-m", "autologagent", "--version"]).stdout.startswith("autologagent ")
    assert run([str(venv / "bin" / "autologagent"), "--version"]).stdout.startswith("autologagent ")

    # AUTOLOG=1: the .pth activates the agent in a plain interpreter.
    probe = "import sys; print('autologagent._bootstrap' in sys.modules)"
    assert run([python, "-c", probe], AUTOLOG="1").stdout == "True\n"
    assert run([python, "-c", probe]).stdout == "False\n"

    # The manual API records into ./autologruns.
    run([python, "-c", "import autologagent; autologagent.log_metric('x', 1.5)"], AUTOLOG="1")
    shown = json.loads(run([python, "-m", "autologagent", "runs", "show", "last", "--json"]).stdout)
    assert shown["metrics"] == {"x": 1.5}
    assert shown["status"] == "FINISHED"

    # The container door: a folder with sitecustomize.py that activates the agent.
    folder = run([python, "-m", "autologagent", "sitecustomize"]).stdout.strip()
    assert os.path.isfile(os.path.join(folder, "sitecustomize.py"))
    assert run([python, "-c", probe], PYTHONPATH=folder).stdout == "True\n"
