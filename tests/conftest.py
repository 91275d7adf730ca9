"""Shared helpers: every activation test starts real ``python`` processes.

The interpreter is the one running pytest, from a virtual environment where the
project was installed with ``pip install .`` (``.ci/run`` does it), so the doors
(``python -m autologagent``, ``AUTOLOG=1`` through the ``.pth``, the
sitecustomize folder) are exercised exactly as a user gets them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

PYTHON = sys.executable
REPO = Path(__file__).resolve().parent.parent
WORKLOADS = REPO.parent / "shared" / "workloads"
EXAMPLES = REPO / "examples"


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without any AUTOLOG* variable, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOLOG")}
    env.pop("PYTHONPATH", None)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.update(extra)
    return env


def run_python(
    args: list[str],
    cwd: Path,
    env: dict[str, str] | None = None,
    timeout: float = 180,
    check: bool = False,
    **kwargs: Any,
) -> subprocess.CompletedProcess[str]:
    """Run ``python ARGS`` in ``cwd``; the environment defaults to a clean one."""
    result = subprocess.run(
        [PYTHON, *args],
        cwd=cwd,
        env=clean_env() if env is None else env,
        capture_output=True,
        text=True,
        timeout=timeout,
        **kwargs,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"python {' '.join(args)} exited {result.returncode}\n"
            f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
        )
    return result


def write_script(folder: Path, name: str, source: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(source))
    return path


def cli(cwd: Path, *args: str, env: dict[str, str] | None = None) -> Any:
    """Run ``python -m autologagent ARGS --json`` and return the parsed JSON."""
    result = run_python(["-m", "autologagent", *args, "--json"], cwd=cwd, env=env, check=True)
    return json.loads(result.stdout)


def list_runs(cwd: Path, uri: str | None = None) -> list[dict[str, Any]]:
    extra = ["--uri", uri] if uri else []
    return cli(cwd, "runs", "list", *extra)


def show_run(cwd: Path, run: str = "last", uri: str | None = None) -> dict[str, Any]:
    extra = ["--uri", uri] if uri else []
    return cli(cwd, "runs", "show", run, *extra)


# What every run records about its context (README, "Run context"): tests that
# compare a run's own records exactly leave these out.
CONTEXT_ARTIFACTS = frozenset({"requirements.txt", "git_diff.patch"})
CONTEXT_TAG_PREFIXES = (
    "mlflow.source.",
    "mlflow.user",
    "mlflow.gitRepoURL",
    "autolog.command",
    "autolog.cwd",
    "autolog.host",
    "autolog.pid",
    "autolog.process",
    "autolog.heartbeat",
    "autolog.python_",
    "autolog.platform",
    "autolog.env.",
    "autolog.source.",
    "autolog.version.",
    "autolog.git.",
    "autolog.exit_status",
)


def own_metrics(run: dict[str, Any]) -> dict[str, Any]:
    """The run's metrics without the system metrics (``system/...``)."""
    return {key: value for key, value in run["metrics"].items() if not key.startswith("system/")}


def own_artifacts(run: dict[str, Any]) -> list[str]:
    """The run's artifacts without ``requirements.txt`` and ``git_diff.patch``."""
    return [path for path in run["artifacts"] if path not in CONTEXT_ARTIFACTS]


def own_tags(run: dict[str, Any]) -> dict[str, str]:
    """The run's tags without its source, machine, git and package tags."""
    return {
        key: value for key, value in run["tags"].items() if not key.startswith(CONTEXT_TAG_PREFIXES)
    }


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """An empty working folder; the default store lands in ``workdir/autologruns``."""
    folder = tmp_path / "work"
    folder.mkdir()
    return folder


# Calls at every depth from 0 to 400 frames, 200 calls at each: a call whose frame
# begins one of CPython's 16 KiB frame-stack chunks maps and page-faults a fresh
# chunk each time (3.11 and later). Minor page faults count them.
CHURN_SOURCE = """
import resource


def leaf():
    return None


def descend(depth):
    if depth:
        return descend(depth - 1)
    for _ in range(200):
        leaf()


def page_faults_of_deep_calls():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for depth in range(400):
        descend(depth)
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
"""
