"""Case ``ui``: the web UI on a real-sized store answers fast enough to browse.

A store of 1,000 runs (12 params, 8 metrics each), one of them with a
1,000,000-point series, is written once through the agent's SQLite backend
(``_ui_fill.py``). The agent's figures are whole HTTP requests to a real
``python -m autologagent ui`` process (``_ui_client.py ui``): the runs table
(``/api/runs``: every run, newest first, with the default param and metric columns,
as the table page asks for it, each time right after another process committed to
the store, so the UI cannot answer from what it read before) and the chart of the
long series at 1,000 buckets (each bucket's min and max: at most 2,000 points).
The baseline is the floor under the same answers: the same rows and chunks read with
``sqlite3`` alone, no sorting, downsampling or JSON (``_ui_client.py raw``).
"""

from __future__ import annotations

import json
import subprocess

from _harness import (
    AGENT,
    BASELINE,
    BENCH_DIR,
    REPORT,
    Case,
    CaseError,
    CaseResult,
    Context,
    Row,
    Variant,
    cell,
    fmt_ms,
    verdict,
)

FILL = str(BENCH_DIR / "_ui_fill.py")
CLIENT = str(BENCH_DIR / "_ui_client.py")
RUNS, POINTS = 1000, 1_000_000
TABLE_TARGET_S, CHART_TARGET_S = 0.300, 0.500


def _store(ctx: Context) -> tuple[str, str]:
    """The store, filled once per harness invocation; (folder, id of the long run)."""
    if "ui_store" not in ctx.cache:
        folder = ctx.tmp_root / "ui_store"
        done = subprocess.run(
            [ctx.python, FILL, str(folder), str(RUNS), str(POINTS)],
            capture_output=True,
            text=True,
            timeout=600,
        )
        if done.returncode != 0:
            raise CaseError(f"could not fill the store: {done.stderr.strip()[-200:]}")
        info = json.loads(done.stdout.strip().splitlines()[-1])
        ctx.cache["ui_store"] = (info["store"], info["big_run"])
    return ctx.cache["ui_store"]  # type: ignore[return-value]


def variants(ctx: Context) -> list[Variant]:
    folder, big_run = _store(ctx)
    rounds = "5" if ctx.quick else "15"
    return [
        Variant(BASELINE, [ctx.python, CLIENT, "raw", folder, big_run, rounds]),
        Variant(AGENT, [ctx.python, CLIENT, "ui", folder, big_run, rounds]),
    ]


def evaluate(outcome: CaseResult, ctx: Context) -> list[Row]:
    base, agent = outcome.get(BASELINE), outcome.get(AGENT)
    rows = []
    for label, key, target in (
        (f"ui runs table ({RUNS:,} runs)", "table_s", TABLE_TARGET_S),
        (f"ui chart ({POINTS:,} points, 1,000 buckets)", "chart_s", CHART_TARGET_S),
    ):
        floor, answer = base.summary(key), agent.summary(key)
        rows.append(
            Row(
                label,
                f"{cell(floor, fmt_ms)} (bare SQLite reads)",
                cell(answer, fmt_ms),
                f"×{answer.median / floor.median:.2f}",
                "—",
                f"< {fmt_ms(target)}",
                verdict(answer.median < target),
            )
        )
    for label, key in (
        ("ui runs table, store unchanged since the last answer", "table_unchanged_s"),
        ("ui runs table, filtered and sorted by a metric", "table_filtered_s"),
    ):
        figure = agent.summary(key)
        rows.append(
            Row(
                label,
                "—",
                cell(figure, fmt_ms),
                "—",
                "—",
                f"< {fmt_ms(TABLE_TARGET_S)}",
                verdict(figure.median < TABLE_TARGET_S),
            )
        )
    sizes = ", ".join(
        f"{name} {agent.summary(name + '_kib').median:,.0f} KiB"
        for name in ("table", "filtered", "chart")
    )
    outcome.notes.append(f"answer sizes: {sizes}")
    return rows


CASES = [
    Case(
        name="ui",
        description=(
            f"A store of {RUNS:,} runs (12 params, 8 metrics of 50 points each), one with a "
            f"{POINTS:,}-point series. Agent: whole HTTP requests to `python -m autologagent "
            "ui` (each process round: one warm-up request, then the median of 15; 5 with "
            "--quick): `/api/runs?columns=default` right after a commit by another process, "
            "the same on an unchanged store, filtered and sorted, and the long series' chart "
            "at 1,000 buckets. Baseline: the same rows and chunks read with sqlite3 alone."
        ),
        target="runs table < 300 ms, chart < 500 ms",
        variants=variants,
        evaluate=evaluate,
        measure=REPORT,
        runs=3,
        quick_runs=2,
        warmup=0,
        timeout_s=300,
    )
]
