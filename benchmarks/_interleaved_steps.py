"""The hooks' cost per PyTorch step, plain and agent processes timed in turns.

Usage: ``python _interleaved_steps.py SETS ROUNDS STEPS PYTHON LOOP KIND``. For
each of SETS sets, one plain process (``PYTHON LOOP blocks STEPS KIND``, KIND the
model: ``scalar`` or ``mlp``) and one under
``python -m autologagent`` start, wait out the agent's one-time work, then run
ROUNDS blocks of STEPS steps each, in turns (which one goes first
alternates). Prints ``{"plain_us": ..., "agent_us": ..., "diff_us": ...,
"diff_min_us": ..., "diff_max_us": ...}``: the median time of a step of each, and
the median over the sets of each set's median paired difference.

Why in turns: on a shared VM the speed of a step drifts by a fifth from one
second to the next, and two processes run one after the other see different
machines. Blocks of a tenth of a second each, alternated, see the same one; and
a new pair of processes per set averages out where each process's memory
happens to lie (which alone moves a step by a few microseconds).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time

SETTLE_S = 3.0  # past the agent's one-time work for a new run (git facts at 2 s)


def _start(argv: list[str]) -> subprocess.Popen[str]:
    process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    line = process.stdout.readline() if process.stdout else ""
    if line.strip() != "ready":
        process.kill()
        raise SystemExit(f"{argv[0]} did not start its loop: {line!r}")
    return process


def _block(process: subprocess.Popen[str]) -> float:
    assert process.stdin is not None and process.stdout is not None
    process.stdin.write("go\n")
    process.stdin.flush()
    return float(process.stdout.readline())


def main(sets: int, rounds: int, steps: int, python: str, loop: str, kind: str) -> int:
    diffs, plain_all, agent_all = [], [], []
    for index in range(sets):
        child = [loop, "blocks", str(steps), kind]
        plain = _start([python, *child])
        agent = _start([python, "-m", "autologagent", *child])
        time.sleep(SETTLE_S)
        plain_s, agent_s = [], []
        for turn in range(rounds):
            if (turn + index) % 2 == 0:
                plain_s.append(_block(plain))
                agent_s.append(_block(agent))
            else:
                agent_s.append(_block(agent))
                plain_s.append(_block(plain))
        for process in (plain, agent):
            assert process.stdin is not None
            process.stdin.close()
            process.wait()
        per_step = 1e6 / steps
        pairs = zip(agent_s, plain_s, strict=True)
        diffs.append(statistics.median((a - p) * per_step for a, p in pairs))
        plain_all += [p * per_step for p in plain_s]
        agent_all += [a * per_step for a in agent_s]
    print(
        json.dumps(
            {
                "plain_us": statistics.median(plain_all),
                "agent_us": statistics.median(agent_all),
                "diff_us": statistics.median(diffs),
                "diff_min_us": min(diffs),
                "diff_max_us": max(diffs),
            }
        )
    )
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sets, rounds, steps = (int(arg) for arg in sys.argv[1:4])
    sys.exit(main(sets, rounds, steps, *sys.argv[4:7]))
