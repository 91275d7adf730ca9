"""Child process of the ``log_metric`` case: a tight loop of metric calls, timed inside.

Run as ``python _child_log_metric.py {agent|mlflow} N STORE``. Prints one JSON object:

- ``enqueue_rate``: calls per second over the loop alone (what the training loop pays);
- ``e2e_rate``: points per second from the loop's start until ``flush()`` returns,
  i.e. until every point is committed to SQLite;
- ``rows_in_sqlite``: points found afterwards in the store, so that a flush that
  returns early shows up as missing points rather than as a fast figure.

One untimed call (and flush) comes first, so that creating the run, the store and the
writer is not charged to the loop: the targets are about the steady state. MLflow logs
synchronously, so its two rates are the same figure.
The loop is written as a user would write it: ``module.log_metric(...)`` every time.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path


def run_agent(n: int, store: Path) -> dict[str, float]:
    """The agent: enqueue ``n`` points, then ``flush()`` until all are committed."""
    import os

    os.environ["AUTOLOG_TRACKING_URI"] = str(store)
    import autologagent

    autologagent.log_metric("warmup", 0.0, step=0)
    autologagent.flush()
    start = time.perf_counter()
    for i in range(n):
        autologagent.log_metric("loss", float(i), step=i)
    looped = time.perf_counter()
    autologagent.flush()
    flushed = time.perf_counter()
    return {"loop_s": looped - start, "e2e_s": flushed - start}


def run_mlflow(n: int, store: Path) -> dict[str, float]:
    """MLflow: the same loop into ``sqlite:///STORE/mlflow.db`` (synchronous)."""
    import mlflow

    store.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(f"sqlite:///{store / 'mlflow.db'}")
    mlflow.log_metric("warmup", 0.0, step=0)
    start = time.perf_counter()
    for i in range(n):
        mlflow.log_metric("loss", float(i), step=i)
    looped = time.perf_counter()
    mlflow.end_run()
    return {"loop_s": looped - start, "e2e_s": looped - start}


def count_rows(store: Path) -> int | None:
    """Points with key ``loss`` found in the store's SQLite files, by reading the schema.

    The schema belongs to the store's owner, so this recognises shapes rather than
    names: a table with ``key``, ``value`` and ``step`` holds one point per row, and a
    table with ``key`` and ``count`` holds chunks of ``count`` points. The largest
    figure wins (a table of latest values holds one row per key).
    """
    import sqlite3

    best: int | None = None
    for db in sorted(store.rglob("*.db")):
        try:
            con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        except sqlite3.Error:
            continue
        try:
            tables = [
                r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")
            ]
            for table in tables:
                columns = {r[1] for r in con.execute(f'PRAGMA table_info("{table}")')}
                where = " WHERE key = 'loss'" if "key" in columns else ""
                if {"value", "step"} <= columns:
                    query = f'SELECT COUNT(*) FROM "{table}"{where}'
                elif {"key", "count"} <= columns:
                    query = f'SELECT COALESCE(SUM(count), 0) FROM "{table}"{where}'
                else:
                    continue
                count = int(con.execute(query).fetchone()[0])
                best = count if best is None else max(best, count)
        except sqlite3.Error:
            continue
        finally:
            con.close()
    return best


def count_history(store: Path) -> int | None:
    """Points of ``loss`` per the agent's own command line (its contract), or None.

    Slower than reading the tables, so only asked when they do not account for every
    point: then it tells a store the schema reading does not understand from a
    ``flush()`` that returned before the points were stored.
    """
    import subprocess

    argv = [sys.executable, "-m", "autologagent", "runs", "history", "last", "loss"]
    try:
        proc = subprocess.run(
            [*argv, "--json", "--uri", str(store)],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        return len(json.loads(proc.stdout)) if proc.returncode == 0 else None
    except (OSError, subprocess.TimeoutExpired, ValueError, TypeError):
        return None


def main() -> None:
    """Run the loop, then print the JSON report on the last line of stdout."""
    impl, n, store = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
    times = run_agent(n, store) if impl == "agent" else run_mlflow(n, store)
    stored = count_rows(store)
    if impl == "agent" and (stored is None or stored < n):
        from_cli = count_history(store)
        if from_cli is not None:
            stored = from_cli if stored is None else max(stored, from_cli)
    report: dict[str, float | int | None] = {
        "n": n,
        "loop_s": times["loop_s"],
        "e2e_s": times["e2e_s"],
        "enqueue_rate": n / times["loop_s"],
        "e2e_rate": n / times["e2e_s"],
        "rows_in_sqlite": stored,
    }
    sys.stdout.write(json.dumps(report) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
