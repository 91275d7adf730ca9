"""Case ``server``: a training loop logging 10,000 points a second to a local MLflow server.

The team store must not slow training: the agent's ``log_metric`` only enqueues
and its writer sends batches (``runs/log-batch``, 1,000 points a call) from a
background thread. Three figures: how much the loop slows (the agent against the
same loop without logging, target ≤ +2 %), how fast the points reach the server
(target ≥ 10,000 points/s), and, beside them, MLflow's own client logging the same
points to the same server, synchronously and with its async logging.

One ``mlflow server`` (SQLite backend, two workers, no job runner) is started
for the whole case with the MLflow interpreter and stopped when the harness exits.
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

from _harness import (
    AGENT,
    BASELINE,
    BENCH_DIR,
    MLFLOW,
    REPORT,
    Case,
    CaseError,
    CaseResult,
    Context,
    Row,
    Variant,
    cell,
    fmt_rate,
    mlflow_cell,
    verdict,
)

CHILD = str(BENCH_DIR / "_server_loop.py")
SLOWDOWN_TARGET = 1.02
RATE_TARGET = 10_000.0


def _steps(ctx: Context) -> int:
    return 20_000 if ctx.quick else 50_000


def _server(ctx: Context) -> str:
    """The server's URI, started at the first call."""
    if "server_uri" not in ctx.cache:
        if not ctx.mlflow_python:
            raise CaseError("needs an interpreter with mlflow for the server (--mlflow-python)")
        from _server_process import MlflowServer

        server = MlflowServer(
            ctx.mlflow_python, Path(tempfile.mkdtemp(prefix="server-", dir=ctx.tmp_root))
        )
        ctx.cache["server_start_s"] = server.start()
        ctx.cache["server"] = server
        ctx.cache["server_uri"] = server.uri
    return str(ctx.cache["server_uri"])


def variants(ctx: Context) -> list[Variant]:
    uri = _server(ctx)
    n = str(_steps(ctx))
    agent_env = {
        "AUTOLOG_TRACKING_URI": uri,
        "AUTOLOG_SPOOL_DIR": "{run_dir}/spool",
        "AUTOLOG_SYSTEM_METRICS": "false",
    }
    found = [
        Variant(BASELINE, [ctx.python, CHILD, "plain", n, uri]),
        Variant(
            AGENT,
            [ctx.python, CHILD, "agent", n, uri],
            env=agent_env,
            warmup_argv=[ctx.python, CHILD, "agent", "2000", uri],
        ),
    ]
    if ctx.mlflow_python:
        found.append(
            Variant(
                MLFLOW,
                [ctx.mlflow_python, CHILD, "mlflow", n, uri],
                runs=2,
                warmup_argv=[ctx.mlflow_python, CHILD, "mlflow", "500", uri],
            )
        )
    return found


def evaluate(outcome: CaseResult, ctx: Context) -> list[Row]:
    base = outcome.get(BASELINE).summary("loop_s")
    agent = outcome.get(AGENT)
    loop = agent.summary("loop_s")
    rate = agent.summary("e2e_s")
    n = agent.summary("n").median
    ratio = loop.median / base.median
    has_mlflow = outcome.ok(MLFLOW)

    base_step = base.median / n

    def mlflow_ratio(result: object) -> str:
        mlflow = outcome.variants[MLFLOW]
        async_step = mlflow.summary("async_step_s").median
        sync_step = mlflow.summary("sync_step_s").median
        return f"async ×{async_step / base_step:.2f}; sync ×{sync_step / base_step:,.0f}"

    def mlflow_rate(result: object) -> str:
        mlflow = outcome.variants[MLFLOW]
        sync = mlflow.summary("sync_points_per_s").median
        async_rate = mlflow.summary("async_points_per_s").median
        return f"async {fmt_rate(async_rate, 'points')}; sync {fmt_rate(sync, 'points')}"

    slowdown = Row(
        "server: loop time, 1 point/step",
        cell(base, lambda s: f"{s:.2f} s"),
        cell(loop, lambda s: f"{s:.2f} s"),
        f"×{ratio:.3f}",
        mlflow_cell(outcome, ctx, mlflow_ratio) if has_mlflow else ctx.mlflow_note or "—",
        f"≤ ×{SLOWDOWN_TARGET}",
        verdict(ratio <= SLOWDOWN_TARGET),
    )
    delivered = dataclasses.replace(
        slowdown,
        case="server: points/s to the server",
        baseline=f"offered {fmt_rate(n / base.median, 'points')}",
        agent=cell(
            dataclasses.replace(rate, median=n / rate.median, min=n / rate.max, max=n / rate.min),
            lambda r: fmt_rate(r, "points"),
        ),
        delta="—",
        mlflow=mlflow_cell(outcome, ctx, mlflow_rate) if has_mlflow else ctx.mlflow_note or "—",
        target=f"≥ {fmt_rate(RATE_TARGET, 'points')}",
        verdict=verdict(n / rate.median >= RATE_TARGET),
    )
    counted = agent.samples.get("points_on_server", [])
    if not counted or min(counted) < n:
        outcome.notes.append(f"points on the server after flush(): {counted} of {n:,.0f}")
        delivered = dataclasses.replace(delivered, verdict="NOT met (points missing)")
    if "server_start_s" in ctx.cache:
        outcome.notes.append(
            f"mlflow server answered /health after {ctx.cache['server_start_s']:.1f} s"
        )
    return [slowdown, delivered]


def spooling_variants(ctx: Context) -> list[Variant]:
    """The agent against a closed port: the loop pays only the agent's own work."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    n = str(_steps(ctx))
    env = {
        "AUTOLOG_TRACKING_URI": closed,
        "AUTOLOG_SPOOL_DIR": "{run_dir}/spool",
        "AUTOLOG_SYSTEM_METRICS": "false",
        "AUTOLOG_SILENT": "true",
    }
    return [
        Variant(BASELINE, [ctx.python, CHILD, "plain", n, closed]),
        Variant(AGENT, [ctx.python, CHILD, "agent-spooling", n, closed], env=env),
    ]


def evaluate_spooling(outcome: CaseResult, ctx: Context) -> list[Row]:
    base = outcome.get(BASELINE).summary("loop_s")
    loop = outcome.get(AGENT).summary("loop_s")
    ratio = loop.median / base.median
    return [
        Row(
            "server_spooling: loop time, 1 point/step",
            cell(base, lambda s: f"{s:.2f} s"),
            cell(loop, lambda s: f"{s:.2f} s"),
            f"×{ratio:.3f}",
            "—",
            f"≤ ×{SLOWDOWN_TARGET}",
            verdict(ratio <= SLOWDOWN_TARGET),
        )
    ]


CASES = [
    Case(
        name="server",
        description=(
            "A child process runs N steps (50,000; 20,000 with --quick) of a fixed piece of "
            "pure-Python work (about 100 µs, so about 10,000 steps/s), logging one point a "
            "step. Baseline: the work alone. Agent: `autologagent.log_metric` with "
            "AUTOLOG_TRACKING_URI set to a local `mlflow server` (SQLite, 2 workers), then "
            "`flush()`; the points on the server are counted. MLflow column: its client to "
            "the same server, synchronous `log_metric` (150 steps) and "
            "`log_metric(synchronous=False)` (2,000 steps, then `flush_async_logging()`): "
            "their loop time per step against the baseline's, and points/s."
        ),
        target="loop ≤ ×1.02, ≥ 10 k points/s to the server",
        variants=variants,
        evaluate=evaluate,
        measure=REPORT,
        runs=3,
        quick_runs=2,
        warmup=1,
        timeout_s=900,
    ),
    Case(
        name="server_spooling",
        description=(
            "The `server` case's loop with nothing listening at the tracking URI: every "
            "batch goes to the spool file. The agent's own cost to the loop (enqueue, "
            "writer thread, spool), without a server sharing the machine's cores."
        ),
        target="loop ≤ ×1.02",
        variants=spooling_variants,
        evaluate=evaluate_spooling,
        measure=REPORT,
        runs=5,
        quick_runs=3,
        warmup=1,
        timeout_s=300,
    ),
]
