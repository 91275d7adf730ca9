"""Case ``log_metric``: how many metric points a training loop can log, and store.

A training loop that logs every step must not slow down because of it: the agent's
``log_metric`` only enqueues, and a background writer commits in batches. Two figures
follow, each with its target: the enqueue rate (what the loop pays per call) and the
end-to-end rate (how fast points reach SQLite, so the queue cannot grow without
bound). MLflow's synchronous ``mlflow.log_metric`` into SQLite is shown beside them,
measured with far fewer calls because each one is a database transaction.
"""

from __future__ import annotations

import dataclasses

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


def _rate_row(
    outcome: CaseResult, ctx: Context, label: str, key: str, unit: str, target: float
) -> Row:
    """One rate against its target, with MLflow's same rate and the agent's lead on it."""
    summary = outcome.get(AGENT).summary(key)

    def rate(value: float) -> str:
        return fmt_rate(value, unit)

    lead = "—"
    if outcome.ok(MLFLOW):
        lead = f"×{summary.median / outcome.variants[MLFLOW].summary(key).median:,.0f} MLflow's"
    return Row(
        label,
        "—",
        cell(summary, rate),
        lead,
        mlflow_cell(outcome, ctx, lambda r: rate(r.summary(key).median)),
        f"≥ {rate(target)}",
        verdict(summary.median >= target),
    )


def evaluate(outcome: CaseResult, ctx: Context) -> list[Row]:
    """Median rates against their targets; points missing from SQLite void the second."""
    enqueue = _rate_row(outcome, ctx, "log_metric enqueue", "enqueue_rate", "calls", ENQUEUE_TARGET)
    stored = _rate_row(outcome, ctx, "log_metric to SQLite", "e2e_rate", "points", E2E_TARGET)
    missing = _missing_points(outcome)
    if missing:
        outcome.notes.append(missing)
        stored = dataclasses.replace(stored, verdict="NOT met (points missing)")
    return [enqueue, stored]


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
