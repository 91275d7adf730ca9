"""Child process of the ``server`` case: a training loop that logs one point a step.

Run as ``python _server_loop.py {plain|agent|agent-spooling|mlflow} N URI``. Every step does the
same fixed piece of pure-Python work (about 100 µs here, so about 10,000 steps a
second), then, but for ``plain``, logs one metric point:

- ``plain``: the work alone, the loop's baseline;
- ``agent``: ``autologagent.log_metric`` with ``AUTOLOG_TRACKING_URI=URI``; then
  ``autologagent.flush()``, and the points on the server are counted over REST;
- ``agent-spooling``: the same with nothing listening at URI, so that every
  batch goes to the spool file: the agent's own cost, no server on the cores;
- ``mlflow``: MLflow's own client against the same server, twice: synchronous
  ``mlflow.log_metric`` for ``SYNC_STEPS`` steps (each a request), then
  ``mlflow.log_metric(..., synchronous=False)`` for ``ASYNC_STEPS`` steps and
  ``mlflow.flush_async_logging()``. Fewer steps than N, since MLflow's async
  logging sends about one request a point here (N would take an hour); its
  figures are per step and per second, comparable with the agent's.

Prints one JSON object: loop seconds, seconds until every point was on the
server (``e2e_s``), points counted there.
"""

from __future__ import annotations

import json
import sys
import time

WORK_ITERATIONS = 600  # about 100 µs of pure Python per step on the 2-core test machine
SYNC_STEPS = 150
ASYNC_STEPS = 2000


def work(n: int = WORK_ITERATIONS) -> float:
    total = 0.0
    for i in range(n):
        total += (i * 0.5) ** 0.5
    return total


def run_plain(n: int) -> dict[str, float]:
    start = time.perf_counter()
    for _ in range(n):
        work()
    return {"loop_s": time.perf_counter() - start}


def run_agent(n: int, uri: str) -> dict[str, float]:
    import autologagent

    autologagent.log_metric("warmup", 0.0)
    autologagent.flush()
    start = time.perf_counter()
    for step in range(n):
        loss = work()
        autologagent.log_metric("loss", loss, step=step)
    looped = time.perf_counter()
    autologagent.flush()
    flushed = time.perf_counter()
    return {
        "loop_s": looped - start,
        "e2e_s": flushed - start,
        "points_on_server": _count_points(uri, autologagent.last_active_run().info.run_id),
    }


def run_agent_spooling(n: int) -> dict[str, float]:
    """The agent with the server unreachable: every batch goes to the spool file.

    What the agent itself costs the loop, without a server on the same cores.
    """
    import autologagent

    autologagent.log_metric("warmup", 0.0)
    autologagent.flush()
    start = time.perf_counter()
    for step in range(n):
        loss = work()
        autologagent.log_metric("loss", loss, step=step)
    looped = time.perf_counter()
    autologagent.flush()
    return {"loop_s": looped - start, "e2e_s": time.perf_counter() - start}


def _count_points(uri: str, agent_run_id: str) -> float:
    from autologagent._mlflow_store import MlflowStore

    store = MlflowStore(uri)
    try:
        return float(len(store.metric_history(store.resolve_run_id(agent_run_id), "loss")))
    finally:
        store.close()


def run_mlflow(n: int, uri: str) -> dict[str, float]:
    import mlflow

    mlflow.set_tracking_uri(uri)
    with mlflow.start_run():
        mlflow.log_metric("warmup", 0.0)
        start = time.perf_counter()
        for step in range(SYNC_STEPS):
            mlflow.log_metric("loss", work(), step=step)
        sync_s = time.perf_counter() - start
    with mlflow.start_run() as run:
        mlflow.log_metric("warmup", 0.0, synchronous=False)
        mlflow.flush_async_logging()
        steps = min(n, ASYNC_STEPS)
        start = time.perf_counter()
        for step in range(steps):
            mlflow.log_metric("loss", work(), step=step, synchronous=False)
        looped = time.perf_counter()
        mlflow.flush_async_logging()
        flushed = time.perf_counter()
        run_id = run.info.run_id
    points = len(mlflow.MlflowClient().get_metric_history(run_id, "loss"))
    return {
        "sync_points_per_s": SYNC_STEPS / sync_s,
        "sync_step_s": sync_s / SYNC_STEPS,
        "async_steps": float(steps),
        "async_step_s": (looped - start) / steps,
        "async_points_per_s": steps / (flushed - start),
        "async_points_on_server": float(points),
    }


def main() -> None:
    kind, n, uri = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    if kind == "plain":
        report = run_plain(n)
    elif kind == "agent":
        report = run_agent(n, uri)
    elif kind == "agent-spooling":
        report = run_agent_spooling(n)
    else:
        report = run_mlflow(n, uri)
    report["n"] = float(n)
    sys.stdout.write(json.dumps(report) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
