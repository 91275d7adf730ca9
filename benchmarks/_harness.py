"""The benchmark harness: cases, whole-process runs, statistics and formatting.

Every figure comes from whole child processes, because what the agent costs a user is
what a whole ``python`` process costs: interpreter start, the ``.pth`` line, the
import hook, the background writer and the flush at exit. Timing a function inside
one process would miss most of that.

The harness uses the standard library only, so that it measures the same way under
any interpreter and never drags a dependency into the figures it reports.

A case is a small declarative object (:class:`Case`): its name, its target in words,
the processes to run (:class:`Variant`: the ``baseline``, the ``agent``, optionally
``mlflow``), how to measure them (the parent's wall clock and peak RSS, or figures the
child reports as JSON), and a function that turns the samples into table rows.
Later cases are one more ``case_*.py`` module next to this one.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shlex
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent

#: Replaced, in a variant's argv and env values, by a fresh empty folder made for each
#: run; the child also runs there, so nothing a run writes lands in the repository.
RUN_DIR = "{run_dir}"

#: Roles a variant can play; the table has one column for each.
BASELINE, AGENT, MLFLOW = "baseline", "agent", "mlflow"

#: ``measure`` values: the parent times the whole process (and reads its peak RSS), or
#: the child prints a JSON object of numbers as its last line of stdout.
PROCESS, REPORT = "process", "report"


class CaseError(Exception):
    """A case could not be measured; the message goes into the table instead."""


@dataclass(frozen=True)
class Variant:
    """One command of a case, run once per round.

    ``runs`` caps how many rounds this variant takes part in: MLflow's figures are
    slow to get, and a few runs of them are enough to put the agent's in context.
    ``warmup_argv`` lets a costly command warm up with a smaller workload.
    """

    role: str
    argv: Sequence[str]
    env: Mapping[str, str] = field(default_factory=dict)
    runs: int | None = None
    warmup_argv: Sequence[str] | None = None


@dataclass
class Context:
    """What the cases need to know about this invocation of the harness."""

    python: str
    mlflow_python: str | None
    mlflow_note: str
    quick: bool
    runs_override: int | None
    tmp_root: Path
    cache: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class Summary:
    """Order statistics of one series of samples."""

    n: int
    median: float
    p25: float
    p75: float
    min: float
    max: float


@dataclass
class VariantResult:
    """Samples of one variant, by metric name, and its error if a run failed."""

    role: str
    argv: Sequence[str]
    samples: dict[str, list[float]] = field(default_factory=dict)
    error: str | None = None

    @property
    def ok(self) -> bool:
        """True when every run succeeded and there is at least one sample."""
        return self.error is None and bool(self.samples)

    def summary(self, metric: str) -> Summary:
        """Summarise one metric; raises :class:`CaseError` when it was never reported."""
        values = self.samples.get(metric)
        if not values:
            raise CaseError(f"{self.role}: no '{metric}' figure was reported")
        return summarize(values)


@dataclass
class CaseResult:
    """All the variants' results of one case."""

    case: Case
    variants: dict[str, VariantResult] = field(default_factory=dict)
    error: str | None = None
    notes: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0

    def ok(self, role: str) -> bool:
        """True when the variant ran and succeeded."""
        result = self.variants.get(role)
        return result is not None and result.ok

    def get(self, role: str) -> VariantResult:
        """The variant's result; raises :class:`CaseError` when it failed or is absent."""
        result = self.variants.get(role)
        if result is None:
            raise CaseError(f"no {role} variant was run")
        if result.error is not None:
            raise CaseError(f"{role}: {result.error}")
        return result


@dataclass(frozen=True)
class Row:
    """One line of the results table."""

    case: str
    baseline: str
    agent: str
    delta: str
    mlflow: str
    target: str
    verdict: str


@dataclass(frozen=True)
class Case:
    """A benchmark: what to run, how to measure it, and how to judge it.

    ``variants`` builds the commands from the context (interpreters, quick mode);
    ``evaluate`` turns the samples into rows, and may raise :class:`CaseError`;
    ``check`` is an optional preflight of the agent variant that returns an error
    message, so that a case whose premise does not hold (the agent is not installed)
    reports that instead of timing the wrong thing; the other variants still run and
    their figures still appear in the details. ``required`` are the roles without
    which there is no row.
    """

    name: str
    description: str
    target: str
    variants: Callable[[Context], list[Variant]]
    evaluate: Callable[[CaseResult, Context], list[Row]]
    measure: str = PROCESS
    runs: int = 10
    quick_runs: int = 5
    warmup: int = 1
    timeout_s: float = 300.0
    check: Callable[[Context], str | None] | None = None
    required: tuple[str, ...] = (BASELINE, AGENT)


# --------------------------------------------------------------------------- processes


#: Variables removed from every child's environment (see :func:`clean_env`).
DROPPED_ENV = frozenset({"PYTHONDONTWRITEBYTECODE"})


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The harness's environment without any ``AUTOLOG*`` variable, plus ``extra``.

    The baseline must not activate the agent by inheritance, and the agent must get
    exactly the settings the case gives it. ``PYTHONDONTWRITEBYTECODE`` goes too: a
    user's Python caches bytecode, and without the cache every run would recompile
    an editable install's sources and charge that to the agent.
    """
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("AUTOLOG") and k not in DROPPED_ENV
    }
    if extra:
        env.update(extra)
    return env


@dataclass(frozen=True)
class ProcessRun:
    """What one child process did."""

    wall_s: float
    maxrss_kb: int
    returncode: int
    timed_out: bool
    stdout: str
    stderr: str


def run_process(
    argv: Sequence[str], env: Mapping[str, str], cwd: Path, timeout_s: float
) -> ProcessRun:
    """Run one child and time it from spawn to exit; read its own peak RSS.

    ``os.waitid(..., WNOWAIT)`` notices the exit without reaping, so the clock stops
    at once; ``os.wait4`` then reaps the child and returns its own rusage (a delta of
    ``RUSAGE_CHILDREN`` would only give the largest child so far). Output goes to
    temporary files: no pipe can fill up, and no reader thread competes with the
    child for the CPU. A timer kills a child that runs past ``timeout_s``; the child
    stays unreaped until the timer can no longer fire, so its pid cannot be reused.
    """
    lock = threading.Lock()
    state: dict[str, object] = {"proc": None, "exited": False, "timed_out": False}

    def kill() -> None:
        with lock:
            proc = state["proc"]
            if proc is not None and not state["exited"]:
                state["timed_out"] = True
                proc.kill()  # type: ignore[attr-defined]

    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        timer = threading.Timer(timeout_s, kill)
        timer.daemon = True
        timer.start()
        start = time.perf_counter()
        try:
            proc = subprocess.Popen(
                list(argv), env=dict(env), cwd=cwd, stdin=subprocess.DEVNULL, stdout=out, stderr=err
            )
        except OSError as exc:
            timer.cancel()
            return ProcessRun(0.0, 0, 127, False, "", f"cannot start {argv[0]}: {exc}")
        with lock:
            state["proc"] = proc
        os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)
        wall = time.perf_counter() - start
        with lock:
            state["exited"] = True
        timer.cancel()
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return ProcessRun(
            wall_s=wall,
            maxrss_kb=usage.ru_maxrss,  # kilobytes on Linux
            returncode=proc.returncode,
            timed_out=bool(state["timed_out"]),
            stdout=out.read().decode(errors="replace"),
            stderr=err.read().decode(errors="replace"),
        )


def failure_message(run: ProcessRun, timeout_s: float) -> str:
    """A one-line reason for a failed run: the timeout, or the last line of stderr."""
    if run.timed_out:
        return f"timed out after {timeout_s:g} s"
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    last = lines[-1].strip() if lines else "(no output on stderr)"
    return f"exit status {run.returncode}: {last}"


def parse_report(stdout: str) -> dict[str, float]:
    """The numbers of the JSON object on the child's last non-empty stdout line."""
    lines = [line for line in stdout.splitlines() if line.strip()]
    if not lines:
        raise CaseError("the child printed no JSON report")
    try:
        data = json.loads(lines[-1])
    except json.JSONDecodeError as exc:
        raise CaseError(f"the child's last line is not JSON: {lines[-1][:120]!r}") from exc
    if not isinstance(data, dict):
        raise CaseError("the child's report is not a JSON object")
    return {
        k: float(v)
        for k, v in data.items()
        if isinstance(v, int | float) and not isinstance(v, bool)
    }


def _substitute(items: Sequence[str], run_dir: Path) -> list[str]:
    """Replace :data:`RUN_DIR` (plain text replacement: ``-c`` code may hold braces)."""
    return [s.replace(RUN_DIR, str(run_dir)) for s in items]


class _Runner:
    """Runs a case's variants: warm-up, then rounds in turn (A B A B ...)."""

    def __init__(self, case: Case, ctx: Context, progress: Callable[[str], None]) -> None:
        self.case = case
        self.ctx = ctx
        self.progress = progress
        self.case_dir = Path(tempfile.mkdtemp(prefix=f"{case.name}-", dir=ctx.tmp_root))
        self.counter = 0

    def once(
        self, variant: Variant, argv: Sequence[str], result: VariantResult | None
    ) -> str | None:
        """Run the variant once in a fresh folder; record samples unless warming up."""
        self.counter += 1
        run_dir = self.case_dir / f"{self.counter:04d}-{variant.role}"
        run_dir.mkdir()
        env_extra = dict(
            zip(variant.env, _substitute(list(variant.env.values()), run_dir), strict=True)
        )
        run = run_process(
            _substitute(argv, run_dir), clean_env(env_extra), run_dir, self.case.timeout_s
        )
        if run.returncode != 0 or run.timed_out:
            return failure_message(run, self.case.timeout_s)
        figures: dict[str, float] = {"wall_s": run.wall_s, "maxrss_kb": float(run.maxrss_kb)}
        if self.case.measure == REPORT:
            try:
                figures.update(parse_report(run.stdout))
            except CaseError as exc:
                return str(exc)
        if result is not None:
            for key, value in figures.items():
                result.samples.setdefault(key, []).append(value)
        return None

    def run(self) -> CaseResult:
        """Warm up each variant, then run the rounds; a failing variant stops early."""
        case, ctx = self.case, self.ctx
        outcome = CaseResult(case=case)
        variants = case.variants(ctx)
        rounds = ctx.runs_override or (case.quick_runs if ctx.quick else case.runs)
        for variant in variants:
            outcome.variants[variant.role] = VariantResult(role=variant.role, argv=variant.argv)
        if AGENT in outcome.variants and case.check is not None:
            outcome.variants[AGENT].error = case.check(ctx)
        for _ in range(case.warmup):
            for variant in variants:
                result = outcome.variants[variant.role]
                if result.error is None:
                    result.error = self.once(variant, variant.warmup_argv or variant.argv, None)
        self.progress(f"[{case.name}] {rounds} rounds ")
        for index in range(rounds):
            for variant in variants:
                result = outcome.variants[variant.role]
                wanted = min(variant.runs, rounds) if variant.runs else rounds
                if result.error is None and index < wanted:
                    result.error = self.once(variant, variant.argv, result)
            self.progress(".")
        self.progress("\n")
        return outcome


def run_case(case: Case, ctx: Context, progress: Callable[[str], None]) -> CaseResult:
    """Run one case end to end; never raises for a failure of the measured programs."""
    start = time.perf_counter()
    outcome = _Runner(case, ctx, progress).run()
    outcome.elapsed_s = time.perf_counter() - start
    return outcome


def evaluate(outcome: CaseResult, ctx: Context) -> list[Row]:
    """The case's rows, or one error row naming what went wrong."""
    case = outcome.case
    try:
        if outcome.error:
            raise CaseError(outcome.error)
        for role in case.required:
            outcome.get(role)
        return case.evaluate(outcome, ctx)
    except CaseError as exc:
        outcome.error = outcome.error or str(exc)
        message = f"error: {_shorten(str(exc), 70)}"
    except Exception as exc:  # a bug in a case's evaluate must not sink the others
        outcome.error = f"evaluate failed: {type(exc).__name__}: {exc}"
        message = "error: evaluate failed"
    return [
        Row(
            case.name,
            _wall_cell(outcome, BASELINE),
            message,
            "—",
            _wall_cell(outcome, MLFLOW) if MLFLOW in outcome.variants else ctx.mlflow_note or "—",
            case.target,
            "error",
        )
    ]


def _wall_cell(outcome: CaseResult, role: str) -> str:
    """A process case's wall time for a role that did run, for an error row."""
    if outcome.case.measure != PROCESS or not outcome.ok(role):
        return "—"
    return cell(outcome.variants[role].summary("wall_s"), fmt_ms)


def _shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


# --------------------------------------------------------------------------- checks


ACTIVATION_PROBE = (
    "import sys; sys.exit(0 if any(m.split('.')[0] == 'autologagent' for m in sys.modules) else 3)"
)


def agent_activation_error(ctx: Context) -> str | None:
    """Why ``AUTOLOG=1 <python>`` would not run the agent, or None when it does.

    Without this check a missing ``.pth`` would make the agent's figures identical
    to the baseline's and the verdict a meaningless "met".
    """
    key = "agent_activation_error"
    if key not in ctx.cache:
        with tempfile.TemporaryDirectory(dir=ctx.tmp_root) as tmp:
            env = clean_env({"AUTOLOG": "1", "AUTOLOG_TRACKING_URI": str(Path(tmp) / "runs")})
            run = run_process([ctx.python, "-c", ACTIVATION_PROBE], env, Path(tmp), 120)
        if run.returncode == 0:
            ctx.cache[key] = None
        elif run.returncode == 3:
            ctx.cache[key] = (
                f"AUTOLOG=1 did not load autologagent in {ctx.python} "
                "(is it installed there? pip install -e .)"
            )
        else:
            ctx.cache[key] = f"AUTOLOG=1 {ctx.python} failed, {failure_message(run, 120)}"
    return ctx.cache[key]  # type: ignore[return-value]


def mlflow_status(python: str | None) -> tuple[str | None, str]:
    """(interpreter, note): the interpreter when it can ``import mlflow``, else None."""
    if not python:
        return None, "mlflow: not installed"
    if not Path(python).exists():
        return None, f"mlflow: not installed (no interpreter {python})"
    try:
        proc = subprocess.run(
            [python, "-c", "import mlflow"],
            env=clean_env(),
            capture_output=True,
            timeout=120,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"mlflow: not installed ({exc})"
    if proc.returncode != 0:
        return None, "mlflow: not installed"
    return python, ""


# --------------------------------------------------------------------------- statistics


def summarize(values: Sequence[float]) -> Summary:
    """Median, quartiles and range; quartiles fall back to the median for one sample."""
    data = sorted(values)
    median = statistics.median(data)
    if len(data) >= 2:
        p25, _, p75 = statistics.quantiles(data, n=4, method="inclusive")
    else:
        p25 = p75 = median
    return Summary(len(data), median, p25, p75, data[0], data[-1])


def fmt_ms(seconds: float) -> str:
    """Milliseconds with precision suited to the size."""
    ms = seconds * 1000.0
    if abs(ms) >= 100:
        return f"{ms:,.0f} ms"
    if abs(ms) >= 10:
        return f"{ms:.1f} ms"
    return f"{ms:.2f} ms"


def fmt_signed_ms(seconds: float) -> str:
    """A difference in milliseconds, always signed."""
    text = fmt_ms(abs(seconds))
    return ("−" if seconds < 0 else "+") + text


def fmt_rate(per_s: float, unit: str) -> str:
    """A rate as ``1.23 M unit/s`` / ``456 k unit/s`` / ``789 unit/s``."""
    if per_s >= 1e6:
        return f"{per_s / 1e6:.2f} M {unit}/s"
    if per_s >= 1e4:
        return f"{per_s / 1e3:,.0f} k {unit}/s"
    return f"{per_s:,.0f} {unit}/s"


def fmt_mib(kb: float) -> str:
    """Kilobytes (ru_maxrss on Linux) as MiB."""
    return f"{kb / 1024:.1f} MiB"


def cell(summary: Summary, fmt: Callable[[float], str]) -> str:
    """A table cell: the median, then the spread [min–max] over the runs.

    The spread drops the unit when it is the median's (``54.9 ms [31.4–67.3]``).
    """
    median, low, high = fmt(summary.median), fmt(summary.min), fmt(summary.max)
    parts = [_NUMBER.match(text) for text in (median, low, high)]
    if all(parts) and len({m.group(2) for m in parts if m}) == 1:
        low, high = (m.group(1) for m in parts[1:] if m)
    return f"{median} [{low}–{high}]"


_NUMBER = re.compile(r"^([−+-]?[\d.,]+)(.*)$")


def verdict(met: bool) -> str:
    """The verdict column's words."""
    return "met" if met else "NOT met"


def mlflow_cell(outcome: CaseResult, ctx: Context, fmt: Callable[[VariantResult], str]) -> str:
    """The MLflow column: its figure, or why there is none."""
    if MLFLOW not in outcome.variants:
        return ctx.mlflow_note or "—"
    result = outcome.variants[MLFLOW]
    if result.error:
        return "mlflow: error (see below)"
    try:
        return fmt(result)
    except CaseError:
        return "mlflow: no figure"


# --------------------------------------------------------------------------- machine


PROBE_VERSIONS = """
import json, platform, sys
from importlib import metadata
versions = {}
for name in ("autologagent", "scikit-learn", "mlflow", "numpy"):
    try:
        versions[name] = metadata.version(name)
    except metadata.PackageNotFoundError:
        versions[name] = None
print(json.dumps({"python": platform.python_version(),
                  "implementation": platform.python_implementation(),
                  "executable": sys.executable, "packages": versions}))
"""


def probe_interpreter(python: str) -> dict[str, object] | None:
    """Python and package versions of an interpreter (read from metadata, no imports)."""
    try:
        proc = subprocess.run(
            [python, "-c", PROBE_VERSIONS],
            env=clean_env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        return json.loads(proc.stdout) if proc.returncode == 0 else None
    except (OSError, subprocess.TimeoutExpired, json.JSONDecodeError):
        return None


def _read_proc(path: str, key: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                name, _, value = line.partition(":")
                if name.strip() == key:
                    return value.strip()
    except OSError:
        return None
    return None


def _git(*args: str) -> str | None:
    try:
        proc = subprocess.run(
            ["git", "-C", str(REPO_ROOT), *args],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def _describe_interpreter(python: str) -> str:
    info = probe_interpreter(python)
    if info is None:
        return f"`{python}` (could not be probed)"
    packages = info.get("packages") or {}
    assert isinstance(packages, dict)
    listed = ", ".join(
        f"{name} {version}" if version else f"{name} not installed"
        for name, version in packages.items()
    )
    return f"`{python}`: {info['implementation']} {info['python']}; {listed}"


def machine_description(ctx: Context) -> list[tuple[str, str]]:
    """(label, text) pairs describing the machine and the interpreters measured.

    Timings mean little without the machine they came from, so RESULTS.md carries it.
    """
    cpu = _read_proc("/proc/cpuinfo", "model name") or platform.processor() or "unknown"
    cores = os.cpu_count() or 0
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = cores
    mem_kb = _read_proc("/proc/meminfo", "MemTotal")
    memory = (
        f"{int(mem_kb.split()[0]) / 1024 / 1024:.1f} GiB"
        if mem_kb and mem_kb.split()
        else "unknown"
    )
    try:
        load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        load = "unknown"
    commit = _git("rev-parse", "--short", "HEAD")
    dirty = _git("status", "--porcelain")
    items = [
        ("CPU", f"{cpu}, {cores} logical cores ({usable} usable)"),
        ("Memory", memory),
        ("OS", platform.platform()),
        ("Load average at start", load),
        ("Harness interpreter", f"{platform.python_implementation()} {platform.python_version()}"),
        ("Agent interpreter (`--python`)", _describe_interpreter(ctx.python)),
    ]
    if ctx.mlflow_python:
        items.append(
            ("MLflow interpreter (`--mlflow-python`)", _describe_interpreter(ctx.mlflow_python))
        )
    else:
        items.append(("MLflow interpreter (`--mlflow-python`)", ctx.mlflow_note))
    if commit:
        items.append(("Commit", commit + (" (with uncommitted changes)" if dirty else "")))
    return items


# --------------------------------------------------------------------------- tables


HEADERS = ("case", "baseline", "agent", "Δ / ratio", "MLflow", "target", "verdict")


def markdown_table(rows: Sequence[Row]) -> str:
    """A Markdown table padded to line up in a terminal as well."""
    body = [(r.case, r.baseline, r.agent, r.delta, r.mlflow, r.target, r.verdict) for r in rows]
    widths = [max(len(h), *(len(line[i]) for line in body)) for i, h in enumerate(HEADERS)]

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    out = [line(HEADERS), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out.extend(line(cells) for cells in body)
    return "\n".join(out)


def details(outcome: CaseResult) -> list[str]:
    """Markdown lines with every metric's order statistics, for readers who doubt."""
    lines = [
        f"### {outcome.case.name}",
        "",
        outcome.case.description,
        "",
        f"Wall time of the case: {outcome.elapsed_s:.1f} s.",
        "",
    ]
    for result in outcome.variants.values():
        lines.append(f"- **{result.role}**: `{shlex.join(result.argv)}`")
        if result.error:
            lines.append(f"  - error: {result.error}")
        for metric, values in sorted(result.samples.items()):
            s = summarize(values)
            lines.append(
                f"  - {metric}: n={s.n} median={_num(s.median)} "
                f"IQR={_num(s.p25)}–{_num(s.p75)} min={_num(s.min)} max={_num(s.max)}"
            )
    paired = _paired(outcome)
    if paired:
        lines.append(paired)
    if outcome.error and not outcome.variants:
        lines.append(f"- error: {outcome.error}")
    lines.append("")
    return lines


def _paired(outcome: CaseResult) -> str | None:
    """Round-by-round agent/baseline comparison of wall time, as a cross-check.

    Baseline and agent run back to back in each round, so the median of the per-round
    differences and ratios cancels slow drift in the machine's load; when it disagrees
    with the medians' comparison in the table, the machine was too noisy to tell.
    """
    if outcome.case.measure != PROCESS or not (outcome.ok(BASELINE) and outcome.ok(AGENT)):
        return None
    base = outcome.variants[BASELINE].samples["wall_s"]
    agent = outcome.variants[AGENT].samples["wall_s"]
    pairs = list(zip(base, agent, strict=False))
    if not pairs:
        return None
    diff = statistics.median(a - b for b, a in pairs)
    ratio = statistics.median(a / b for b, a in pairs)
    return (
        f"- paired by round (n={len(pairs)}): median difference {fmt_signed_ms(diff)}, "
        f"median ratio ×{ratio:.3f}"
    )


def _num(value: float) -> str:
    """Whole numbers in full, others to six significant digits."""
    if value.is_integer() and abs(value) < 1e15:
        return f"{int(value)}"
    return f"{value:.6g}"
