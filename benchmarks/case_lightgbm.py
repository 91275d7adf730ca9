"""Cases ``lightgbm_train`` and ``lightgbm_logistic``: what autologging costs LightGBM.

``lightgbm_train``: 500 boosting rounds with two validation sets, the ``train``
call timed by the child (see ``_boosting_bench``). ``lightgbm_logistic``:
LightGBM's logistic-regression example (``_lightgbm_logistic.py``), 23 short
``lightgbm.train`` calls, each a run of its own with its model, importance and
charts: whole processes, plain against the agent, with MLflow's autolog beside
(MLflow logs a full model per run, seconds each).
"""

from __future__ import annotations

from _boosting_bench import (
    agent_env,
    describe_train,
    library_check,
    train_evaluate,
    train_variants,
)
from _harness import (
    AGENT,
    BASELINE,
    BENCH_DIR,
    MLFLOW,
    REPORT,
    Case,
    CaseResult,
    Context,
    Row,
    Variant,
    cell,
    fmt_ms,
    mlflow_cell,
    verdict,
)

LOGISTIC = str(BENCH_DIR / "_lightgbm_logistic.py")
CALLS = 23
LOGISTIC_LIMIT_RATIO = 1.5

_MLFLOW_LOGISTIC = (
    "import mlflow, runpy, sys; "
    "mlflow.set_tracking_uri('sqlite:///mlflow.db'); "
    "mlflow.lightgbm.autolog(); "
    f"sys.argv = [{LOGISTIC!r}]; "
    f"runpy.run_path({LOGISTIC!r}, run_name='__main__')"
)


# LightGBM's OpenMP threads spin while they wait: on a shared 2-core machine a busy
# neighbour turns this 2-second script into anything from 5 to 30 seconds, for every
# variant alike. One thread each keeps the comparison about the agent.
_ONE_THREAD = {"OMP_NUM_THREADS": "1"}


def logistic_variants(ctx: Context) -> list[Variant]:
    found = [
        Variant(BASELINE, [ctx.python, LOGISTIC], env=_ONE_THREAD),
        Variant(
            AGENT, [ctx.python, "-m", "autologagent", LOGISTIC], env={**agent_env(), **_ONE_THREAD}
        ),
    ]
    if ctx.mlflow_python:
        found.append(
            Variant(
                MLFLOW,
                [ctx.mlflow_python, "-c", _MLFLOW_LOGISTIC],
                env=_ONE_THREAD,
                runs=1 if ctx.quick else 2,
                # its runs take minutes: warm the caches with the imports alone
                warmup_argv=[ctx.mlflow_python, "-c", "import mlflow, lightgbm, pandas, scipy"],
            )
        )
    return found


def logistic_evaluate(outcome: CaseResult, ctx: Context) -> list[Row]:
    b = outcome.get(BASELINE).summary("wall_s")
    a = outcome.get(AGENT).summary("wall_s")
    ratio = a.median / b.median
    return [
        Row(
            f"lightgbm_logistic ({CALLS} train calls, process)",
            cell(b, fmt_ms),
            cell(a, fmt_ms),
            f"×{ratio:.2f} (+{fmt_ms((a.median - b.median) / CALLS)} per run)",
            mlflow_cell(
                outcome,
                ctx,
                lambda r: (
                    f"{cell(r.summary('wall_s'), fmt_ms)} "
                    f"(×{r.summary('wall_s').median / b.median:.1f})"
                ),
            ),
            f"≤ ×{LOGISTIC_LIMIT_RATIO} (median ratio)",
            verdict(ratio <= LOGISTIC_LIMIT_RATIO),
        )
    ]


CASES = [
    Case(
        name="lightgbm_train",
        description=describe_train("lightgbm", "mlflow.lightgbm.autolog"),
        target="≤ ×1.05 on the train call (median ratio)",
        variants=train_variants("lightgbm"),
        evaluate=train_evaluate("lightgbm_train"),
        measure=REPORT,
        runs=9,
        quick_runs=3,
        warmup=1,
        timeout_s=600,
        check=library_check("lightgbm", "sklearn"),
    ),
    Case(
        name="lightgbm_logistic",
        description=(
            "LightGBM's logistic-regression example (`benchmarks/_lightgbm_logistic.py`, after "
            "`examples/python-guide/logistic_regression.py`): 23 `lightgbm.train` calls of 5 "
            "rounds on 1,000 rows, each followed by a prediction; plain, under `python -m "
            "autologagent` (23 runs, each with params, model, importance JSON and charts), and "
            "with `mlflow.lightgbm.autolog()` called first; whole processes, alternated, all "
            "with `OMP_NUM_THREADS=1` (LightGBM's spinning OpenMP threads make a shared "
            "2-core machine's timings swing several-fold otherwise)."
        ),
        target="≤ ×1.5 wall (median ratio)",
        variants=logistic_variants,
        evaluate=logistic_evaluate,
        runs=9,
        quick_runs=3,
        warmup=1,
        timeout_s=900,
        check=library_check("lightgbm", "pandas", "scipy"),
    ),
]
