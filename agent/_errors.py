"""The agent's one error boundary for its own failures.

The user's exceptions always pass through untouched. The agent's own errors are
written once per place to stderr as a one-line warning (never through the
``warnings`` module, whose filters a program may turn into exceptions), not at all
when ``AUTOLOG_SILENT`` is true, and raised when ``AUTOLOG_TESTING`` is true so
that the test suite sees them.
"""

from __future__ import annotations

import os
import sys
import threading

_reported: set[str] = set()
_lock = threading.RLock()  # re-entrant: a SIGTERM handler may warn mid-warning


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def testing() -> bool:
    return _flag("AUTOLOG_TESTING")


def warn(message: str, key: str | None = None) -> None:
    """Write ``autologagent: warning: <message>`` once per key to stderr."""
    if _flag("AUTOLOG_SILENT"):
        return
    key = key or message
    with _lock:
        if key in _reported:
            return
        _reported.add(key)
    try:
        sys.stderr.write(f"autologagent: warning: {message}\n")
        sys.stderr.flush()
    except Exception:  # a closed or missing stderr must not break the program
        pass


def report(exc: BaseException, where: str) -> None:
    """Report an error of the agent's own; raise it instead under AUTOLOG_TESTING."""
    if testing():
        raise exc
    first_line = str(exc).splitlines()[0] if str(exc) else ""
    warn(f"{where} failed ({type(exc).__name__}: {first_line}); training goes on", key=where)
