"""Cases ``sklearn_seed`` and ``sklearn_many_fits``: what autologging a fit costs.

``sklearn_seed`` runs the founding workload (a 200-tree forest fitted and scored)
three ways: plain, under ``python -m autologagent``, and with ``mlflow.autolog()``
called first (the same script, run by ``runpy`` after the call). Wall time and
peak RSS of whole processes.

``sklearn_many_fits`` fits 25 small models in a loop (``_many_fits.py``), plain
and under the agent, and reports the agent's cost per fit: (agent - plain) / 25,
for the whole process and for the loop alone (the training thread's share; the
rest is the process waiting at exit for the classifiers' plots to be drawn).
Every fit is a logged run with params, metrics, model and (for classifiers) plots.
"""

from __future__ import annotations

from _harness import (
    AGENT,
    BASELINE,
    BENCH_DIR,
    MLFLOW,
    REPORT,
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

SEED = str(BENCH_DIR.parent.parent / "shared" / "workloads" / "seed_example.py")
MANY_FITS = str(BENCH_DIR / "_many_fits.py")
FITS = 25
SEED_LIMIT_RATIO = 1.25
SEED_LIMIT_RSS_MIB = 60
PER_FIT_LIMIT_S = 0.050

_MLFLOW_SEED = (
    "import mlflow, runpy, sys; "
    "mlflow.set_tracking_uri('sqlite:///mlflow.db'); "
    "mlflow.autolog(); "
    f"sys.argv = [{SEED!r}]; "
    f"runpy.run_path({SEED!r}, run_name='__main__')"
)


def _agent_env() -> dict[str, str]:
    return {"AUTOLOG_TRACKING_URI": f"{RUN_DIR}/autologruns"}


def seed_variants(ctx: Context) -> list[Variant]:
    found = [
        Variant(BASELINE, [ctx.python, SEED]),
        Variant(AGENT, [ctx.python, "-m", "autologagent", SEED], env=_agent_env()),
    ]
    if ctx.mlflow_python:
        found.append(
            Variant(MLFLOW, [ctx.mlflow_python, "-c", _MLFLOW_SEED], runs=2 if ctx.quick else 5)
        )
    return found


def seed_evaluate(outcome: CaseResult, ctx: Context) -> list[Row]:
    b = outcome.get(BASELINE).summary("wall_s")
    a = outcome.get(AGENT).summary("wall_s")
    ratio = a.median / b.median
    rb = outcome.get(BASELINE).summary("maxrss_kb")
    ra = outcome.get(AGENT).summary("maxrss_kb")
    extra_mib = (ra.median - rb.median) / 1024
    return [
        Row(
            "sklearn_seed wall",
            cell(b, fmt_ms),
            cell(a, fmt_ms),
            f"×{ratio:.2f} ({fmt_signed_ms(a.median - b.median)})",
            mlflow_cell(
                outcome,
                ctx,
                lambda r: (
                    f"{cell(r.summary('wall_s'), fmt_ms)} "
                    f"(×{r.summary('wall_s').median / b.median:.2f})"
                ),
            ),
            "≤ ×1.25 (median ratio)",
            verdict(ratio <= SEED_LIMIT_RATIO),
        ),
        Row(
            "sklearn_seed peak RSS",
            cell(rb, fmt_mib),
            cell(ra, fmt_mib),
            f"{extra_mib:+.1f} MiB",
            mlflow_cell(outcome, ctx, lambda r: cell(r.summary("maxrss_kb"), fmt_mib)),
            "≤ +60 MiB (median)",
            verdict(extra_mib <= SEED_LIMIT_RSS_MIB),
        ),
    ]


def fits_variants(ctx: Context) -> list[Variant]:
    return [
        Variant(BASELINE, [ctx.python, MANY_FITS, str(FITS)]),
        Variant(AGENT, [ctx.python, "-m", "autologagent", MANY_FITS, str(FITS)], env=_agent_env()),
    ]


def fits_evaluate(outcome: CaseResult, ctx: Context) -> list[Row]:
    b = outcome.get(BASELINE).summary("wall_s")
    a = outcome.get(AGENT).summary("wall_s")
    per_fit = (a.median - b.median) / FITS
    lb = outcome.get(BASELINE).summary("loop_s")
    la = outcome.get(AGENT).summary("loop_s")
    loop_per_fit = (la.median - lb.median) / FITS
    return [
        Row(
            f"sklearn_many_fits ({FITS} fits, process)",
            cell(b, fmt_ms),
            cell(a, fmt_ms),
            f"{fmt_signed_ms(per_fit)} per fit (×{a.median / b.median:.2f})",
            "MLflow (issue): 4-5 s per fit",
            "≤ +50 ms per fit (median)",
            verdict(per_fit <= PER_FIT_LIMIT_S),
        ),
        Row(
            f"sklearn_many_fits ({FITS} fits, loop alone)",
            cell(lb, fmt_ms),
            cell(la, fmt_ms),
            f"{fmt_signed_ms(loop_per_fit)} per fit (×{la.median / lb.median:.2f})",
            "—",
            "≤ +50 ms per fit (median)",
            verdict(loop_per_fit <= PER_FIT_LIMIT_S),
        ),
    ]


CASES = [
    Case(
        name="sklearn_seed",
        description=(
            "The seed workload (`../shared/workloads/seed_example.py`): plain, under "
            "`python -m autologagent`, and with `mlflow.autolog()` (SQLite store) called "
            "before running it; whole processes, alternated."
        ),
        target="≤ ×1.25 wall, ≤ +60 MiB peak RSS (medians)",
        variants=seed_variants,
        evaluate=seed_evaluate,
        runs=7,
        quick_runs=3,
        warmup=1,
        timeout_s=600,
        check=agent_activation_error,
    ),
    Case(
        name="sklearn_many_fits",
        description=(
            f"{FITS} small models fitted in a loop (`benchmarks/_many_fits.py`: logistic "
            "regressions scored on held-out data, and ridge regressions), plain and under "
            "`python -m autologagent`; cost per fit = difference of medians / fits, for "
            "the whole process and for the loop alone (`loop_s`, timed by the script)."
        ),
        target="≤ +50 ms per fit (median)",
        variants=fits_variants,
        evaluate=fits_evaluate,
        measure=REPORT,
        runs=7,
        quick_runs=3,
        warmup=1,
        timeout_s=600,
        check=agent_activation_error,
    ),
]
