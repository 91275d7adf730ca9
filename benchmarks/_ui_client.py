"""Child of the ``ui`` case: time the runs table and a long chart, as the browser asks for them.

    python _ui_client.py ui STORE BIG_RUN ROUNDS    # through `python -m autologagent ui`
    python _ui_client.py raw STORE BIG_RUN ROUNDS   # the bare SQLite reads the same answers need

``ui`` starts the real UI server process, then times whole HTTP requests (connect,
query, JSON, transfer) from this process: ``/api/runs`` as the table page asks for it
(every run, newest first, the default columns) right after another process committed
to the store (so nothing cached can answer), the same on an unchanged store, the
same with a filter expression and sorted by a metric, and the chart endpoint for the
1,000,000-point series at 1,000 buckets. ``raw`` is the floor under both: the
rows of runs, params, tags and latest metrics fetched with ``sqlite3``, and the
series' chunks read and decoded with numpy, with no sorting, downsampling or JSON.
Prints one JSON object of median seconds (and answer sizes) as its last line.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import statistics
import subprocess
import sys
import time
import urllib.parse
import urllib.request


def _median_s(action, rounds: int, before=None) -> float:
    action()  # warm: the first answer pays for imports and the page cache
    times = []
    for _ in range(rounds):
        if before is not None:
            before()
        began = time.perf_counter()
        action()
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def through_ui(store: str, big_run: str, rounds: int) -> dict[str, float]:
    server = subprocess.Popen(
        [sys.executable, "-m", "autologagent", "ui", "--uri", store, "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = server.stdout.readline() if server.stdout else ""
        found = re.search(r"(http://\S+/)", line)
        if not found:
            raise SystemExit(f"the UI did not start: {line!r}")
        url = found.group(1)
        sizes: dict[str, int] = {}

        def get(path: str, name: str):
            def action() -> None:
                with urllib.request.urlopen(url + path, timeout=60) as response:
                    sizes[name] = len(response.read())

            return action

        query = urllib.parse.quote("metrics.val_accuracy > 0.5 and params.max_depth = 10")
        table = get("api/runs?columns=default", "table")  # as the table page asks
        figures = {
            "table_s": _median_s(table, rounds, before=_writer(store, big_run)),
            "table_unchanged_s": _median_s(table, rounds),
            "table_filtered_s": _median_s(
                get(f"api/runs?filter={query}&sort=metrics.val_accuracy", "filtered"), rounds
            ),
            "chart_s": _median_s(
                get(f"api/runs/{big_run}/metric?key=loss_per_step&buckets=1000", "chart"), rounds
            ),
        }
        figures.update({f"{name}_kib": size / 1024 for name, size in sizes.items()})
        return figures
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=30)


def _writer(store: str, run_id: str):
    """A commit to the store, as a training process makes: the UI must read afresh."""
    from autologagent._config import store_paths
    from autologagent._sqlite_store import SqliteStore
    from autologagent._store import Batch

    database, artifacts = store_paths(store)
    counter = [0]

    def write() -> None:
        counter[0] += 1
        writer = SqliteStore(database, artifacts, create=False)
        writer.write(Batch(tags=[(run_id, "bench.touch", str(counter[0]))]))
        writer.close()

    return write


def raw_reads(store: str, big_run: str, rounds: int) -> dict[str, float]:
    import numpy

    database = os.path.join(store, "runs.db")
    uri = "file:" + urllib.parse.quote(database) + "?mode=ro"

    def table() -> None:
        connection = sqlite3.connect(uri, uri=True)
        connection.execute(
            "SELECT r.run_id, e.name, r.name, r.status, r.start_time, r.end_time, "
            "r.parent_run_id FROM runs r JOIN experiments e USING (experiment_id)"
        ).fetchall()
        connection.execute("SELECT run_id, key, value FROM params").fetchall()
        connection.execute("SELECT run_id, key, value, is_nan FROM latest_metrics").fetchall()
        connection.execute(
            "SELECT run_id, key, value FROM tags WHERE key IN "
            "('mlflow.source.name', 'mlflow.source.git.commit')"
        ).fetchall()
        connection.close()

    def chart() -> None:
        connection = sqlite3.connect(uri, uri=True)
        parts = [
            (numpy.frombuffer(s, "<i8"), numpy.frombuffer(v, "<f8"), numpy.frombuffer(t, "<i8"))
            for s, v, t in connection.execute(
                "SELECT steps, vals, timestamps FROM metric_chunks WHERE run_id = ? AND key = ? "
                "ORDER BY rowid",
                (big_run, "loss_per_step"),
            )
        ]
        numpy.concatenate([p[1] for p in parts])
        connection.close()

    return {"table_s": _median_s(table, rounds), "chart_s": _median_s(chart, rounds)}


if __name__ == "__main__":
    mode, store, big_run, rounds = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    figures = (through_ui if mode == "ui" else raw_reads)(store, big_run, rounds)
    print(json.dumps(figures))
