"""A local ``mlflow server`` for the ``server`` case: started once, stopped at exit.

SQLite backend and proxied artifacts in a temporary folder, on 127.0.0.1, two
workers, no job runner; started in its own session and stopped through its
process group, by PID. Standard library only, like the rest of the harness.
"""

from __future__ import annotations

import atexit
import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path


class MlflowServer:
    """One server process group and its URI."""

    def __init__(self, mlflow_python: str, folder: Path, workers: int = 2) -> None:
        self.folder = folder
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = int(probe.getsockname()[1])
        self.uri = f"http://127.0.0.1:{self.port}"
        self.argv = [
            str(Path(mlflow_python).parent / "mlflow"), "server",
            "--host", "127.0.0.1", "--port", str(self.port), "--workers", str(workers),
            "--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}",
            "--artifacts-destination", str(folder / "artifacts"),
        ]  # fmt: skip
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 180.0) -> float:
        """Start it; return the seconds until ``/health`` answered."""
        env = dict(os.environ, MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false")
        env = {k: v for k, v in env.items() if not k.startswith("AUTOLOG")}
        log = open(self.folder / "server.log", "ab")  # noqa: SIM115 (the server's own output)
        started = time.perf_counter()
        self.process = subprocess.Popen(
            self.argv,
            cwd=self.folder,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        atexit.register(self.stop)
        while time.perf_counter() - started < timeout_s:
            if self.process.poll() is not None:
                tail = (self.folder / "server.log").read_text(errors="replace")[-500:]
                raise RuntimeError(f"mlflow server exited: {tail}")
            try:
                with urllib.request.urlopen(f"{self.uri}/health", timeout=2) as answer:
                    if answer.status == 200:
                        return time.perf_counter() - started
            except OSError:
                time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"mlflow server did not answer /health in {timeout_s:.0f} s")

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
