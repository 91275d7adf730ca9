"""Run the benchmarks and report them: ``python benchmarks/run.py [--quick] [--case NAME ...]``.

Each case runs its programs as whole processes, the agent and its baseline in turn,
after a warm-up; the table gives medians, spreads, the difference or ratio, MLflow's
figure where there is one, the target and whether it is met. Nothing here asserts a
timing: machines are noisy, and a benchmark that fails a build on a slow afternoon
teaches people to ignore it. The same table, with the machine it came from, goes to
``benchmarks/RESULTS.md``.

Cases live in ``case_*.py`` modules next to this file, each exporting ``CASES``.
"""

from __future__ import annotations

import argparse
import importlib
import os
import shlex
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import (  # noqa: E402  (the path above makes the helpers importable)
    BENCH_DIR,
    REPO_ROOT,
    Case,
    CaseResult,
    Context,
    Row,
    details,
    evaluate,
    machine_description,
    markdown_table,
    mlflow_status,
    run_case,
)

#: Cases in the order of the table; any other ``case_*.py`` follows, by name.
CASE_MODULES = ("case_startup", "case_import_sklearn", "case_log_metric")
DEFAULT_MLFLOW_PYTHON = REPO_ROOT / ".venv-bench" / "bin" / "python"


def load_cases() -> list[Case]:
    """Every case of every ``case_*.py`` module, the known ones first."""
    extra = sorted(p.stem for p in BENCH_DIR.glob("case_*.py") if p.stem not in CASE_MODULES)
    cases: list[Case] = []
    for name in (*CASE_MODULES, *extra):
        cases.extend(importlib.import_module(name).CASES)
    names = [case.name for case in cases]
    duplicates = {name for name in names if names.count(name) > 1}
    if duplicates:
        raise SystemExit(f"duplicate case names: {', '.join(sorted(duplicates))}")
    return cases


def interpreter_path(value: str) -> str:
    """An absolute path for an interpreter: the children run in other folders.

    ``abspath`` rather than ``resolve``: a venv's ``python`` is a symlink whose
    target would lose the venv.
    """
    if os.sep not in value:
        found = shutil.which(value)
        if found:
            return found
    return os.path.abspath(value)


def parse_args(argv: Sequence[str] | None, cases: Sequence[Case]) -> argparse.Namespace:
    """The command line; ``--list`` shows the cases and their targets."""
    parser = argparse.ArgumentParser(
        description="Benchmarks of autologagent against plain Python and MLflow.",
    )
    parser.add_argument("--quick", action="store_true", help="fewer runs and smaller workloads")
    parser.add_argument(
        "--case",
        dest="cases",
        action="extend",
        nargs="+",
        metavar="NAME",
        help="run only these cases (default: all)",
    )
    parser.add_argument(
        "--python",
        default=sys.executable,
        help="interpreter with autologagent installed (default: this one)",
    )
    parser.add_argument(
        "--mlflow-python",
        default=str(DEFAULT_MLFLOW_PYTHON),
        help="interpreter with mlflow installed, for MLflow's figures; '' for none "
        "(default: %(default)s)",
    )
    parser.add_argument("--runs", type=int, help="override every case's number of rounds")
    parser.add_argument(
        "--output",
        default=str(BENCH_DIR / "RESULTS.md"),
        help="where to write the results (default: %(default)s)",
    )
    parser.add_argument("--list", action="store_true", help="list the cases and exit")
    args = parser.parse_args(argv)
    known = {case.name for case in cases}
    unknown = [name for name in args.cases or () if name not in known]
    if unknown:
        parser.error(f"unknown case(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    if args.runs is not None and args.runs < 1:
        parser.error("--runs must be at least 1")
    return args


def progress(text: str) -> None:
    """Progress goes to stderr, so that stdout holds the table alone."""
    sys.stderr.write(text)
    sys.stderr.flush()


def run_all(cases: Sequence[Case], ctx: Context) -> tuple[list[CaseResult], list[Row]]:
    """Run the cases one after the other; one case's failure never stops the others."""
    outcomes: list[CaseResult] = []
    rows: list[Row] = []
    for case in cases:
        try:
            outcome = run_case(case, ctx, progress)
        except Exception as exc:  # a broken case must not sink the run
            outcome = CaseResult(case=case, error=f"harness error: {type(exc).__name__}: {exc}")
            progress(f"[{case.name}] {outcome.error}\n")
        rows.extend(evaluate(outcome, ctx))
        outcomes.append(outcome)
    return outcomes, rows


def problems(outcomes: Sequence[CaseResult]) -> list[str]:
    """Every error and note, one line each, for the table's footer."""
    lines: list[str] = []
    for outcome in outcomes:
        name = outcome.case.name
        if outcome.error:
            lines.append(f"{name}: {outcome.error}")
        for result in outcome.variants.values():
            if result.error and result.error not in (outcome.error or ""):
                lines.append(f"{name} ({result.role}): {result.error}")
        lines.extend(f"{name}: {note}" for note in outcome.notes)
    return lines


def render(
    command: str,
    ctx: Context,
    machine: Sequence[tuple[str, str]],
    outcomes: Sequence[CaseResult],
    rows: Sequence[Row],
    started: datetime,
    elapsed_s: float,
) -> str:
    """RESULTS.md: provenance, machine, the table, the footnotes, the details."""
    mode = "quick" if ctx.quick else "full"
    lines = [
        "# Benchmark results",
        "",
        f"Generated by `{command}` ({mode} mode) on {started:%Y-%m-%d %H:%M} UTC, "
        f"in {elapsed_s:.0f} s. Re-run it to refresh this file; see README.md for "
        "what each case measures.",
        "",
        "## Machine",
        "",
        *(f"- {label}: {text}" for label, text in machine),
        "",
        "## Results",
        "",
        "Cells give the median over the runs, then [min–max]. Verdicts compare medians "
        "with the targets; nothing here is asserted, and one machine's figures only "
        "compare with figures from the same machine.",
        "",
        markdown_table(rows),
        "",
    ]
    issues = problems(outcomes)
    if issues:
        lines += ["### Errors and notes", "", *(f"- {line}" for line in issues), ""]
    lines += ["## Details", ""]
    for outcome in outcomes:
        lines += details(outcome)
    return "\n".join(lines).rstrip() + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the selected cases, print the table, write RESULTS.md; 1 if a case errored."""
    cases = load_cases()
    args = parse_args(argv, cases)
    if args.list:
        for case in cases:
            print(f"{case.name:16} target: {case.target}\n{'':16} {case.description}")
        return 0
    selected = [case for case in cases if not args.cases or case.name in args.cases]
    started = datetime.now(timezone.utc)  # noqa: UP017  (py310 has no datetime.UTC)
    clock = time.perf_counter()
    mlflow_python, mlflow_note = mlflow_status(
        interpreter_path(args.mlflow_python) if args.mlflow_python else None
    )
    tmp_root = Path(tempfile.mkdtemp(prefix="autologagent-bench-"))
    ctx = Context(
        python=interpreter_path(args.python),
        mlflow_python=mlflow_python,
        mlflow_note=mlflow_note,
        quick=args.quick,
        runs_override=args.runs,
        tmp_root=tmp_root,
    )
    try:
        machine = machine_description(ctx)
        progress(f"agent interpreter: {ctx.python}\n")
        progress(f"mlflow interpreter: {ctx.mlflow_python or ctx.mlflow_note}\n")
        outcomes, rows = run_all(selected, ctx)
    finally:
        shutil.rmtree(tmp_root, ignore_errors=True)
    elapsed = time.perf_counter() - clock
    print()
    print(markdown_table(rows))
    issues = problems(outcomes)
    if issues:
        print()
        print("\n".join(issues))
    command = shlex.join(["python", "benchmarks/run.py", *(sys.argv[1:] if argv is None else argv)])
    output = Path(args.output)
    output.write_text(
        render(command, ctx, machine, outcomes, rows, started, elapsed), encoding="utf-8"
    )
    print(f"\nwritten: {output} ({elapsed:.0f} s)")
    return 1 if any(outcome.error for outcome in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())
