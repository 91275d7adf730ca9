"""Cases ``context_runs`` and ``context_sampler``: what recording a run's context costs.

Every run records where it came from (source, git, packages) and system metrics.
A script fitting many small models pays that per run, so it must stay far below
the fit itself: a budget of 50 ms per run on the training thread, an aim of under
2 ms once the first run has cached what does not change.

``context_runs`` fits 25 small models in a loop (``_child_context.py runs``): plain,
and each fit inside ``autologagent.start_run()``, without the context (its hooks
made no-ops) and with it, system metrics on (the default) and off. The sklearn
integration stays off (no ``AUTOLOG``), so the differences are a run and its
context, not what sklearn autologging records. The child also times the two
context hooks on its own thread.

``context_sampler`` sleeps inside a run with the sampler at a 1 s interval and
without it, and compares the CPU time the process used: the cost of one sample,
and what that makes at the default interval of 10 s.
"""

from __future__ import annotations

from _harness import (
    AGENT,
    BASELINE,
    BENCH_DIR,
    REPORT,
    RUN_DIR,
    Case,
    CaseResult,
    Context,
    Row,
    Variant,
    cell,
    fmt_ms,
    fmt_signed_ms,
    verdict,
)

CHILD = str(BENCH_DIR / "_child_context.py")
RUNS = 25
NO_SYSTEM_METRICS = "agent_no_system_metrics"
BARE = "agent_without_context"
HOOKS_BUDGET_S = 0.050
HOOKS_AIM_S = 0.002
SAMPLER_INTERVAL_S = 1.0
DEFAULT_INTERVAL_S = 10.0
SAMPLER_LIMIT_PERCENT = 1.0  # of one core, at the default interval


def _store_env(**extra: str) -> dict[str, str]:
    return {"AUTOLOG_TRACKING_URI": f"{RUN_DIR}/autologruns", **extra}


# One BLAS thread: on a busy 2-core machine, BLAS threads spinning for a core turn a
# 3 ms fit into 50 ms now and then, which would drown what is measured here.
ONE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def runs_variants(ctx: Context) -> list[Variant]:
    argv = [ctx.python, CHILD, "runs", "agent", str(RUNS)]
    return [
        Variant(BASELINE, [ctx.python, CHILD, "runs", "plain", str(RUNS)], env=ONE_THREAD),
        Variant(BARE, [ctx.python, CHILD, "runs", "bare", str(RUNS)], env=_store_env(**ONE_THREAD)),
        Variant(AGENT, argv, env=_store_env(**ONE_THREAD)),
        Variant(
            NO_SYSTEM_METRICS, argv, env=_store_env(AUTOLOG_SYSTEM_METRICS="false", **ONE_THREAD)
        ),
    ]


def runs_evaluate(outcome: CaseResult, ctx: Context) -> list[Row]:
    base = outcome.get(BASELINE).summary("per_run_s")
    bare = outcome.get(BARE).summary("per_run_s")
    agent = outcome.get(AGENT)
    quiet = outcome.get(NO_SYSTEM_METRICS)
    rows = [
        Row(
            "context_runs wall per run: a run without its context",
            cell(base, fmt_ms),
            cell(bare, fmt_ms),
            f"{fmt_signed_ms(bare.median - base.median)} (×{bare.median / base.median:.2f})",
            "—",
            "— (information: the run itself)",
            "—",
        )
    ]
    for label, result in (("system metrics on", agent), ("system metrics off", quiet)):
        per_run = result.summary("per_run_s")
        rows.append(
            Row(
                f"context_runs wall per run: with its context ({label})",
                f"{cell(bare, fmt_ms)} (run without context)",
                cell(per_run, fmt_ms),
                f"{fmt_signed_ms(per_run.median - bare.median)} "
                f"(×{per_run.median / bare.median:.2f})",
                "—",
                "≤ +50 ms per run (median)",
                verdict(per_run.median - bare.median <= HOOKS_BUDGET_S),
            )
        )
    for label, result in (("system metrics on", agent), ("system metrics off", quiet)):
        hooks = result.summary("hooks_s")
        first = result.summary("hooks_first_s")
        rows.append(
            Row(
                f"context hooks per run, training thread ({label})",
                "—",
                f"{cell(hooks, fmt_ms)}; first run {fmt_ms(first.median)}",
                "—",
                "—",
                "≤ 50 ms (aim < 2 ms after the first)",
                verdict(hooks.median <= HOOKS_AIM_S and first.median <= HOOKS_BUDGET_S),
            )
        )
    return rows


def sampler_seconds(ctx: Context) -> float:
    return 6.0 if ctx.quick else 20.0


def sampler_variants(ctx: Context) -> list[Variant]:
    seconds = str(sampler_seconds(ctx))
    interval = {"AUTOLOG_SYSTEM_METRICS_INTERVAL": str(SAMPLER_INTERVAL_S)}
    return [
        Variant(
            BASELINE,
            [ctx.python, CHILD, "sleep", "off", seconds],
            env=_store_env(AUTOLOG_SYSTEM_METRICS="false"),
            warmup_argv=[ctx.python, CHILD, "sleep", "off", "1"],
        ),
        Variant(
            AGENT,
            [ctx.python, CHILD, "sleep", "on", seconds],
            env=_store_env(**interval),
            warmup_argv=[ctx.python, CHILD, "sleep", "on", "1"],
        ),
    ]


def sampler_evaluate(outcome: CaseResult, ctx: Context) -> list[Row]:
    off = outcome.get(BASELINE).summary("cpu_s")
    on = outcome.get(AGENT).summary("cpu_s")
    samples = outcome.get(AGENT).summary("samples").median
    periodic = max(1.0, samples - 2)  # the start and end samples fall outside the sleep
    per_sample = max(0.0, on.median - off.median) / periodic
    percent_at_default = per_sample / DEFAULT_INTERVAL_S * 100.0
    return [
        Row(
            f"context_sampler CPU over {sampler_seconds(ctx):.0f} s asleep (1 s interval)",
            cell(off, fmt_ms),
            cell(on, fmt_ms),
            f"{fmt_ms(per_sample)} CPU per sample; {percent_at_default:.3f} % of a core at 10 s",
            "—",
            "≤ 1 % of a core at the default 10 s",
            verdict(percent_at_default <= SAMPLER_LIMIT_PERCENT),
        )
    ]


CASES = [
    Case(
        name="context_runs",
        description=(
            f"{RUNS} small logistic regressions fitted in a loop (`_child_context.py runs`), "
            "BLAS on one thread: plain, then each inside `autologagent.start_run()` "
            "(sklearn autologging off, so a run and its context are all the agent adds): "
            "without the context (its hooks replaced by no-ops), and with it, system "
            "metrics on and off. Per-run figures are medians over the loop without its "
            "first run; the hooks are the time spent in `_context.run_started` and "
            "`_context.run_ending` on the training thread, timed inside the child."
        ),
        target="context ≤ 50 ms per run on the training thread, aim < 2 ms after the first",
        variants=runs_variants,
        evaluate=runs_evaluate,
        measure=REPORT,
        runs=7,
        quick_runs=3,
        warmup=1,
        timeout_s=300,
    ),
    Case(
        name="context_sampler",
        description=(
            "A process sleeps inside one run (20 s; 6 s with --quick) with the system "
            "metrics sampler at a 1 s interval, and with it off; the CPU time the process "
            "used over the sleep (every thread) gives the cost of one sample, and what it "
            "makes at the default 10 s interval."
        ),
        target="≤ 1 % of a core at the default 10 s interval",
        variants=sampler_variants,
        evaluate=sampler_evaluate,
        measure=REPORT,
        runs=3,
        quick_runs=2,
        warmup=1,
        timeout_s=120,
    ),
]
