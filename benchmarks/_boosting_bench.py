"""What the ``xgboost_train``, ``lightgbm_train`` and ``lightgbm_logistic`` cases share.

A boosting case runs ``_child_boosting.py`` three ways (plain, under ``python -m
autologagent``, after MLflow's ``<library>.autolog()``) and compares the time of
the ``train`` call the child reports; the agent's variant first checks that the
library is installed where the agent is, so that a missing package reads as such.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable

from _harness import (
    AGENT,
    BASELINE,
    BENCH_DIR,
    MLFLOW,
    RUN_DIR,
    CaseResult,
    Context,
    Row,
    Variant,
    agent_activation_error,
    cell,
    fmt_ms,
    mlflow_cell,
    verdict,
)

CHILD = str(BENCH_DIR / "_child_boosting.py")
ROUNDS = 500
TRAIN_LIMIT_RATIO = 1.05


def agent_env() -> dict[str, str]:
    return {"AUTOLOG_TRACKING_URI": f"{RUN_DIR}/autologruns"}


def train_variants(library: str) -> Callable[[Context], list[Variant]]:
    """Plain, the agent (command door), and MLflow's autolog for ``library``."""

    def variants(ctx: Context) -> list[Variant]:
        argv = [CHILD, library, str(ROUNDS)]
        warmup = [CHILD, library, "20"]
        found = [
            Variant(BASELINE, [ctx.python, *argv], warmup_argv=[ctx.python, *warmup]),
            Variant(
                AGENT,
                [ctx.python, "-m", "autologagent", *argv],
                env=agent_env(),
                warmup_argv=[ctx.python, "-m", "autologagent", *warmup],
            ),
        ]
        if ctx.mlflow_python:
            found.append(
                Variant(
                    MLFLOW,
                    [ctx.mlflow_python, *argv, "mlflow"],
                    runs=2 if ctx.quick else 5,
                    warmup_argv=[ctx.mlflow_python, *warmup, "mlflow"],
                )
            )
        return found

    return variants


def library_check(*modules: str) -> Callable[[Context], str | None]:
    """The agent's preflight: activation works, and ``modules`` import in its interpreter."""

    def check(ctx: Context) -> str | None:
        error = agent_activation_error(ctx)
        if error:
            return error
        key = "importable:" + ",".join(modules)
        if key not in ctx.cache:
            proc = subprocess.run(
                [ctx.python, "-c", "import " + ", ".join(modules)],
                capture_output=True,
                timeout=120,
                check=False,
            )
            ctx.cache[key] = (
                None
                if proc.returncode == 0
                else f"{' or '.join(modules)} not installed in {ctx.python}"
            )
        return ctx.cache[key]  # type: ignore[return-value]

    return check


def train_evaluate(label: str) -> Callable[[CaseResult, Context], list[Row]]:
    """The median ``train`` call time, agent against baseline, with MLflow's beside."""

    def evaluate(outcome: CaseResult, ctx: Context) -> list[Row]:
        b = outcome.get(BASELINE).summary("train_s")
        a = outcome.get(AGENT).summary("train_s")
        ratio = a.median / b.median
        return [
            Row(
                f"{label} ({ROUNDS} rounds, train call)",
                cell(b, fmt_ms),
                cell(a, fmt_ms),
                f"×{ratio:.3f} (+{fmt_ms(a.median - b.median)})",
                mlflow_cell(
                    outcome,
                    ctx,
                    lambda r: (
                        f"{cell(r.summary('train_s'), fmt_ms)} "
                        f"(×{r.summary('train_s').median / b.median:.2f})"
                    ),
                ),
                f"≤ ×{TRAIN_LIMIT_RATIO} (median ratio)",
                verdict(ratio <= TRAIN_LIMIT_RATIO),
            )
        ]

    return evaluate


def describe_train(library: str, autolog: str) -> str:
    return (
        f"`{library}.train` for {ROUNDS} rounds on 1,000 rows x 20 features (one thread) "
        "with two evaluation sets (`benchmarks/_child_boosting.py`): plain, under "
        f"`python -m autologagent`, and after `{autolog}()` (SQLite store). The child "
        "times the `train` call (`train_s`; `train_cpu_s` is the process's CPU time over "
        "it, all threads), the harness the whole process (`wall_s`, for information: it "
        "adds start-up, the files written in the background and the charts drawn at exit)."
    )
