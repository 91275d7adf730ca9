"""Worker processes log into the parent's run or as its child runs: never stray top-level runs."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import clean_env, cli, list_runs, own_metrics, run_python, show_run, write_script

START_METHODS = ["fork", "spawn", "forkserver"]

POOL_FITS = """
import multiprocessing
import sys

from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression


def fit(c):
    X, y = make_classification(n_samples=100, random_state=0)
    LogisticRegression(C=c).fit(X, y)
    return c


def main():
    context = multiprocessing.get_context(sys.argv[1])
    with context.Pool(2) as pool:
        print(pool.map(fit, [0.1, 1.0, 10.0]))
"""


def _autolog_env(**extra: str) -> dict[str, str]:
    return clean_env(AUTOLOG="1", AUTOLOG_TESTING="1", **extra)


@pytest.mark.parametrize("method", START_METHODS)
def test_pool_fits_are_children_of_one_root_run(workdir: Path, method: str) -> None:
    """Fits in pool workers become FINISHED child runs of the one top-level (root) run."""
    script = write_script(
        workdir,
        "train.py",
        POOL_FITS
        + """
if __name__ == "__main__":
    main()
""",
    )
    result = run_python([str(script), method], cwd=workdir, env=_autolog_env(), check=True)
    assert result.stdout == "[0.1, 1.0, 10.0]\n"
    assert result.stderr == ""

    runs = list_runs(workdir)
    top_level = [run for run in runs if run["parent_run_id"] is None]
    children = [run for run in runs if run["parent_run_id"] is not None]
    assert len(top_level) == 1, runs
    root = top_level[0]
    assert root["status"] == "FINISHED"
    assert root["end_time"] is not None
    assert len(children) == 3, runs
    for child in children:
        assert child["parent_run_id"] == root["run_id"]
        assert child["name"] == "LogisticRegression"
        assert child["status"] == "FINISHED"
    cs = sorted(float(show_run(workdir, child["run_id"])["params"]["C"]) for child in children)
    assert cs == [0.1, 1.0, 10.0]


@pytest.mark.parametrize("method", START_METHODS)
def test_pool_fits_nest_under_the_users_run(workdir: Path, method: str) -> None:
    """Inside the parent's `with start_run(run_name='parent')`, worker fits are its children."""
    script = write_script(
        workdir,
        "train.py",
        POOL_FITS
        + """
if __name__ == "__main__":
    import autologagent
    with autologagent.start_run(run_name="parent") as run:
        main()
    print(run.info.run_id)
""",
    )
    result = run_python([str(script), method], cwd=workdir, env=_autolog_env(), check=True)
    parent_id = result.stdout.splitlines()[-1]

    runs = list_runs(workdir)
    top_level = [run for run in runs if run["parent_run_id"] is None]
    assert [run["run_id"] for run in top_level] == [parent_id], runs
    assert top_level[0]["name"] == "parent"
    assert top_level[0]["status"] == "FINISHED"
    children = [run for run in runs if run["parent_run_id"] is not None]
    assert len(children) == 3, runs
    for child in children:
        assert child["parent_run_id"] == parent_id
        assert child["status"] == "FINISHED"
        assert child["name"] == "LogisticRegression"


def test_grid_search_with_loky_workers_makes_one_run(workdir: Path) -> None:
    """GridSearchCV(n_jobs=2): its inner fits in loky workers make no runs of their own."""
    script = write_script(
        workdir,
        "search.py",
        """
        from sklearn.datasets import make_classification
        from sklearn.linear_model import LogisticRegression
        from sklearn.model_selection import GridSearchCV

        X, y = make_classification(n_samples=100, random_state=0)
        search = GridSearchCV(LogisticRegression(), {"C": [0.1, 1.0]}, cv=2, n_jobs=2)
        search.fit(X, y)
        print(search.best_params_["C"])
        """,
    )
    run_python([str(script)], cwd=workdir, env=_autolog_env(), check=True)
    everything = list_runs(workdir)
    runs = [run for run in everything if run["parent_run_id"] is None]
    assert [run["name"] for run in runs] == ["GridSearchCV"], everything
    assert runs[0]["status"] == "FINISHED"
    # The only other runs are the search's candidates, recorded by the search's run.
    children = [run for run in everything if run["parent_run_id"] is not None]
    assert {run["parent_run_id"] for run in children} <= {runs[0]["run_id"]}
    assert all(run["name"].startswith("LogisticRegression-candidate-") for run in children)


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_worker_log_metric_goes_to_the_parents_run(workdir: Path, method: str) -> None:
    """A worker's log_metric with no run of its own lands in the parent's active run."""
    script = write_script(
        workdir,
        "train.py",
        """
        import multiprocessing
        import sys

        import autologagent


        def work(index):
            for step in range(3):
                autologagent.log_metric(f"worker_{index}", index + step / 10, step=step)
            return index


        if __name__ == "__main__":
            context = multiprocessing.get_context(sys.argv[1])
            with autologagent.start_run(run_name="parent") as run:
                autologagent.log_metric("parent_metric", 1.0)
                with context.Pool(2) as pool:
                    print(pool.map(work, [0, 1]))
            print(run.info.run_id)
        """,
    )
    result = run_python([str(script), method], cwd=workdir, env=_autolog_env(), check=True)
    parent_id = result.stdout.splitlines()[-1]

    runs = list_runs(workdir)
    assert [run["run_id"] for run in runs] == [parent_id], runs
    run = show_run(workdir, parent_id)
    assert run["status"] == "FINISHED"
    assert own_metrics(run) == {"parent_metric": 1.0, "worker_0": 0.2, "worker_1": 1.2}


def test_root_run_closes_when_no_thread_may_start_at_exit(workdir: Path) -> None:
    """Python 3.12 refuses new threads in atexit: the root run workers made still ends FINISHED."""
    script = write_script(
        workdir,
        "train.py",
        """
        import atexit
        import multiprocessing
        import threading

        import autologagent


        def work(index):
            autologagent.log_metric("loss", float(index), step=index)


        def no_new_threads(self):
            raise RuntimeError("can't create new thread at interpreter shutdown")


        if __name__ == "__main__":
            with multiprocessing.get_context("spawn").Pool(2) as pool:
                pool.map(work, range(4))
            # As Python 3.12 does at shutdown (runs before the agent's own atexit handler).
            atexit.register(setattr, threading.Thread, "start", no_new_threads)
        """,
    )
    result = run_python([str(script)], cwd=workdir, env=clean_env(AUTOLOG="1"), check=True)
    assert "warning" not in result.stderr, result.stderr
    runs = list_runs(workdir)
    assert [(run["name"], run["status"]) for run in runs] == [("train.py", "FINISHED")]
    assert len(cli(workdir, "runs", "history", "last", "loss")) == 4


def test_signals_reach_the_main_thread_not_the_writer(workdir: Path) -> None:
    """The agent's writer thread blocks SIGTERM/SIGINT, so the kernel always hands them to the
    main thread: a main thread asleep in a blocking call (a pool worker waiting for work) sees
    its SIGTERM, as without the agent."""
    script = write_script(
        workdir,
        "probe.py",
        """
        import signal
        import threading

        import autologagent
        from autologagent import _writer

        autologagent.log_metric("x", 1.0)
        _writer.ensure_started()
        writer = next(t for t in threading.enumerate() if t.name == "autologagent-writer")
        for line in open(f"/proc/self/task/{writer.native_id}/status"):
            if line.startswith("SigBlk:"):
                blocked = int(line.split()[1], 16)
        print(all(blocked >> (sig - 1) & 1 for sig in (signal.SIGTERM, signal.SIGINT)))
        """,
    )
    result = run_python([str(script)], cwd=workdir, env=_autolog_env(), check=True)
    assert result.stdout.strip() == "True"
