"""Security: the store is private to its owner, and reading it runs no code from it.

The redaction table (tokens in command lines, URLs and environment values) is
proven by test_redact.py; docs/reliability.md lists it with these.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import stat
from pathlib import Path

from conftest import clean_env, run_python, show_run, write_script

WRITE_AND_REPORT = """
import json, os, stat
import autologagent
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
open("notes.txt", "w").write("notes")
X, y = make_classification(n_samples=60, random_state=0)
with autologagent.start_run(run_name="r"):
    autologagent.log_metric("loss", 0.5)
    autologagent.log_artifact("notes.txt", artifact_path="docs")
    LogisticRegression().fit(X, y)
    autologagent.flush()
    database = os.environ["DATABASE"]
    # The WAL files exist while the store is open: report their modes now.
    print(json.dumps({
        name: stat.S_IMODE(os.stat(database + name).st_mode)
        for name in ("", "-wal", "-shm") if os.path.exists(database + name)
    }))
"""


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _assert_store_private(database: Path, artifacts: Path, modes: dict[str, int]) -> None:
    assert modes == {"": 0o600, "-wal": 0o600, "-shm": 0o600}
    assert _mode(database) == 0o600
    assert _mode(artifacts) == 0o700  # every artifact file sits under it


def test_default_store_is_readable_by_its_owner_only(workdir: Path) -> None:
    """Under umask 022: ./autologruns 0700, runs.db and its WAL files 0600, artifacts 0700."""
    write_script(workdir, "train.py", WRITE_AND_REPORT)
    store = workdir / "autologruns"
    result = run_python(
        ["-c", "import os, runpy; os.umask(0o022); runpy.run_path('train.py')"],
        cwd=workdir,
        env=clean_env(AUTOLOG="1", AUTOLOG_TESTING="1", DATABASE=str(store / "runs.db")),
        check=True,
    )
    assert _mode(store) == 0o700
    _assert_store_private(store / "runs.db", store / "artifacts", json.loads(result.stdout))
    assert any(path.name == "model.pkl" for path in (store / "artifacts").rglob("*"))


def test_sqlite_uri_in_a_shared_folder_keeps_the_database_private(workdir: Path) -> None:
    """``sqlite:///shared/x.db`` in an existing folder: the folder is left alone, the store not."""
    write_script(workdir, "train.py", WRITE_AND_REPORT)
    shared = workdir / "shared"
    shared.mkdir(mode=0o755)
    shared.chmod(0o755)
    database = shared / "runs.db"
    result = run_python(
        ["-c", "import os, runpy; os.umask(0o022); runpy.run_path('train.py')"],
        cwd=workdir,
        env=clean_env(
            AUTOLOG="1",
            AUTOLOG_TESTING="1",
            AUTOLOG_TRACKING_URI=f"sqlite:///{database}",
            DATABASE=str(database),
        ),
        check=True,
    )
    assert _mode(shared) == 0o755
    _assert_store_private(database, shared / "artifacts", json.loads(result.stdout))


class _Payload:
    """Unpickling this runs ``open(marker, "w")``: proof that code ran."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (open, (self.marker, "w"))


def test_listing_and_showing_runs_runs_no_code_from_the_store(workdir: Path) -> None:
    """A store holding a booby-trapped model and hostile strings: list/show/history run none of it.

    ``load_model`` is the one explicit exception (it unpickles; its docstring
    and the README say to load models only from a store you trust).
    """
    write_script(
        workdir,
        "train.py",
        """
        import autologagent
        from sklearn.datasets import make_classification
        from sklearn.linear_model import LogisticRegression
        X, y = make_classification(n_samples=60, random_state=0)
        with autologagent.start_run(run_name="$(touch shell-ran)"):
            autologagent.log_param("p", "__import__('os').system('touch eval-ran')")
            autologagent.set_tag("t", "{0.__class__.__mro__}")
            autologagent.log_metric("loss", 0.5)
            LogisticRegression().fit(X, y)
        """,
    )
    run_python(["train.py"], cwd=workdir, env=clean_env(AUTOLOG="1"), check=True)
    run = show_run(workdir)
    model_dir = workdir / "autologruns" / "artifacts" / run["run_id"] / "model"
    # Someone with write access to the store swaps in a hostile pickle and its digest.
    marker = workdir / "pickle-ran"
    payload = pickle.dumps(_Payload(str(marker)))
    (model_dir / "model.pkl").write_bytes(payload)
    metadata = json.loads((model_dir / "MLmodel").read_text())
    metadata["flavors"]["autologagent"]["sha256"] = hashlib.sha256(payload).hexdigest()
    (model_dir / "MLmodel").write_text(json.dumps(metadata))
    (model_dir / "sitecustomize.py").write_text("open('site-ran', 'w')\n")

    for args in (
        ["runs", "list"],
        ["runs", "list", "--json"],
        ["runs", "show", "last"],
        ["runs", "show", "last", "--json"],
        ["runs", "history", "last", "loss"],
        ["runs", "history", "last", "loss", "--json"],
    ):
        run_python(["-m", "autologagent", *args], cwd=workdir, check=True)
    shown = show_run(workdir)
    assert shown["name"] == "$(touch shell-ran)"
    assert shown["params"]["p"] == "__import__('os').system('touch eval-ran')"
    assert "model/model.pkl" in shown["artifacts"]
    assert sorted(os.listdir(workdir)) == ["autologruns", "train.py"]

    # The documented exception: load_model unpickles, so the trap fires.
    result = run_python(["-c", "import autologagent; autologagent.load_model('last')"], cwd=workdir)
    assert marker.exists(), result.stderr
