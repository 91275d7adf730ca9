"""Instructions a step costs, by callgrind: a command run for two step counts, differenced.

Usage: ``python _callgrind_steps.py FEW MANY COMMAND...``; the step count is
appended to COMMAND. Both runs go at once (one core each), each thread counted
apart. Prints ``{"main_per_step": ..., "all_per_step": ...}``: the main (training)
thread's instructions per step, and every thread's.

The main thread's figure is the one that compares with a real run: under
callgrind a step takes about fifty times as long, so work that happens a given
number of times a second (the writer's flush, the system metrics sampler) lands
on fifty times fewer steps than in a real run, and inflates the all-threads figure.
"""

from __future__ import annotations

import json
import shutil
import sys
from concurrent.futures import ThreadPoolExecutor

from _callgrind_child import MISSING, count_by_thread


def main(few: int, many: int, command: list[str]) -> int:
    if shutil.which("valgrind") is None:
        print(MISSING, file=sys.stderr)
        return 1
    with ThreadPoolExecutor(2) as pool:
        counts_few, counts_many = pool.map(
            count_by_thread, [[*command, str(few)], [*command, str(many)]]
        )
    steps = many - few
    print(
        json.dumps(
            {
                "main_per_step": (counts_many[1] - counts_few[1]) / steps,
                "all_per_step": (sum(counts_many.values()) - sum(counts_few.values())) / steps,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]))
