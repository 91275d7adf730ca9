"""Run a command under valgrind's callgrind and report its instruction count as JSON.

Instructions executed do not depend on what else the machine is doing, so a
ratio of counts settles a few-percent difference that wall times on a shared,
noisy machine cannot. Usage: ``python _callgrind_child.py COMMAND...``.
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

MISSING = "valgrind is not installed (Debian package: valgrind)"


def count_by_thread(command: list[str]) -> dict[int, int]:
    """Instructions ``command`` executes, by thread (1 is the main thread).

    Raises ``RuntimeError`` with valgrind's last output when the run fails.
    """
    with tempfile.TemporaryDirectory() as folder:
        result = subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                "--separate-threads=yes",
                f"--callgrind-out-file={os.path.join(folder, 'callgrind.out')}",
                *command,
            ],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONHASHSEED": "0"},
        )
        threads = {}
        for path in glob.glob(os.path.join(folder, "callgrind.out-*")):
            with open(path, encoding="utf-8") as handle:
                found = re.search(r"^summary: (\d+)", handle.read(), re.MULTILINE)
            if found:
                threads[int(path.rsplit("-", 1)[1])] = int(found.group(1))
    if result.returncode != 0 or 1 not in threads:
        raise RuntimeError(result.stderr[-2000:])
    return threads


def main(command: list[str]) -> int:
    if shutil.which("valgrind") is None:
        print(MISSING, file=sys.stderr)
        return 1
    try:
        threads = count_by_thread(command)
    except RuntimeError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(json.dumps({"instructions": sum(threads.values())}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
