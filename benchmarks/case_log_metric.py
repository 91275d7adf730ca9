"""Case ``log_metric``: how many metric points a training loop can log, and store.

A training loop that logs every step must not slow down because of it: the agent's
``log_metric`` only enqueues, and a background writer commits in batches. Two figures
follow, each with its target: the enqueue rate (what the loop pays per call) and the
end-to-end rate (how fast points reach SQLite, so the queue cannot grow without
bound). MLflow's synchronous ``mlflow.log_metric`` into SQLite is shown beside them,
measured with far fewer calls because each one is a database transaction.
"""

from __future__ import annotations

from _harness import (
    AGENT,
    BENCH_DIR,
    MLFLOW,
    REPORT,
    RUN_DIR,
    Case,
    CaseResult,
    Context,
    Row,
    Variant,
    cell,
    fmt_rate,
    mlflow_cell,
    verdict,
)

CHILD = str(BENCH_DIR / "_child_log_metric.py")
ENQUEUE_TARGET = 1_000_000.0
E2E_TARGET = 200_000.0


def agent_calls(ctx: Context) -> int:
    """Calls per agent run: enough for a steady state, fewer in quick mode."""
    return 200_000 if ctx.quick else 1_000_000


def variants(ctx: Context) -> list[Variant]:
    """The agent's loop (no ``AUTOLOG``: plain ``import autologagent``), then MLflow's."""
    store = f"{RUN_DIR}/autologruns"
    found = [
        Variant(
            AGENT,
            [ctx.python, CHILD, "agent", str(agent_calls(ctx)), store],
            env={"AUTOLOG_TRACKING_URI": store},
            warmup_argv=[ctx.python, CHILD, "agent", "10000", store],
        )
    ]
    if ctx.mlflow_python:
        mlflow_store = f"{RUN_DIR}/mlruns"
        found.append(
            Variant(
                MLFLOW,
                [ctx.mlflow_python, CHILD, "mlflow", str(300 if ctx.quick else 2000), mlflow_store],
                runs=2 if ctx.quick else 3,
                warmup_argv=[ctx.mlflow_python, CHILD, "mlflow", "10", mlflow_store],
            )
        )
    return found


def _missing_points(outcome: CaseResult) -> str | None:
    """Why the agent's figures cannot be trusted: points absent from SQLite after flush."""
    agent = outcome.get(AGENT)
    rows = agent.samples.get("rows_in_sqlite")
    if not rows:
        return "no metric table found in the store's SQLite files after flush()"
    n = agent.summary("n").median
    if min(rows) < n:
        return f"only {min(rows):,.0f} of {n:,.0f} points were in SQLite after flush()"
    return None


def evaluate(outcome: CaseResult, ctx: Context) -> list[Row]:
    """Median rates against their targets; MLflow's rate and the agent's lead beside them."""
    agent = outcome.get(AGENT)
    enqueue = agent.summary("enqueue_rate")
    e2e = agent.summary("e2e_rate")
    missing = _missing_points(outcome)
    rows = []
    for label, summary, target, unit, key in (
        ("log_metric enqueue", enqueue, ENQUEUE_TARGET, "calls", "enqueue_rate"),
        ("log_metric to SQLite", e2e, E2E_TARGET, "points", "e2e_rate"),
    ):
        mlflow_rate = outcome.variants[MLFLOW].summary(key).median if outcome.ok(MLFLOW) else None
        met = summary.median >= target
        if key == "e2e_rate" and missing:
            met = False
        rows.append(
            Row(
                label,
                "—",
                cell(summary, lambda x, unit=unit: fmt_rate(x, unit)),
                f"×{summary.median / mlflow_rate:,.0f} MLflow's" if mlflow_rate else "—",
                mlflow_cell(
                    outcome,
                    ctx,
                    lambda r, key=key, unit=unit: fmt_rate(r.summary(key).median, unit),
                ),
                f"≥ {fmt_rate(target, unit)}",
                verdict(met) + (" (points missing)" if key == "e2e_rate" and missing else ""),
            )
        )
    if missing:
        outcome.notes.append(missing)
    return rows


CASES = [
    Case(
        name="log_metric",
        description=(
            "A child process does `import autologagent`, one untimed call and `flush()`, "
            "then `autologagent.log_metric('loss', float(i), step=i)` N times "
            "(N = 1,000,000; 200,000 with --quick), then `autologagent.flush()`. "
            "Enqueue rate = N / loop time; to-SQLite rate = N / (loop start → flush end). "
            "The points found in SQLite afterwards are counted. MLflow column: the same "
            "loop with `mlflow.log_metric` into `sqlite:///<tmp>/mlflow.db` "
            "(2,000 calls; 300 with --quick), normalised to calls/s."
        ),
        target="≥ 1 M calls/s enqueued, ≥ 200 k points/s to SQLite",
        variants=variants,
        evaluate=evaluate,
        measure=REPORT,
        runs=5,
        quick_runs=3,
        warmup=1,
        timeout_s=300,
        required=(AGENT,),
    )
]
