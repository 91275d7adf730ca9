"""Run a command under valgrind's callgrind and report its instruction count as JSON.

Instructions executed do not depend on what else the machine is doing, so a
ratio of counts settles a few-percent difference that wall times on a shared,
noisy machine cannot. Usage: ``python _callgrind_child.py COMMAND...``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile


def main(command: list[str]) -> int:
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        print("valgrind is not installed (Debian package: valgrind)", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as folder:
        result = subprocess.run(
            [
                valgrind,
                "--tool=callgrind",
                f"--callgrind-out-file={os.path.join(folder, 'callgrind.out')}",
                *command,
            ],
            capture_output=True,
            text=True,
        )
    found = re.search(r"Collected\s*:\s*(\d+)", result.stderr)
    if result.returncode != 0 or found is None:
        print(result.stderr[-2000:], file=sys.stderr)
        return 1
    print(json.dumps({"instructions": int(found.group(1))}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
