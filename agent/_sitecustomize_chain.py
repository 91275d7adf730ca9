"""What the container door's ``sitecustomize.py`` does, kept out of that file.

It activates the agent, then finds the ``sitecustomize`` module that would have
been imported without our folder on the path (Debian's, a virtualenv's, the
user's) and executes it under the name ``sitecustomize``, so nothing is lost.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import sys


def activate_and_chain(our_file: str) -> None:
    from autologagent._startup import bootstrap_from_startup

    bootstrap_from_startup()
    _run_shadowed_sitecustomize(os.path.dirname(os.path.abspath(our_file)))


def _run_shadowed_sitecustomize(our_folder: str) -> None:
    others = [entry for entry in sys.path if os.path.abspath(entry or os.getcwd()) != our_folder]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", others)
    if spec is None or spec.loader is None:
        return
    module = importlib.util.module_from_spec(spec)
    current = sys.modules.get("sitecustomize")
    sys.modules["sitecustomize"] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # as site.py does: report, go on
        sys.stderr.write(f"Error in sitecustomize; set PYTHONVERBOSE for traceback:\n{exc!r}\n")
        if current is not None:
            sys.modules["sitecustomize"] = current
