"""What the UI tests share: one store filled once per session, a UI server, a browser.

The store is filled by real processes: the founding document's seed workload
(a random forest under ``python -m autologagent``) and two small PyTorch-style
loops that log their losses, params and artifacts through the agent.
The first test module to ask fills it; the next finds the marker and reuses it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from conftest import EXAMPLES, PYTHON, clean_env, run_python, write_script

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
# Where CI keeps what the tests leave for people to look at (git-ignored).
TEST_OUTPUT = Path(__file__).resolve().parent.parent / "test-output" / "ui"

# A PyTorch-style training loop, without torch's seconds of import: params as an
# optimizer's, a loss per step, an accuracy per epoch, a long "grad_norm" series with
# one spike, and artifacts of every kind the UI previews.
LOOP = """
import json, math, struct, sys, zlib
import autologagent

lr = float(sys.argv[1])
autologagent.log_params({"lr": lr, "optimizer_name": "SGD", "batch_size": 32, "epochs": 3})
step = 0
for epoch in range(3):
    for batch in range(8):
        loss = math.exp(-lr * step) + 0.01 * (batch % 3)
        autologagent.log_metric("train_loss", loss, step=step)
        step += 1
    autologagent.log_metric("train_accuracy", 1 - math.exp(-lr * step), step=epoch)
for i in range(SPIKE_POINTS):
    spike = 50.0 if i == SPIKE_AT else 0.0
    autologagent.log_metric("grad_norm", 1.0 + (i % 7) * 0.01 + spike, step=i)
open("notes.txt", "w").write("lr=%s\\n" % lr)
open("table.csv", "w").write("epoch,accuracy\\n0,0.5\\n1,0.7\\n")
open("config.json", "w").write(json.dumps({"lr": lr, "layers": [8, 16, 2]}))
open("report.html", "w").write("<h1>Report</h1><p id=made>lr %s</p>" % lr)


def png(width, height):
    # a gradient, as a PNG written with zlib alone
    pixel = lambda x, y: (x * 255 // width, y * 255 // height, 160)
    rows = b"".join(
        b"\\x00" + bytes(v for x in range(width) for v in pixel(x, y)) for y in range(height)
    )
    def chunk(kind, data):
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    image = chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
    return b"\\x89PNG\\r\\n\\x1a\\n" + image


PNG = png(160, 90)
open("sample.png", "wb").write(PNG)
for name in ("notes.txt", "table.csv", "report.html", "sample.png"):
    autologagent.log_artifact(name)
autologagent.log_artifact("config.json", "configs")
"""
SPIKE_POINTS = 20_000
SPIKE_AT = 12_345


def fill_store(base: Path) -> dict[str, Any]:
    """A store with the seed run and two training loops (lr 0.1 and 0.05); made once."""
    folder = base / "ui_store"
    marker = folder / "filled.json"
    if marker.exists():
        return json.loads(marker.read_text())
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    store = folder / "autologruns"
    env = clean_env(
        AUTOLOG_TRACKING_URI=str(store),
        AUTOLOG_TESTING="1",
        AUTOLOG_SYSTEM_METRICS_INTERVAL="1",
    )
    source = LOOP.replace("SPIKE_POINTS", str(SPIKE_POINTS)).replace("SPIKE_AT", str(SPIKE_AT))
    script = write_script(folder, "train_loop.py", source)
    for lr in ("0.1", "0.05"):  # each loop writes its artifacts in a folder of its own
        (folder / lr).mkdir()
    loops = [
        subprocess.Popen(
            [PYTHON, "-m", "autologagent", str(script), lr],
            cwd=folder / lr,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for lr in ("0.1", "0.05")
    ]
    run_python(
        ["-m", "autologagent", str(EXAMPLES / "seed_example.py")], cwd=folder, env=env, check=True
    )
    for loop in loops:
        out, err = loop.communicate(timeout=180)
        assert loop.returncode == 0, f"training loop failed:\n{out}\n{err}"
    runs = json.loads(
        run_python(
            ["-m", "autologagent", "runs", "list", "--json", "--uri", str(store)],
            cwd=folder,
            check=True,
        ).stdout
    )
    by_name: dict[str, list[str]] = {}
    for run in runs:
        by_name.setdefault(run["name"], []).append(run["run_id"])
    info = {"store": str(store), "runs": runs, "by_name": by_name}
    marker.write_text(json.dumps(info))
    return info


class UiProcess:
    """``python -m autologagent ui --port 0`` in a real process; its URL read from stdout."""

    def __init__(self, store: str, *extra: str) -> None:
        self.process = subprocess.Popen(
            [PYTHON, "-m", "autologagent", "ui", "--uri", store, "--port", "0", *extra],
            env=clean_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        self.first_lines: list[str] = []
        deadline = time.monotonic() + 30
        self.url = ""
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                break
            self.first_lines.append(line)
            found = re.search(r"(http://\S+/)", line)
            if found:
                self.url = found.group(1)
                break
        if not self.url:
            self.stop()
            raise AssertionError(f"the UI did not start: {self.first_lines} {self.stderr}")

    def get(self, path: str) -> tuple[int, dict[str, str], bytes]:
        request = urllib.request.Request(self.url + path.lstrip("/"))
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as error:
            with error:
                return error.code, dict(error.headers), error.read()

    def json(self, path: str, status: int = 200) -> Any:
        code, _, body = self.get(path)
        assert code == status, f"GET {path}: {code} {body[:300]!r}"
        return json.loads(body)

    def stop(self) -> tuple[str, str]:
        """Ctrl-C, as a user stops it; returns (stdout, stderr)."""
        import signal

        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        out, err = self.process.communicate(timeout=30)
        self.stderr = err
        return out, err


def chrome_driver(user_data_dir: str) -> Any:
    """Debian's chromium, headless, through Debian's chromedriver (selenium-manager never runs)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1400,1000",
        f"--user-data-dir={user_data_dir}",
    ):
        options.add_argument(flag)
    os.environ.setdefault("SE_AVOID_STATS", "true")
    return webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)


def fresh_profile() -> str:
    return tempfile.mkdtemp(prefix="autolog-chromium-")
