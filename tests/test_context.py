"""Run context: source, git, packages, system metrics and exit status of every run.

Real processes, a real git repository made in a temporary folder, the real store.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
from conftest import clean_env, cli, list_runs, run_python, show_run, write_script

TOKEN = "ghp_SECRETTOKEN123"
ARG_SECRET = "abc123secret"
REMOTE = f"https://user:{TOKEN}@github.com/o/r.git"

MANUAL = """\
import autologagent
autologagent.log_metric("loss", 0.5)
"""

TINY_FIT = """\
from sklearn.linear_model import LogisticRegression
LogisticRegression().fit([[0.0], [1.0], [0.2], [0.9]], [0, 1, 0, 1])
"""

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@example.com",
    "GIT_CONFIG_NOSYSTEM": "1",
}


def _env(**extra: str) -> dict[str, str]:
    return clean_env(AUTOLOG_TESTING="1", **extra)


def _git(repo: Path, *args: str) -> str:
    result = subprocess.run(
        ["git", *args],
        cwd=repo,
        env={**os.environ, **GIT_ENV, "HOME": str(repo)},
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip()


def _make_repo(folder: Path, script: str) -> Path:
    """A repository with ``train.py`` committed on branch ``main`` and a remote with a token."""
    write_script(folder, "train.py", script)
    _git(folder, "init", "-q", "-b", "main")
    _git(folder, "add", "train.py")
    _git(folder, "commit", "-q", "-m", "first")
    _git(folder, "remote", "add", "origin", REMOTE)
    return folder


def _outside_any_repository(folder: Path) -> bool:
    probe = subprocess.run(
        ["git", "rev-parse", "--show-toplevel"], cwd=folder, capture_output=True, text=True
    )
    return probe.returncode != 0


def _store_bytes(workdir: Path) -> bytes:
    """Every byte of every file in the store (runs.db, its -wal and -shm, artifacts)."""
    files = sorted(path for path in (workdir / "autologruns").rglob("*") if path.is_file())
    assert any(path.name == "runs.db" for path in files)
    return b"".join(path.read_bytes() for path in files)


def _artifact(workdir: Path, run: dict[str, Any], path: str) -> str:
    return (workdir / "autologruns" / "artifacts" / run["run_id"] / path).read_text()


def _git_tags(run: dict[str, Any]) -> dict[str, str]:
    return {
        key: value
        for key, value in run["tags"].items()
        if key.startswith(("mlflow.source.git", "mlflow.gitRepoURL", "autolog.git"))
    }


def _history(workdir: Path, key: str) -> list[dict[str, Any]]:
    return cli(workdir, "runs", "history", "last", key)  # type: ignore[no-any-return]


# --- source and git ------------------------------------------------------------------


def test_run_in_a_repository_records_git_without_credentials(workdir: Path) -> None:
    """Commit, branch, cleaned remote URL, source name; no token anywhere in the store."""
    _make_repo(workdir, MANUAL)
    result = run_python(
        ["-m", "autologagent", "train.py", f"--token={ARG_SECRET}", "--lr", "0.1"],
        cwd=workdir,
        env=_env(),
        check=True,
    )
    assert result.stderr == ""
    run = show_run(workdir)
    tags = run["tags"]
    assert tags["mlflow.source.git.commit"] == _git(workdir, "rev-parse", "HEAD")
    assert tags["mlflow.source.git.branch"] == "main"
    assert tags["mlflow.source.git.repoURL"] == "https://github.com/o/r.git"
    assert tags["mlflow.gitRepoURL"] == "https://github.com/o/r.git"
    assert tags["autolog.git.dirty"] == "false"
    assert "git_diff.patch" not in run["artifacts"]
    assert tags["mlflow.source.name"] == "train.py"  # relative to the repository's root
    assert tags["mlflow.source.type"] == "LOCAL"
    assert tags["autolog.command"].endswith("-m autologagent train.py --token=*** --lr 0.1"), tags[
        "autolog.command"
    ]
    stored = _store_bytes(workdir)
    assert TOKEN.encode() not in stored
    assert ARG_SECRET.encode() not in stored
    assert b"--token=***" in stored


def test_source_and_machine_tags(workdir: Path) -> None:
    """User, host, Python, platform, working directory, module under -m."""
    write_script(workdir, "pkg/__init__.py", "")
    write_script(workdir, "pkg/train.py", MANUAL)
    run_python(["-m", "autologagent", "-m", "pkg.train"], cwd=workdir, env=_env(), check=True)
    tags = show_run(workdir)["tags"]
    import platform

    assert tags["autolog.source.module"] == "pkg.train"
    assert tags["mlflow.source.name"].endswith("pkg/train.py")
    assert tags["autolog.cwd"] == str(workdir)
    assert tags["autolog.host"] == platform.node()
    assert tags["autolog.python_version"] == platform.python_version()
    assert tags["autolog.python_implementation"] == platform.python_implementation()
    assert tags["autolog.platform"] == platform.platform()
    assert tags["mlflow.user"]
    assert tags["autolog.exit_status"] == "0"


def test_dirty_tree_records_the_diff(workdir: Path) -> None:
    """Uncommitted changes: dirty=true and git_diff.patch holding the change."""
    _make_repo(workdir, MANUAL)
    with (workdir / "train.py").open("a") as handle:
        handle.write("UNCOMMITTED_CHANGE = 1\n")
    run_python(["-m", "autologagent", "train.py"], cwd=workdir, env=_env(), check=True)
    run = show_run(workdir)
    assert run["tags"]["autolog.git.dirty"] == "true"
    assert "autolog.git.diff_truncated" not in run["tags"]
    assert "git_diff.patch" in run["artifacts"]
    patch = _artifact(workdir, run, "git_diff.patch")
    assert "+UNCOMMITTED_CHANGE = 1" in patch
    assert TOKEN not in patch


def test_a_huge_diff_is_cut_at_one_megabyte(workdir: Path) -> None:
    _make_repo(workdir, MANUAL)
    (workdir / "data.txt").write_text("x\n")
    _git(workdir, "add", "data.txt")
    _git(workdir, "commit", "-q", "-m", "data")
    (workdir / "data.txt").write_text(("z" * 99 + "\n") * 15_000)  # 1.5 MB of change
    run_python(["-m", "autologagent", "train.py"], cwd=workdir, env=_env(), check=True)
    run = show_run(workdir)
    assert run["tags"]["autolog.git.dirty"] == "true"
    assert run["tags"]["autolog.git.diff_truncated"] == "true"
    patch = workdir / "autologruns" / "artifacts" / run["run_id"] / "git_diff.patch"
    assert patch.stat().st_size == 1_000_000


def test_outside_a_repository_there_are_no_git_tags(workdir: Path) -> None:
    if not _outside_any_repository(workdir):
        pytest.skip("the temporary folder is inside a git repository")
    write_script(workdir, "train.py", MANUAL)
    result = run_python(["-m", "autologagent", "train.py"], cwd=workdir, env=_env(), check=True)
    assert result.stderr == ""
    run = show_run(workdir)
    assert _git_tags(run) == {}
    assert run["tags"]["mlflow.source.name"] == str((workdir / "train.py").resolve())


def test_without_a_git_executable_there_are_no_git_tags(workdir: Path, tmp_path: Path) -> None:
    """A repository, but no `git` on PATH: no git tags, no warning."""
    _make_repo(workdir, MANUAL)
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    env = _env(PATH=str(empty))
    env.pop("GIT_PYTHON_GIT_EXECUTABLE", None)
    result = run_python(["-m", "autologagent", "train.py"], cwd=workdir, env=env, check=True)
    assert result.stderr == ""
    run = show_run(workdir)
    assert _git_tags(run) == {}
    assert run["tags"]["mlflow.source.name"] == "train.py"


# --- packages ------------------------------------------------------------------------


def test_requirements_pin_what_the_program_imported(workdir: Path) -> None:
    """scikit-learn and numpy at their versions; not the agent's own dependencies."""
    write_script(workdir, "train.py", TINY_FIT)
    run_python(["-m", "autologagent", "train.py"], cwd=workdir, env=_env(), check=True)
    run = show_run(workdir)
    assert "requirements.txt" in run["artifacts"]
    lines = _artifact(workdir, run, "requirements.txt").splitlines()
    assert f"scikit-learn=={metadata.version('scikit-learn')}" in lines
    assert f"numpy=={metadata.version('numpy')}" in lines
    names = {line.partition("==")[0].lower() for line in lines}
    for absent in ("torch", "psutil", "gitpython", "gitdb", "smmap", "wrapt", "autologagent"):
        assert absent not in names, lines
    assert run["tags"]["autolog.version.sklearn"] == metadata.version("scikit-learn")
    assert run["tags"]["autolog.version.numpy"] == metadata.version("numpy")
    assert "autolog.version.torch" not in run["tags"]


def test_requirements_keep_an_agent_dependency_the_program_uses(workdir: Path) -> None:
    """A script that imports psutil itself needs it: it is pinned."""
    write_script(workdir, "train.py", "import psutil\n" + MANUAL)
    run_python(["-m", "autologagent", "train.py"], cwd=workdir, env=_env(), check=True)
    lines = _artifact(workdir, show_run(workdir), "requirements.txt").splitlines()
    assert f"psutil=={metadata.version('psutil')}" in lines
    assert not [line for line in lines if line.lower().startswith("gitpython")]


def test_requirements_wait_out_the_program_s_next_seconds_and_runs_share_them(
    workdir: Path,
) -> None:
    """Working out the packages is deferred (nothing waits for it): no requirements
    a second after two fits, then both runs get theirs while the program still runs,
    the same file for the same packages."""
    write_script(
        workdir,
        "train.py",
        TINY_FIT
        + """\
LogisticRegression(C=0.5).fit([[0.0], [1.0], [0.2], [0.9]], [0, 1, 0, 1])
import glob, time
time.sleep(1.0)
print("right after the fits:", len(glob.glob("autologruns/artifacts/*/requirements.txt")))
deadline = time.monotonic() + 30
while len(glob.glob("autologruns/artifacts/*/requirements.txt")) < 2:
    if time.monotonic() > deadline:
        break
    time.sleep(0.2)
print("while the program runs:", len(glob.glob("autologruns/artifacts/*/requirements.txt")))
""",
    )
    result = run_python(["-m", "autologagent", "train.py"], cwd=workdir, env=_env(), check=True)
    assert result.stdout.splitlines() == ["right after the fits: 0", "while the program runs: 2"]
    runs = [show_run(workdir, listed["run_id"]) for listed in list_runs(workdir)]
    texts = {_artifact(workdir, run, "requirements.txt") for run in runs}
    assert len(runs) == 2 and len(texts) == 1
    assert f"scikit-learn=={metadata.version('scikit-learn')}" in texts.pop().splitlines()
    for run in runs:
        assert run["tags"]["autolog.version.sklearn"] == metadata.version("scikit-learn")


# --- system metrics --------------------------------------------------------------------

SAMPLED_RUN = """\
import threading
import time

import autologagent

SAMPLER = "autologagent-system-metrics"


def sampler_running():
    return any(thread.name == SAMPLER for thread in threading.enumerate())


with autologagent.start_run(run_name="sampled"):
    autologagent.log_metric("loss", 0.5)
    time.sleep(3)
    print("during:", sampler_running())
deadline = time.monotonic() + 5  # it lingers a second for a next run, then stops
while sampler_running() and time.monotonic() < deadline:
    time.sleep(0.05)
print("after:", sampler_running())
"""


def test_system_metrics_are_sampled_while_a_run_is_active(workdir: Path) -> None:
    """Interval 1 s, a 3 s run: start, periodic and end samples; the thread stops after it."""
    write_script(workdir, "train.py", SAMPLED_RUN)
    result = run_python(
        ["-m", "autologagent", "train.py"],
        cwd=workdir,
        env=_env(AUTOLOG_SYSTEM_METRICS_INTERVAL="1"),
        check=True,
    )
    assert result.stdout == "during: True\nafter: False\n"
    assert result.stderr == ""
    run = show_run(workdir)
    for key in (
        "system/cpu_utilization_percentage",
        "system/system_memory_usage_megabytes",
        "system/system_memory_usage_percentage",
        "system/disk_usage_percentage",
        "system/disk_usage_megabytes",
        "system/disk_available_megabytes",
        "system/network_receive_megabytes",
        "system/network_transmit_megabytes",
        "system/process_cpu_utilization_percentage",
        "system/process_memory_rss_megabytes",
    ):
        assert key in run["metrics"], sorted(run["metrics"])
    points = _history(workdir, "system/system_memory_usage_megabytes")
    assert len(points) >= 3, points
    assert [point["step"] for point in points] == list(range(len(points)))
    assert all(point["value"] > 0 for point in points)
    rss = _history(workdir, "system/process_memory_rss_megabytes")
    assert len(rss) == len(points)


def test_a_short_run_has_a_start_and_an_end_sample(workdir: Path) -> None:
    """A fit far shorter than the interval still gets two samples."""
    write_script(workdir, "train.py", TINY_FIT)
    run_python(["-m", "autologagent", "train.py"], cwd=workdir, env=_env(), check=True)
    points = _history(workdir, "system/system_memory_usage_megabytes")
    assert [point["step"] for point in points] == [0, 1]


def test_system_metrics_can_be_turned_off(workdir: Path) -> None:
    write_script(workdir, "train.py", SAMPLED_RUN.replace("time.sleep(3)", "time.sleep(0.2)"))
    result = run_python(
        ["-m", "autologagent", "train.py"],
        cwd=workdir,
        env=_env(AUTOLOG_SYSTEM_METRICS="false"),
        check=True,
    )
    assert result.stdout == "during: False\nafter: False\n"
    run = show_run(workdir)
    assert [key for key in run["metrics"] if key.startswith("system/")] == []
    assert run["metrics"] == {"loss": 0.5}
    assert "requirements.txt" in run["artifacts"]  # the rest of the context stays


FAKE_NVML = """\
# A stand-in for nvidia-ml-py: one GPU, 40 % busy, 2 of 8 GB used, 100 of 400 W.
class NVMLError(Exception):
    pass


class _Utilization:
    gpu = 40


class _Memory:
    used = 2_000_000_000
    total = 8_000_000_000


def nvmlInit():
    pass


def nvmlDeviceGetCount():
    return 1


def nvmlDeviceGetHandleByIndex(index):
    return ("gpu", index)


def nvmlDeviceGetUtilizationRates(handle):
    return _Utilization()


def nvmlDeviceGetMemoryInfo(handle):
    return _Memory()


def nvmlDeviceGetPowerUsage(handle):
    return 100_000


def nvmlDeviceGetEnforcedPowerLimit(handle):
    return 400_000
"""


def test_gpu_metrics_come_from_nvml(workdir: Path, tmp_path: Path) -> None:
    """With NVML present (here a stand-in module), each GPU gets MLflow's gpu_<i>_* series."""
    fake = tmp_path / "fake-nvml"
    write_script(fake, "pynvml.py", FAKE_NVML)
    write_script(workdir, "train.py", SAMPLED_RUN.replace("time.sleep(3)", "time.sleep(1.5)"))
    env = _env(AUTOLOG_SYSTEM_METRICS_INTERVAL="0.5", PYTHONPATH=str(fake))
    run_python(["-m", "autologagent", "train.py"], cwd=workdir, env=env, check=True)
    metrics = show_run(workdir)["metrics"]
    assert metrics["system/gpu_0_utilization_percentage"] == 40.0
    assert metrics["system/gpu_0_memory_usage_megabytes"] == 2000.0
    assert metrics["system/gpu_0_memory_usage_percentage"] == 25.0
    assert metrics["system/gpu_0_power_usage_watts"] == 100.0
    assert metrics["system/gpu_0_power_usage_percentage"] == 25.0
    assert len(_history(workdir, "system/gpu_0_utilization_percentage")) >= 2


# --- exit status ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ending", "status", "exit_status"),
    [("", "FINISHED", "0"), ("import sys; sys.exit(3)", "FAILED", "3"), ("1 / 0", "FAILED", "1")],
    ids=["normal", "sys.exit(3)", "exception"],
)
def test_exit_status_of_the_process_run(
    workdir: Path, ending: str, status: str, exit_status: str
) -> None:
    write_script(workdir, "train.py", MANUAL + ending + "\n")
    result = run_python(["-m", "autologagent", "train.py"], cwd=workdir, env=_env())
    assert result.returncode == int(exit_status)
    run = show_run(workdir)
    assert run["status"] == status
    assert run["tags"]["autolog.exit_status"] == exit_status


def test_sigterm_records_exit_status_143(workdir: Path) -> None:
    """Killed by SIGTERM: the process run is KILLED with status 128 + 15, its context kept."""
    write_script(
        workdir,
        "sleeper.py",
        MANUAL + "import sys, time\nprint('ready', flush=True)\ntime.sleep(60)\n",
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "autologagent", "sleeper.py"],
        cwd=workdir,
        env=_env(),
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
    assert run["status"] == "KILLED"
    assert run["tags"]["autolog.exit_status"] == "143"
    assert "requirements.txt" in run["artifacts"]
    assert len(_history(workdir, "system/system_memory_usage_megabytes")) >= 2


def test_training_runs_ended_before_exit_have_no_exit_status(workdir: Path) -> None:
    write_script(workdir, "train.py", TINY_FIT)
    run_python(["-m", "autologagent", "train.py"], cwd=workdir, env=_env(), check=True)
    assert "autolog.exit_status" not in show_run(workdir)["tags"]


# --- workers and cost -------------------------------------------------------------------

POOL = """\
import multiprocessing

from sklearn.linear_model import Ridge

import autologagent


def fit(alpha):
    Ridge(alpha=alpha).fit([[0.0], [1.0], [0.2], [0.9]], [0.0, 1.0, 0.1, 0.8])
    return alpha


if __name__ == "__main__":
    with autologagent.start_run(run_name="parent"):
        with multiprocessing.get_context("fork").Pool(2) as pool:
            print(pool.map(fit, [0.1, 1.0]))
"""


def test_worker_child_runs_get_machine_tags_only(workdir: Path) -> None:
    """Fits in workers: host and Python tags; git, packages and sampling are the parent's."""
    _make_repo(workdir, POOL)
    result = run_python(["train.py"], cwd=workdir, env=_env(AUTOLOG="1"), check=True)
    assert result.stderr == ""
    runs = cli(workdir, "runs", "list")
    parent = next(run for run in runs if run["name"] == "parent")
    children = [run for run in runs if run["parent_run_id"] == parent["run_id"]]
    assert len(children) == 2 and len(runs) == 3, runs
    for child in children:
        shown = show_run(workdir, child["run_id"])
        assert shown["tags"]["autolog.host"]
        assert shown["tags"]["autolog.python_version"]
        assert "mlflow.source.name" not in shown["tags"]
        assert _git_tags(shown) == {}
        assert "requirements.txt" not in shown["artifacts"]
        assert [key for key in shown["metrics"] if key.startswith("system/")] == []
    shown = show_run(workdir, parent["run_id"])
    assert shown["tags"]["mlflow.source.git.commit"] == _git(workdir, "rev-parse", "HEAD")
    assert (
        shown["tags"]["autolog.pid"]
        != show_run(workdir, children[0]["run_id"])["tags"]["autolog.pid"]
    )
    assert "requirements.txt" in shown["artifacts"]
    assert "system/process_count" in shown["metrics"]


HOOK_COST = """\
import json
import time

import autologagent
from autologagent import _context

spent = []
for hook in ("run_started", "run_ending"):
    original = getattr(_context, hook)

    def timed(*args, _original=original):
        start = time.perf_counter()
        try:
            return _original(*args)
        finally:
            spent.append(time.perf_counter() - start)

    setattr(_context, hook, timed)

for index in range(26):
    with autologagent.start_run(run_name=f"r{index}"):
        autologagent.log_metric("loss", 1.0 / (index + 1))
per_run = sorted(spent[2 * i] + spent[2 * i + 1] for i in range(1, 26))
print(json.dumps({"first": spent[0] + spent[1], "median": per_run[12]}))
"""


def test_context_costs_little_per_run_after_the_first(workdir: Path) -> None:
    """Time spent in the context hooks on the calling thread: well under the 50 ms budget."""
    _make_repo(workdir, HOOK_COST)
    result = run_python(["train.py"], cwd=workdir, env=_env(), check=True)
    cost = json.loads(result.stdout)
    assert cost["first"] < 0.5, cost  # generous: a loaded machine; the budget is 50 ms
    assert cost["median"] < 0.01, cost
