"""The web UI's JSON endpoints, pages and refusals, over a store filled by real runs.

One ``python -m autologagent ui`` process serves the whole module (see _ui_support).
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from _ui_support import SPIKE_AT, SPIKE_POINTS, UiProcess, fill_store
from conftest import PYTHON, clean_env, run_python


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return fill_store(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="module")
def ui(store: dict[str, Any]) -> Iterator[UiProcess]:
    server = UiProcess(store["store"])
    yield server
    server.stop()


def _seed(store: dict[str, Any]) -> str:
    return store["by_name"]["RandomForestClassifier"][0]


def _loop(ui: UiProcess, lr: str) -> str:
    rows = ui.json("/api/runs?filter=" + quote(f"params.lr = {lr}"))["runs"]
    assert len(rows) == 1
    return rows[0]["run_id"]


def test_runs_table_lists_every_run_with_its_columns(ui: UiProcess, store: dict) -> None:
    table = ui.json("/api/runs")
    names = sorted(row["name"] for row in table["runs"])
    assert names == ["RandomForestClassifier", "train_loop.py", "train_loop.py"]
    assert table["total"] == 3
    assert {"max_depth", "n_estimators", "lr", "optimizer_name"} <= set(table["param_keys"])
    assert {"training_score", "grad_norm", "train_accuracy"} <= set(table["metric_keys"])
    starts = [row["start_time"] for row in table["runs"]]
    assert starts == sorted(starts, reverse=True)  # newest first
    seed = next(row for row in table["runs"] if row["name"] == "RandomForestClassifier")
    assert seed["status"] == "FINISHED"
    assert seed["params"]["max_depth"] == "10"
    assert 0 < seed["metrics"]["training_score"] <= 1
    assert seed["source"].endswith("seed_example.py")
    assert seed["duration"] == seed["end_time"] - seed["start_time"]


def test_only_the_chosen_columns_travel(ui: UiProcess) -> None:
    chosen = ui.json("/api/runs?columns=params.lr,metrics.train_loss,metrics.nope")
    assert chosen["columns"] == ["params.lr", "metrics.train_loss", "metrics.nope"]
    loops = [row for row in chosen["runs"] if row["name"] == "train_loop.py"]
    assert all(set(row["params"]) == {"lr"} for row in loops)
    assert all(set(row["metrics"]) == {"train_loss"} for row in loops)
    default = ui.json("/api/runs?columns=default")
    assert default["columns"][:2] == ["params.batch_size", "params.bootstrap"]
    assert not any(column.startswith("metrics.system/") for column in default["columns"])
    assert len(default["columns"]) == 12


@pytest.mark.parametrize(
    ("expression", "names"),
    [
        ("metrics.training_score > 0.5 and params.max_depth = 10", ["RandomForestClassifier"]),
        ("params.max_depth = 9", []),
        ("params.lr = 0.1 or params.lr = '0.05'", ["train_loop.py", "train_loop.py"]),
        ("(params.lr >= 0.1 or name = 'x') and status = 'FINISHED'", ["train_loop.py"]),
        ("metrics.grad_norm < 100", ["train_loop.py", "train_loop.py"]),
        ("tags.`mlflow.source.name` LIKE '%seed%'", ["RandomForestClassifier"]),
        ("name ILIKE 'TRAIN%'", ["train_loop.py", "train_loop.py"]),
        ("train_loop", ["train_loop.py", "train_loop.py"]),
        ("randomforest", ["RandomForestClassifier"]),
    ],
)
def test_filter(ui: UiProcess, expression: str, names: list[str]) -> None:
    table = ui.json("/api/runs?filter=" + quote(expression))
    assert sorted(row["name"] for row in table["runs"]) == names


@pytest.mark.parametrize(
    "expression", ["metrics.x >", "params.lr ~ 3", "weights.x = 1", "metrics.a = 1 and", "(a = 1"]
)
def test_bad_filter_is_a_400_naming_what_is_accepted(ui: UiProcess, expression: str) -> None:
    error = ui.json("/api/runs?filter=" + quote(expression), status=400)["error"]
    assert error.startswith("bad filter") and "expected" in error and "\n" not in error


def test_sort_by_a_param_numerically_missing_values_last(ui: UiProcess) -> None:
    up = ui.json("/api/runs?sort=params.lr&order=asc")["runs"]
    assert [row["params"].get("lr") for row in up] == ["0.05", "0.1", None]
    down = ui.json("/api/runs?sort=params.lr&order=desc")["runs"]
    assert [row["params"].get("lr") for row in down] == ["0.1", "0.05", None]
    by_name = ui.json("/api/runs?sort=name&order=asc")["runs"]
    assert by_name[0]["name"] == "RandomForestClassifier"
    assert "cannot sort by" in ui.json("/api/runs?sort=bogus", status=400)["error"]


def test_run_detail(ui: UiProcess, store: dict) -> None:
    run = ui.json(f"/api/runs/{_seed(store)}")
    assert run["params"]["n_estimators"] == "200"
    assert run["tags"]["estimator_name"] == "RandomForestClassifier"
    assert "training_score" in run["metrics"]
    assert all(key.startswith("system/") for key in run["system_metrics"])
    assert run["system_metrics"] and "cpu" in run["system_groups"]
    paths = {artifact["path"]: artifact for artifact in run["artifacts"]}
    assert "requirements.txt" in paths and paths["requirements.txt"]["kind"] == "text"
    assert run["children"] == [] and run["parent_run_id"] is None
    assert ui.json("/api/runs/nosuchrun", status=404)["error"] == "no run 'nosuchrun' in the store"


def test_metric_is_downsampled_keeping_each_buckets_min_and_max(ui: UiProcess) -> None:
    run_id = _loop(ui, "0.1")
    series = ui.json(f"/api/runs/{run_id}/metric?key=grad_norm&buckets=100")
    assert series["total_points"] == SPIKE_POINTS and series["downsampled"]
    assert len(series["values"]) <= 200
    assert series["steps"] == sorted(series["steps"])
    assert max(series["values"]) == pytest.approx(51.0 + (SPIKE_AT % 7) * 0.01)
    assert series["steps"][series["values"].index(max(series["values"]))] == SPIKE_AT
    assert min(series["values"]) == 1.0
    full = ui.json(f"/api/runs/{run_id}/metric?key=train_accuracy")
    assert full["steps"] == [0, 1, 2] and not full["downsampled"]
    assert len(full["timestamps"]) == 3
    assert ui.json(f"/api/runs/{run_id}/metric?key=nope", status=404)["error"].endswith("'nope'")
    assert (
        "buckets" in ui.json(f"/api/runs/{run_id}/metric?key=loss&buckets=x", status=400)["error"]
    )


def test_artifacts_are_served_previewed_and_downloadable(ui: UiProcess) -> None:
    run_id = _loop(ui, "0.05")
    listing = ui.json(f"/api/runs/{run_id}/artifacts")["artifacts"]
    kinds = {item["path"]: item["kind"] for item in listing}
    assert kinds["sample.png"] == "image" and kinds["report.html"] == "html"
    assert kinds["table.csv"] == "csv" and kinds["configs/config.json"] == "json"
    base = f"/api/runs/{run_id}/artifact?path="
    status, headers, body = ui.get(base + "notes.txt")
    assert (status, body) == (200, b"lr=0.05\n")
    assert headers["Content-Type"].startswith("text/plain")
    status, headers, body = ui.get(base + "configs/config.json")
    assert json.loads(body)["layers"] == [8, 16, 2]
    status, headers, body = ui.get(base + "sample.png")
    assert headers["Content-Type"] == "image/png" and body.startswith(b"\x89PNG")
    status, headers, _ = ui.get(base + "report.html")
    assert headers["Content-Security-Policy"].startswith("sandbox")
    status, headers, _ = ui.get(base + "report.html&download=1")
    assert headers["Content-Disposition"] == "attachment; filename*=UTF-8''report.html"
    assert headers["Content-Type"] == "application/octet-stream"


@pytest.mark.parametrize(
    "path",
    [
        "../../runs.db",
        "configs/../notes.txt",
        "%2e%2e/%2e%2e/runs.db",
        "..%2f..%2fruns.db",
        "/etc/passwd",
        "%2fetc%2fpasswd",
        "..\\..\\runs.db",
        "./notes.txt",
        "",
    ],
)
def test_artifact_paths_out_of_the_run_folder_are_refused(ui: UiProcess, path: str) -> None:
    run_id = _loop(ui, "0.05")
    status, _, body = ui.get(f"/api/runs/{run_id}/artifact?path={path}")
    assert status == 400, body
    assert "refused" in json.loads(body)["error"]


def test_a_link_out_of_the_artifact_folder_is_not_followed(ui: UiProcess, store: dict) -> None:
    run_id = _loop(ui, "0.05")
    link = Path(store["store"]) / "artifacts" / run_id / "escape.db"
    link.symlink_to(Path(store["store"]) / "runs.db")
    try:
        status, _, _ = ui.get(f"/api/runs/{run_id}/artifact?path=escape.db")
        assert status == 404
        listed = ui.json(f"/api/runs/{run_id}/artifacts")["artifacts"]
        assert "escape.db" not in {item["path"] for item in listed}
    finally:
        link.unlink()
    assert ui.get(f"/api/runs/{run_id}/artifact?path=missing.txt")[0] == 404
    assert ui.get("/api/runs/nosuchrun/artifact?path=notes.txt")[0] == 404


def test_compare(ui: UiProcess, store: dict) -> None:
    fast, slow = _loop(ui, "0.1"), _loop(ui, "0.05")
    both = ui.json(f"/api/compare?runs={fast},{slow}")
    assert [run["run_id"] for run in both["runs"]] == [fast, slow]
    assert "lr" in both["differing_params"]
    assert "optimizer_name" in both["param_keys"]
    assert "optimizer_name" not in both["differing_params"]
    three = ui.json(f"/api/compare?runs={fast},{slow},{_seed(store)}")
    assert "max_depth" in three["differing_params"]  # present in one run only
    assert "2 to 10" in ui.json(f"/api/compare?runs={fast}", status=400)["error"]
    assert (
        "2 to 10"
        in ui.json(f"/api/compare?runs={','.join(f'r{i}' for i in range(11))}", 400)["error"]
    )
    assert ui.json(f"/api/compare?runs={fast},nosuchrun", status=404)


def _fingerprint(store: dict) -> dict[str, str]:
    folder = Path(store["store"])
    found = {}
    for path in sorted(folder.glob("runs.db*")):
        stat = path.stat()
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        # a WAL reader marks its place in the -shm index (its mtime moves), never the data
        stamp = "" if path.name.endswith("-shm") else f" {stat.st_mtime_ns}"
        found[path.name] = f"{digest} {stat.st_size}{stamp}"
    return found


def test_the_ui_never_writes(ui: UiProcess, store: dict) -> None:
    before = _fingerprint(store)
    run_id = _loop(ui, "0.1")
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        import urllib.error
        import urllib.request

        request = urllib.request.Request(ui.url + "api/runs", data=b"{}", method=method)
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=10)
        assert refused.value.code == 405
        refused.value.close()
    for path in (
        "/",
        "/api/runs",
        f"/api/runs/{run_id}",
        f"/api/runs/{run_id}/metric?key=train_loss",
    ):
        assert ui.get(path)[0] == 200
    assert _fingerprint(store) == before


def test_pages_and_static_files_come_from_the_package(ui: UiProcess) -> None:
    import plotly

    for page in ("/", "/run/abc", "/compare?runs=a,b"):
        status, headers, body = ui.get(page)
        assert status == 200 and headers["Content-Type"].startswith("text/html")
        assert b"http://" not in body and b"https://" not in body  # nothing from the internet
        assert "default-src 'self'" in headers["Content-Security-Policy"]
    status, _, body = ui.get("/static/plotly.min.js")
    bundled = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    assert status == 200 and body == bundled.read_bytes()
    for missing in ("/static/../_ui_server.py", "/static/nope.js", "/etc/passwd", "/api/nope"):
        assert ui.get(missing)[0] == 404
    assert ui.get("/static/")[0] == 404  # no directory listing


def test_non_loopback_host_warns_and_ctrl_c_stops_cleanly(store: dict) -> None:
    server = UiProcess(store["store"], "--host", "0.0.0.0")
    assert server.get("/api/experiments")[0] == 200
    out, err = server.stop()
    assert server.process.returncode == 0
    assert "warning: serving on 0.0.0.0, not 127.0.0.1" in err
    assert out.strip().endswith("stopped")


def test_no_store_yet_is_an_empty_table(tmp_path: Path) -> None:
    server = UiProcess(str(tmp_path / "later"))
    try:
        assert "no store at" in server.first_lines[0]
        assert server.json("/api/runs")["runs"] == []
        assert server.json("/api/experiments")["experiments"] == []
    finally:
        server.process.send_signal(signal.SIGTERM)
        server.process.communicate(timeout=30)
    assert server.process.returncode == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--port", "abc"], "argument --port: invalid int value: 'abc'"),
        (["--port", "70000"], "--port 70000: expected 0 to 65535"),
        (["--uri", "http://example.com:5000"], "the UI reads a local store"),
        (["--bogus"], "unrecognized arguments: --bogus"),
    ],
)
def test_bad_arguments_are_one_line_errors(tmp_path: Path, args: list[str], message: str) -> None:
    result = run_python(["-m", "autologagent", "ui", *args], cwd=tmp_path, timeout=30)
    assert result.returncode == 2
    assert message in result.stderr and result.stderr.count("\n") == 1


def test_busy_port_is_a_clear_error(ui: UiProcess, tmp_path: Path) -> None:
    port = ui.url.rstrip("/").rsplit(":", 1)[1]
    result = subprocess.run(
        [PYTHON, "-m", "autologagent", "ui", "--port", port],
        cwd=tmp_path,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1
    assert f"cannot serve on 127.0.0.1:{port}" in result.stderr
    assert not os.path.exists(tmp_path / "autologruns")  # reading never creates a store


def test_a_run_whose_process_was_killed_reads_killed(tmp_path: Path) -> None:
    """SIGKILL leaves the run RUNNING in the store; the UI, as `runs show`, says KILLED."""
    script = tmp_path / "killed.py"
    script.write_text(
        "import os, signal, autologagent\n"
        "autologagent.log_metric('loss', 1.0, step=0)\n"
        "autologagent.flush()\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    store = tmp_path / "autologruns"
    env = clean_env(AUTOLOG_TRACKING_URI=str(store), AUTOLOG_SYSTEM_METRICS="false")
    killed = run_python(["-m", "autologagent", str(script)], cwd=tmp_path, env=env)
    assert killed.returncode == -signal.SIGKILL
    server = UiProcess(str(store))
    try:
        (row,) = server.json("/api/runs")["runs"]
        assert row["status"] == "KILLED"
        assert [r["run_id"] for r in server.json("/api/runs?filter=status%3D'KILLED'")["runs"]] == [
            row["run_id"]
        ]
        run = server.json(f"/api/runs/{row['run_id']}")
        assert run["status"] == "KILLED" and "autolog.liveness" in run["tags"]
    finally:
        server.stop()
