"""Child process of the ``context`` cases: what a run's context costs, timed inside.

``python _child_context.py runs {plain|bare|agent} N``: N small scikit-learn
models fitted in a loop; ``agent`` wraps each fit in ``autologagent.start_run()``,
so every fit is a run that gathers its context (source and git tags, packages,
system samples) and nothing else (without ``AUTOLOG``, sklearn is not patched:
the figures are the context's and the run's, not the sklearn integration's);
``bare`` does the same with the context hooks replaced by no-ops, for a run's
cost without its context. The time spent inside the two context hooks on this
thread is measured too.
Prints: ``per_run_s`` (median wall time of one iteration, the first left out),
``first_run_s``, ``hooks_s`` (median time in the hooks per run, first left out),
``hooks_first_s`` and ``loop_s``.

``python _child_context.py sleep {on|off} SECONDS``: one run that sleeps, with
the system-metrics sampler on or off; prints ``cpu_s``, the process's CPU time
(every thread) over the sleep, and ``samples``, the points the run got.
"""

from __future__ import annotations

import json
import statistics
import sys
import time


def _fit_loop(mode: str, n: int) -> dict[str, float]:
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression

    X, y = make_classification(n_samples=200, n_features=10, random_state=0)
    hooks: list[float] = []
    if mode == "bare":  # runs without their context: the hooks do nothing
        import autologagent
        from autologagent import _context

        _context.run_started = lambda run: None  # type: ignore[assignment]
        _context.run_ending = lambda run, status: None  # type: ignore[assignment]
    elif mode == "agent":
        import autologagent
        from autologagent import _context

        for name in ("run_started", "run_ending"):
            original = getattr(_context, name)

            def timed(*args: object, _original: object = original) -> None:
                start = time.perf_counter()
                try:
                    _original(*args)  # type: ignore[operator]
                finally:
                    hooks.append(time.perf_counter() - start)

            setattr(_context, name, timed)
    times = []
    loop_start = time.perf_counter()
    for index in range(n):
        start = time.perf_counter()
        if mode != "plain":
            with autologagent.start_run(run_name=f"fit-{index}"):
                LogisticRegression(C=0.1 * (index + 1), max_iter=200).fit(X, y)
        else:
            LogisticRegression(C=0.1 * (index + 1), max_iter=200).fit(X, y)
        times.append(time.perf_counter() - start)
    loop = time.perf_counter() - loop_start
    per_run_hooks = [hooks[i] + hooks[i + 1] for i in range(0, len(hooks) - 1, 2)]
    return {
        "per_run_s": statistics.median(times[1:]),
        "first_run_s": times[0],
        "hooks_s": statistics.median(per_run_hooks[1:]) if per_run_hooks else 0.0,
        "hooks_first_s": per_run_hooks[0] if per_run_hooks else 0.0,
        "loop_s": loop,
    }


def _sleep(seconds: float) -> dict[str, float]:
    import autologagent

    with autologagent.start_run(run_name="sleep") as run:
        time.sleep(0.2)  # the start sample (and psutil's import) are not the figure
        cpu_start = time.process_time()
        time.sleep(seconds)
        cpu = time.process_time() - cpu_start
    autologagent.flush()
    from autologagent import _writer

    samples = len(
        _writer.store().metric_history(run.info.run_id, "system/system_memory_usage_megabytes")
    )
    return {"cpu_s": cpu, "samples": float(samples)}


def main() -> None:
    kind, mode, size = sys.argv[1], sys.argv[2], sys.argv[3]
    if kind == "runs":
        report = _fit_loop(mode, int(size))
    else:
        report = _sleep(float(size))
    print(json.dumps(report))


if __name__ == "__main__":
    main()
