"""Case ``torch_instructions``: the hooks' cost per PyTorch step, counted in instructions.

The scalar loop of ``torch_loop`` (a step of about 100 µs) times a difference of a
few microseconds on a machine whose step time swings by a fifth from one minute
to the next. Callgrind counts the instructions instead, the same from run to run:
each variant runs the loop for ``FEW`` and ``MANY`` steps, and the difference per
step is what a step costs, start-up and exit cancelled out. The main thread's
count is the figure (see ``_callgrind_steps``); every thread's is printed beside it.
"""

from __future__ import annotations

from pathlib import Path

from _harness import (
    AGENT,
    BASELINE,
    REPORT,
    Case,
    CaseResult,
    Context,
    Row,
    Variant,
    agent_activation_error,
    verdict,
)

FEW, MANY = 300, 1300
RATIO_TARGET = 1.05
CHILD = str(Path(__file__).with_name("_callgrind_steps.py"))
LOOP = str(Path(__file__).with_name("case_torch.py"))


def variants(ctx: Context) -> list[Variant]:
    """The scalar loop plain and under ``python -m autologagent``, each under callgrind."""
    counted = [ctx.python, CHILD, str(FEW), str(MANY)]
    return [
        Variant(BASELINE, [*counted, ctx.python, LOOP, "micro"]),
        Variant(AGENT, [*counted, ctx.python, "-m", "autologagent", LOOP, "micro"]),
    ]


def evaluate(outcome: CaseResult, ctx: Context) -> list[Row]:
    """Instructions per step on the training thread, agent against plain."""
    b = outcome.get(BASELINE).summary("main_per_step").median
    a = outcome.get(AGENT).summary("main_per_step").median
    b_all = outcome.get(BASELINE).summary("all_per_step").median
    a_all = outcome.get(AGENT).summary("all_per_step").median
    ratio = a / b
    return [
        Row(
            "torch_instructions (scalar SGD step, training thread)",
            f"{b / 1000:.1f} k instructions",
            f"{a / 1000:.1f} k instructions",
            f"×{ratio:.3f} ({(a - b) / 1000:+.1f} k a step; every thread: "
            f"{b_all / 1000:.1f} k against {a_all / 1000:.1f} k)",
            "—",
            f"≤ ×{RATIO_TARGET}",
            verdict(ratio <= RATIO_TARGET),
        )
    ]


CASES = [
    Case(
        name="torch_instructions",
        description=(
            f"`benchmarks/case_torch.py micro N` (N scalar SGD steps, as in `torch_loop`), "
            f"plain and under `python -m autologagent`, under valgrind's callgrind for "
            f"N = {FEW} and {MANY}; instructions per step = the difference / {MANY - FEW}."
        ),
        target=f"≤ ×{RATIO_TARGET} (instructions a step, training thread)",
        variants=variants,
        evaluate=evaluate,
        measure=REPORT,
        runs=1,
        quick_runs=1,
        warmup=0,
        timeout_s=1200,
        check=agent_activation_error,
    )
]
