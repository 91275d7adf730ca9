"""Case ``import_sklearn``: what the agent adds to importing a framework it patches.

With ``AUTOLOG=1`` the agent's import hook sees every module load, and patches the
scikit-learn estimators as their modules execute. ``import sklearn.ensemble`` loads
some hundreds of modules and the estimator classes the agent patches, so it shows
both the per-import cost of the hook and the cost of patching, relative to an
import that already takes most of a second.
"""

from __future__ import annotations

from _harness import (
    AGENT,
    BASELINE,
    RUN_DIR,
    Case,
    CaseResult,
    Context,
    Row,
    Variant,
    agent_activation_error,
    cell,
    fmt_ms,
    fmt_signed_ms,
    verdict,
)

LIMIT_RATIO = 1.03
CODE = "import sklearn.ensemble"


def variants(ctx: Context) -> list[Variant]:
    """The same import with and without ``AUTOLOG=1``, in the agent's interpreter."""
    return [
        Variant(BASELINE, [ctx.python, "-c", CODE]),
        Variant(
            AGENT,
            [ctx.python, "-c", CODE],
            env={"AUTOLOG": "1", "AUTOLOG_TRACKING_URI": f"{RUN_DIR}/autologruns"},
        ),
    ]


def evaluate(outcome: CaseResult, ctx: Context) -> list[Row]:
    """Ratio of the medians of wall time against the 3 % target."""
    b = outcome.get(BASELINE).summary("wall_s")
    a = outcome.get(AGENT).summary("wall_s")
    ratio = a.median / b.median
    return [
        Row(
            "import_sklearn",
            cell(b, fmt_ms),
            cell(a, fmt_ms),
            f"×{ratio:.3f} ({fmt_signed_ms(a.median - b.median)})",
            "—",
            "≤ ×1.03 (median ratio)",
            verdict(ratio <= LIMIT_RATIO),
        )
    ]


CASES = [
    Case(
        name="import_sklearn",
        description=(
            f"`python -c '{CODE}'` with `AUTOLOG=1` (tracking URI in a temporary folder) "
            "against without, whole processes timed by the harness, alternated."
        ),
        target="≤ ×1.03 (median ratio)",
        variants=variants,
        evaluate=evaluate,
        runs=20,
        quick_runs=7,
        warmup=1,
        timeout_s=300,
        check=agent_activation_error,
    )
]
