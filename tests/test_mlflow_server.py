"""The team store: runs logged to a real ``mlflow server``, read back with MLflow's client.

One server for the whole module (it takes about 15 s to answer ``/health``): a
SQLite backend and proxied artifacts in a temporary folder, on 127.0.0.1, one
worker, no job runner, MLflow's basic-auth app (so that wrong credentials are
really refused), stopped by its PID. What the server got is read through
MLflow's own client (``mlflow.get_run``, ``get_metric_history``,
``list_artifacts``) and compared with the embedded store's record of the same
script. The server is also stopped in the middle of a run and started again,
and a program starts while it is down.
"""

from __future__ import annotations

import json
import math
import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import (
    EXAMPLES,
    PYTHON,
    WORKLOADS,
    clean_env,
    cli,
    own_artifacts,
    own_metrics,
    own_tags,
    run_python,
    show_run,
    write_script,
)

# MLflow's client and its dependencies emit deprecation warnings of their own.
pytestmark = pytest.mark.filterwarnings("ignore")

ADMIN, PASSWORD = "admin", "not-a-real-password-1234"
SERVER_TAGS = ("mlflow.runName", "mlflow.parentRunId", "autolog.run_id", "autolog.parent_run_id")
SEED = WORKLOADS / "seed_example.py" if WORKLOADS.exists() else EXAMPLES / "seed_example.py"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Server:
    """A real ``mlflow server`` process group, started and stopped by its PID."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = _free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        config = folder / "auth.ini"
        config.write_text(
            "[mlflow]\n"
            "default_permission = EDIT\n"
            f"database_uri = sqlite:///{folder / 'auth.db'}\n"
            f"admin_username = {ADMIN}\n"
            f"admin_password = {PASSWORD}\n"
            "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
            "auth_cache_ttl_seconds = 600\n"
        )
        self.env = dict(
            os.environ,
            MLFLOW_AUTH_CONFIG_PATH=str(config),
            MLFLOW_FLASK_SERVER_SECRET_KEY="tests-only",
            MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false",
        )

    def start(self) -> None:
        mlflow_cli = str(Path(PYTHON).parent / "mlflow")
        log = open(self.folder / "server.log", "ab")  # noqa: SIM115 (the server's own stdout)
        self.process = subprocess.Popen(
            [
                mlflow_cli,
                "server",
                "--app-name",
                "basic-auth",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--workers",
                "1",
                "--backend-store-uri",
                f"sqlite:///{self.folder / 'mlflow.db'}",
                "--artifacts-destination",
                str(self.folder / "artifacts"),
            ],  # fmt: skip
            cwd=self.folder,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its workers share its process group
        )
        log.close()
        deadline = time.monotonic() + 150
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError((self.folder / "server.log").read_text()[-3000:])
            try:
                with urllib.request.urlopen(f"{self.uri}/health", timeout=2) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                time.sleep(0.3)
        raise RuntimeError("mlflow server did not answer /health in 150 s")

    def stop(self) -> None:
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        except ProcessLookupError:
            pass
        self.process = None


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = Server(tmp_path_factory.mktemp("mlflow-server"))
    running.start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def client(server: Server, monkeypatch: pytest.MonkeyPatch) -> Any:
    """MLflow's own client, logged in."""
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", ADMIN)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", PASSWORD)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server.uri)
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=server.uri)


def _server_env(server: Server, spool: Path, **extra: str) -> dict[str, str]:
    settings = {
        "AUTOLOG_TRACKING_URI": server.uri,
        "AUTOLOG_SPOOL_DIR": str(spool),
        "AUTOLOG_TESTING": "1",
        "MLFLOW_TRACKING_USERNAME": ADMIN,
        "MLFLOW_TRACKING_PASSWORD": PASSWORD,
    }
    return clean_env(**{**settings, **extra})


def _run_by_agent_id(client: Any, agent_run_id: str) -> Any:
    found = client.search_runs(
        [e.experiment_id for e in client.search_experiments()],
        filter_string=f"tags.`autolog.run_id` = '{agent_run_id}'",
    )
    assert len(found) == 1, f"{len(found)} server runs for agent run {agent_run_id}"
    return found[0]


def _artifacts(client: Any, run_id: str, path: str | None = None) -> list[str]:
    files: list[str] = []
    for entry in client.list_artifacts(run_id, path):
        if entry.is_dir:
            files.extend(_artifacts(client, run_id, entry.path))
        else:
            files.append(entry.path)
    return sorted(files)


def _history(client: Any, run_id: str, key: str) -> list[tuple[int, float]]:
    points = client.get_metric_history(run_id, key)
    return [(p.step, p.value) for p in sorted(points, key=lambda p: (p.step, p.timestamp))]


def _local_history(cwd: Path, key: str, run: str = "last") -> list[tuple[int, float]]:
    return [(p["step"], p["value"]) for p in cli(cwd, "runs", "history", run, key)]


def _same_number(a: Any, b: Any) -> bool:
    a, b = float(a), float(b)
    return (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=1e-9)


def test_seed_workload_on_the_server_matches_the_embedded_store(
    server: Server, client: Any, tmp_path: Path
) -> None:
    """The seed script, once into SQLite and once to the server: the same run, read by MLflow."""
    local, remote = tmp_path / "local", tmp_path / "remote"
    local.mkdir()
    remote.mkdir()
    embedded = run_python(
        ["-m", "autologagent", str(SEED)], cwd=local, env=clean_env(AUTOLOG_TESTING="1"), check=True
    )
    sent = run_python(
        ["-m", "autologagent", str(SEED)],
        cwd=remote,
        env=_server_env(server, tmp_path / "spool"),
        check=True,
    )
    assert sent.stdout == embedded.stdout
    assert "autologagent" not in sent.stderr
    expected = show_run(local)

    import mlflow

    server_run = mlflow.get_run(_server_run_of_last(client))
    assert server_run.info.status == "FINISHED"
    assert server_run.info.run_name == expected["name"] == "RandomForestClassifier"
    assert server_run.data.params == expected["params"]
    assert set(own_metrics({"metrics": server_run.data.metrics})) == set(own_metrics(expected))
    for key, value in own_metrics(expected).items():
        assert _same_number(server_run.data.metrics[key], value), key
    tags = {k: v for k, v in server_run.data.tags.items() if k not in SERVER_TAGS}
    assert own_tags({"tags": tags}) == own_tags(expected)
    # MLflow's system tags, where its UI looks for them.
    assert server_run.data.tags["mlflow.source.name"].endswith("seed_example.py")
    assert server_run.data.tags["mlflow.user"] == expected["tags"]["mlflow.user"]
    assert server_run.data.tags["mlflow.runName"] == expected["name"]
    artifacts = _artifacts(client, server_run.info.run_id)
    assert own_artifacts({"artifacts": artifacts}) == own_artifacts(expected)
    assert "model/model.pkl" in artifacts
    inputs = server_run.inputs.dataset_inputs
    assert sorted(i.dataset.digest for i in inputs) == sorted(d["digest"] for d in _inputs(local))
    # The CLI reads the server as it reads the embedded store.
    env = _server_env(server, tmp_path / "spool")
    shown = cli(remote, "runs", "show", "last", "--uri", server.uri, env=env)
    assert shown["run_id"] == server_run.info.run_id
    assert shown["params"] == expected["params"]
    assert sorted(shown["artifacts"]) == artifacts
    # load_model from another machine's point of view (no staged copy): downloaded.
    elsewhere = dict(env, AUTOLOG_SPOOL_DIR=str(tmp_path / "elsewhere"))
    loaded = run_python(
        ["-c", f"import autologagent; print(autologagent.load_model({server_run.info.run_id!r}))"],
        cwd=remote,
        env=elsewhere,
        check=True,
    )
    assert loaded.stdout.startswith("RandomForestClassifier(")


def _server_run_of_last(client: Any) -> str:
    runs = client.search_runs(
        [e.experiment_id for e in client.search_experiments()], order_by=["start_time DESC"]
    )
    return str(runs[0].info.run_id)


def _inputs(cwd: Path) -> list[dict[str, Any]]:
    result = run_python(["-m", "autologagent", "runs", "show", "last"], cwd=cwd, check=True)
    lines = result.stdout.split("datasets (", 1)[1].splitlines()[1:]
    return [{"digest": line.rsplit("digest ", 1)[1]} for line in lines if " digest " in line]


LOOP = """
import sys
import autologagent

autologagent.log_params({"lr": 0.01, "epochs": 3, "optimizer": "sgd"})
autologagent.set_tag("team", "vision")
step = 0
for epoch in range(3):
    with autologagent.start_run(run_name=f"epoch-{epoch}", nested=True):
        autologagent.log_metric("epoch_seconds", 1.5 + epoch, step=epoch)
    for batch in range(400):
        autologagent.log_metrics({"loss": 1.0 / (step + 1), "lr": 0.01 * 0.99**step}, step=step)
        step += 1
autologagent.log_metric("val_loss", float("nan"), step=step)
print("trained", step)
"""


def test_a_training_loop_on_the_server_matches_the_embedded_store(
    server: Server, client: Any, tmp_path: Path
) -> None:
    """Every point of a PyTorch-style loop, child runs under their parent, params and tags."""
    local, remote = tmp_path / "local", tmp_path / "remote"
    for folder in (local, remote):
        write_script(folder, "train.py", LOOP)
    run_python(["-m", "autologagent", "train.py"], cwd=local, env=clean_env(AUTOLOG_TESTING="1"),
               check=True)  # fmt: skip
    env = _server_env(server, tmp_path / "spool", AUTOLOG_SYSTEM_METRICS="false")
    result = run_python(["-m", "autologagent", "train.py"], cwd=remote, env=env, check=True)
    assert result.stderr == ""
    parent = client.get_run(_server_run_of_name(client, "train.py"))
    assert parent.data.params == {"lr": "0.01", "epochs": "3", "optimizer": "sgd"}
    assert parent.data.tags["team"] == "vision"
    for key in ("loss", "lr"):
        remote_points = _history(client, parent.info.run_id, key)
        assert len(remote_points) == 1200
        assert [s for s, _ in remote_points] == list(range(1200))
        assert remote_points == _local_history(local, key, run=_local_process_run(local))
    (nan_point,) = client.get_metric_history(parent.info.run_id, "val_loss")
    assert math.isnan(nan_point.value)
    children = client.search_runs(
        [parent.info.experiment_id],
        filter_string=f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'",
    )
    assert sorted(run.info.run_name for run in children) == ["epoch-0", "epoch-1", "epoch-2"]
    assert all(run.info.status == "FINISHED" for run in children)
    listed = cli(remote, "runs", "list", "--uri", server.uri, env=env)
    mine = {run["run_id"]: run for run in listed}
    assert mine[parent.info.run_id]["name"] == "train.py"
    assert {mine[child.info.run_id]["parent_run_id"] for child in children} == {parent.info.run_id}
    # runs history --uri http:// reads the same points back.
    points = cli(remote, "runs", "history", parent.info.run_id, "loss", "--uri", server.uri,
                 env=env)  # fmt: skip
    assert [(p["step"], p["value"]) for p in points] == _history(client, parent.info.run_id, "loss")


def _server_run_of_name(client: Any, name: str) -> str:
    runs = client.search_runs(
        [e.experiment_id for e in client.search_experiments()],
        filter_string=f"attributes.run_name = '{name}'",
        order_by=["start_time DESC"],
    )
    return str(runs[0].info.run_id)


def _local_process_run(cwd: Path) -> str:
    runs = cli(cwd, "runs", "list")
    return str(next(run["run_id"] for run in runs if run["name"] == "train.py"))


POOL = """
import multiprocessing
import autologagent

def work(k):
    for step in range(50):
        autologagent.log_metric(f"worker{k}", float(step), step=step)
    return k

if __name__ == "__main__":
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        print(pool.map(work, range(3)))
    autologagent.log_metric("root", 1.0)
"""


def test_pool_workers_log_into_the_root_run_once(
    server: Server, client: Any, tmp_path: Path
) -> None:
    """Workers that log before the root made its run make it once between them, not twice."""
    write_script(tmp_path, "pool.py", POOL)
    env = _server_env(server, tmp_path / "spool", AUTOLOG_SYSTEM_METRICS="false")
    run_python(["-m", "autologagent", "pool.py"], cwd=tmp_path, env=env, check=True)
    runs = client.search_runs(
        [e.experiment_id for e in client.search_experiments()],
        filter_string="attributes.run_name = 'pool.py'",
    )
    assert len(runs) == 1
    (run,) = runs
    assert run.info.status == "FINISHED"
    assert set(run.data.metrics) == {"worker0", "worker1", "worker2", "root"}
    assert all(len(_history(client, run.info.run_id, f"worker{k}")) == 50 for k in range(3))


STEADY = """
import os, sys, time
import autologagent

stop = sys.argv[1]
step = 0
while not os.path.exists(stop):
    autologagent.log_metric("loss", 1.0 / (step + 1), step=step)
    step += 1
    time.sleep(0.002)
print(step)
"""


def test_server_down_mid_run_and_at_start_loses_nothing(
    server: Server, client: Any, tmp_path: Path
) -> None:
    """Stopped mid-run and started again: every point arrives, in order, once. A program
    started while it is down warns, spools, completes; ``sync`` sends its run later."""
    write_script(tmp_path, "steady.py", STEADY)
    write_script(tmp_path, "early.py", LOOP)
    spool = tmp_path / "spool"
    env = _server_env(server, spool, AUTOLOG_SYSTEM_METRICS="false")
    stop_file = tmp_path / "stop"
    steady = subprocess.Popen(
        [PYTHON, "-m", "autologagent", "steady.py", str(stop_file)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        run_id = _wait_for_points(client, "steady.py")
        before = len(client.get_metric_history(run_id, "loss"))
        server.stop()
        time.sleep(1.5)  # the writer meets the closed port and spools
        early = run_python(["-m", "autologagent", "early.py"], cwd=tmp_path, env=env)
        assert early.returncode == 0
        assert early.stdout == "trained 1200\n"
        warnings = early.stderr.splitlines()
        assert "cannot be reached" in warnings[0]
        assert "sync --uri" in warnings[-1] and str(spool) in warnings[-1]
        assert len(warnings) == 2, early.stderr
        server.start()
        _wait_for_replay(client, run_id, before)
    finally:
        stop_file.write_text("")
        out, err = steady.communicate(timeout=60)
    logged = int(out.strip())
    assert "cannot be reached" in err and "answers again" in err, err
    assert [s for s, _ in _history(client, run_id, "loss")] == list(range(logged))
    # The program that started while the server was down: sent by a later sync.
    synced = run_python(["-m", "autologagent", "sync"], cwd=tmp_path, env=env, check=True)
    assert "sent" in synced.stdout and " 0 operation" not in synced.stdout
    parent = _server_run_of_name(client, "early.py")
    assert len(_history(client, parent, "loss")) == 1200
    assert list(spool.glob("*/*.jsonl")) == []
    again = run_python(["-m", "autologagent", "sync"], cwd=tmp_path, env=env, check=True)
    assert "sent 0 operation(s) from 0 spool file(s) and 0 artifact file(s)" in again.stdout


def _wait_for_replay(client: Any, run_id: str, before: int) -> None:
    """The running program replays its spool once the server is back (within its backoff)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if len(client.get_metric_history(run_id, "loss")) > before + 500:
            return
        time.sleep(0.5)
    raise AssertionError("the running program did not replay its spool")


def _wait_for_points(client: Any, name: str) -> str:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            run_id = _server_run_of_name(client, name)
            if client.get_metric_history(run_id, "loss"):
                return run_id
        except IndexError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"no points of {name} reached the server")


def test_wrong_credentials_are_one_clear_warning_and_the_program_completes(
    server: Server, tmp_path: Path
) -> None:
    write_script(tmp_path, "train.py", LOOP)
    secret = "wrong-password-s3cr3t"
    spool = tmp_path / "spool"
    env = _server_env(server, spool, MLFLOW_TRACKING_PASSWORD=secret)
    plain = run_python(["train.py"], cwd=tmp_path, env=clean_env(), check=True)
    result = run_python(["-m", "autologagent", "train.py"], cwd=tmp_path, env=env)
    assert result.returncode == 0
    assert result.stdout == plain.stdout
    (line,) = result.stderr.splitlines()
    assert "refused the credentials (HTTP 401)" in line
    assert "MLFLOW_TRACKING_PASSWORD" in line and "sync --uri" in line
    assert secret not in result.stderr
    spooled = list(spool.glob("*/*.jsonl"))
    assert spooled and all(secret not in path.read_text() for path in spooled)


class _RefusingProxy:
    """A token-checking proxy of the kind teams put in front of MLflow: it refuses every
    request with MLflow's JSON 401, and keeps the Authorization headers it saw."""

    def __init__(self, tls: tuple[str, str] | None = None) -> None:
        import http.server
        import ssl
        import threading

        seen: list[str] = []
        self.seen = seen

        class Handler(http.server.BaseHTTPRequestHandler):
            def _refuse(self) -> None:
                seen.append(self.headers.get("Authorization", ""))
                body = b'{"error_code": "UNAUTHENTICATED", "message": "bad token"}'
                self.send_response(401)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = _refuse  # noqa: N815

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        scheme = "http"
        if tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
            scheme = "https"
        self.uri = f"{scheme}://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _self_signed_certificate(folder: Path) -> tuple[str, str]:
    """A certificate for 127.0.0.1 and its key, made with ``cryptography`` (MLflow needs it)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(cert_path), str(key_path)


def _token_env(uri: str, tmp_path: Path, token: str, **extra: str) -> dict[str, str]:
    return clean_env(
        AUTOLOG_TRACKING_URI=uri,
        AUTOLOG_SPOOL_DIR=str(tmp_path / "spool"),
        AUTOLOG_TESTING="1",
        MLFLOW_TRACKING_TOKEN=token,
        **extra,
    )


def test_a_wrong_token_at_a_token_checking_proxy_is_one_clear_warning(tmp_path: Path) -> None:
    """MLFLOW_TRACKING_TOKEN goes as a bearer token; a refusal is one warning, the program
    completes, and the token appears nowhere."""
    token = "tok-s3cr3t-value"
    write_script(tmp_path, "train.py", LOOP)
    proxy = _RefusingProxy()
    try:
        result = run_python(
            ["-m", "autologagent", "train.py"],
            cwd=tmp_path,
            env=_token_env(proxy.uri, tmp_path, token),
        )
    finally:
        proxy.close()
    assert result.returncode == 0
    assert result.stdout == "trained 1200\n"
    (line,) = result.stderr.splitlines()
    assert "refused the credentials (HTTP 401)" in line and "MLFLOW_TRACKING_TOKEN" in line
    assert proxy.seen and set(proxy.seen) == {f"Bearer {token}"}
    assert token not in result.stderr
    assert all(token not in path.read_text() for path in (tmp_path / "spool").rglob("*.jsonl"))


def test_tls_certificates_are_verified_unless_told_otherwise(tmp_path: Path) -> None:
    """https:// with a certificate nobody vouches for: the token is never sent. With the
    certificate named in MLFLOW_TRACKING_SERVER_CERT_PATH, the request goes through."""
    token = "tok-s3cr3t-value"
    write_script(tmp_path, "train.py", LOOP)
    cert, key = _self_signed_certificate(tmp_path)
    proxy = _RefusingProxy(tls=(cert, key))
    try:
        untrusted = run_python(
            ["-m", "autologagent", "train.py"],
            cwd=tmp_path,
            env=_token_env(proxy.uri, tmp_path, token),
        )
        assert proxy.seen == []
        trusted = run_python(
            ["-m", "autologagent", "train.py"],
            cwd=tmp_path,
            env=_token_env(proxy.uri, tmp_path, token, MLFLOW_TRACKING_SERVER_CERT_PATH=cert),
        )
    finally:
        proxy.close()
    assert untrusted.returncode == 0 and untrusted.stdout == "trained 1200\n"
    assert "CERTIFICATE_VERIFY_FAILED" in untrusted.stderr.splitlines()[0]
    assert trusted.returncode == 0
    (line,) = trusted.stderr.splitlines()
    assert "refused the credentials (HTTP 401)" in line
    assert set(proxy.seen) == {f"Bearer {token}"}


EXPORTED = """
import autologagent
with autologagent.start_run(run_name="outer"):
    autologagent.log_param("depth", 4)
    for step in range(1500):
        autologagent.log_metric("loss", 1.0 / (step + 1), step=step)
    with open("notes.txt", "w") as handle:
        handle.write("exported")
    autologagent.log_artifact("notes.txt", "docs")
    with autologagent.start_run(run_name="inner", nested=True):
        autologagent.log_metric("score", 0.5)
"""


def test_export_copies_runs_once_however_often_it_runs(
    server: Server, client: Any, tmp_path: Path
) -> None:
    write_script(tmp_path, "fit.py", EXPORTED)
    run_python(["fit.py"], cwd=tmp_path, env=clean_env(AUTOLOG_TESTING="1"), check=True)
    local_runs = cli(tmp_path, "runs", "list")
    outer_id = next(run["run_id"] for run in local_runs if run["name"] == "outer")
    env = clean_env(
        AUTOLOG_SPOOL_DIR=str(tmp_path / "spool"),
        MLFLOW_TRACKING_USERNAME=ADMIN,
        MLFLOW_TRACKING_PASSWORD=PASSWORD,
    )
    for _ in range(2):
        result = run_python(
            ["-m", "autologagent", "export", "--to", server.uri], cwd=tmp_path, env=env, check=True
        )
        assert f"exported {len(local_runs)} run(s)" in result.stdout
        assert f"{len(local_runs)}/{len(local_runs)} runs" in result.stderr
    outer = _run_by_agent_id(client, outer_id)
    inner = _run_by_agent_id(client, next(r["run_id"] for r in local_runs if r["name"] == "inner"))
    assert inner.data.tags["mlflow.parentRunId"] == outer.info.run_id
    assert outer.info.status == "FINISHED" and outer.data.params == {"depth": "4"}
    assert _history(client, outer.info.run_id, "loss") == _local_history(tmp_path, "loss", outer_id)
    assert "docs/notes.txt" in _artifacts(client, outer.info.run_id)
    local = json.loads(
        run_python(["-m", "autologagent", "runs", "show", outer_id, "--json"], cwd=tmp_path).stdout
    )
    assert outer.info.start_time == local["start_time"]
    assert outer.info.end_time == local["end_time"]


def test_a_bad_server_uri_is_one_line_and_a_down_server_one_error(tmp_path: Path) -> None:
    bad = run_python(["-m", "autologagent", "sync", "--uri", "http://:99"], cwd=tmp_path)
    assert bad.returncode == 2 and len(bad.stderr.splitlines()) == 1
    assert "http(s)://host" in bad.stderr
    down = run_python(
        ["-m", "autologagent", "runs", "list", "--uri", f"http://127.0.0.1:{_free_port()}"],
        cwd=tmp_path,
        env=clean_env(AUTOLOG_SPOOL_DIR=str(tmp_path / "spool")),
    )
    assert down.returncode == 1
    (line,) = down.stderr.splitlines()
    assert "did not answer" in line
    # Something else answering HTTP there (a plain 404 page) is named as such.
    import http.server
    import threading

    other = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    threading.Thread(target=other.serve_forever, daemon=True).start()
    try:
        uri = f"http://127.0.0.1:{other.server_address[1]}"
        wrong = run_python(["-m", "autologagent", "runs", "list", "--uri", uri], cwd=tmp_path)
    finally:
        other.shutdown()
        other.server_close()
    assert wrong.returncode == 1
    (line,) = wrong.stderr.splitlines()
    assert "does not answer as an MLflow tracking server" in line


def test_the_agent_never_imports_mlflow(server: Server, tmp_path: Path) -> None:
    write_script(
        tmp_path,
        "probe.py",
        """
        import sys
        import autologagent
        autologagent.log_metric("x", 1.0)
        autologagent.flush()
        print(sorted(m for m in sys.modules if m.split(".")[0] in ("mlflow", "requests")))
        """,
    )
    env = _server_env(server, tmp_path / "spool")
    result = run_python(["probe.py"], cwd=tmp_path, env=env, check=True)
    assert result.stdout == "[]\n"
