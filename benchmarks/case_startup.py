"""Case ``startup``: what ``AUTOLOG=1`` adds to a Python process that does nothing.

The agent rides in every process of an environment once ``AUTOLOG=1`` is set
(shell scripts, tools, test runners), most of which never train anything. So its
start-up must cost next to nothing: the ``.pth`` line, the bootstrap and the import
hook, and no framework or heavy module. ``import mlflow`` is shown beside it as the
price of the usual way in.
"""

from __future__ import annotations

from _harness import (
    AGENT,
    BASELINE,
    MLFLOW,
    RUN_DIR,
    Case,
    CaseResult,
    Context,
    Row,
    Variant,
    agent_activation_error,
    cell,
    fmt_mib,
    fmt_ms,
    fmt_signed_ms,
    mlflow_cell,
    verdict,
)

LIMIT_S = 0.005


def variants(ctx: Context) -> list[Variant]:
    """Plain ``python -c pass`` against the same with ``AUTOLOG=1``, then MLflow's import."""
    found = [
        Variant(BASELINE, [ctx.python, "-c", "pass"]),
        Variant(
            AGENT,
            [ctx.python, "-c", "pass"],
            env={"AUTOLOG": "1", "AUTOLOG_TRACKING_URI": f"{RUN_DIR}/autologruns"},
        ),
    ]
    if ctx.mlflow_python:
        found.append(
            Variant(MLFLOW, [ctx.mlflow_python, "-c", "import mlflow"], runs=3 if ctx.quick else 8)
        )
    return found


def evaluate(outcome: CaseResult, ctx: Context) -> list[Row]:
    """Median difference of wall time (the target), and peak RSS for information."""
    base = outcome.get(BASELINE)
    agent = outcome.get(AGENT)
    b, a = base.summary("wall_s"), agent.summary("wall_s")
    diff = a.median - b.median
    mlflow_time = mlflow_cell(
        outcome,
        ctx,
        lambda r: (
            f"{cell(r.summary('wall_s'), fmt_ms)} "
            f"({fmt_signed_ms(r.summary('wall_s').median - b.median)}), import mlflow"
        ),
    )
    rows = [
        Row(
            "startup",
            cell(b, fmt_ms),
            cell(a, fmt_ms),
            f"{fmt_signed_ms(diff)} (×{a.median / b.median:.3f})",
            mlflow_time,
            "≤ +5 ms (median difference)",
            verdict(diff <= LIMIT_S),
        )
    ]
    rb, ra = base.summary("maxrss_kb"), agent.summary("maxrss_kb")
    rows.append(
        Row(
            "startup peak RSS",
            cell(rb, fmt_mib),
            cell(ra, fmt_mib),
            f"{(ra.median - rb.median) / 1024:+.1f} MiB",
            mlflow_cell(outcome, ctx, lambda r: f"{cell(r.summary('maxrss_kb'), fmt_mib)}"),
            "— (information)",
            "—",
        )
    )
    return rows


CASES = [
    Case(
        name="startup",
        description=(
            "`AUTOLOG=1 python -c pass` against `python -c pass` (no AUTOLOG), "
            "whole processes timed by the harness, alternated; MLflow column: "
            "`python -c 'import mlflow'` (difference against the same baseline)."
        ),
        target="≤ +5 ms (median difference)",
        variants=variants,
        evaluate=evaluate,
        runs=30,
        quick_runs=15,
        warmup=2,
        timeout_s=120,
        check=agent_activation_error,
    )
]
