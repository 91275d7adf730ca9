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

import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor


def _count(command: list[str]) -> tuple[int, int]:
    """(main thread's instructions, every thread's) of one run of ``command``."""
    with tempfile.TemporaryDirectory() as folder:
        result = subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                "--separate-threads=yes",
                f"--callgrind-out-file={folder}/callgrind.out",
                *command,
            ],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONHASHSEED": "0"},
        )
        if result.returncode != 0:
            raise RuntimeError(result.stderr[-2000:])
        threads = {}
        for path in glob.glob(f"{folder}/callgrind.out-*"):
            with open(path, encoding="utf-8") as handle:
                found = re.search(r"^summary: (\d+)", handle.read(), re.MULTILINE)
            if found:
                threads[int(path.rsplit("-", 1)[1])] = int(found.group(1))
    return threads[1], sum(threads.values())


def main(few: int, many: int, command: list[str]) -> int:
    if shutil.which("valgrind") is None:
        print("valgrind is not installed (Debian package: valgrind)", file=sys.stderr)
        return 1
    with ThreadPoolExecutor(2) as pool:
        (main_few, all_few), (main_many, all_many) = pool.map(
            _count, [[*command, str(few)], [*command, str(many)]]
        )
    steps = many - few
    print(
        json.dumps(
            {
                "main_per_step": (main_many - main_few) / steps,
                "all_per_step": (all_many - all_few) / steps,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]))
