"""Entry of the ``AUTOLOG=1`` (``.pth``) and ``sitecustomize`` doors.

Runs inside the interpreter's start-up, before the user's program: it must never
raise. A bad configuration value is one warning line, and the agent stays off.
"""

import sys

# site.py may read a virtual environment's .pth files twice (CPython 3.11 does):
# the second call must not warn again.
_started = False


def bootstrap_from_startup() -> None:
    """Activate the agent if ``AUTOLOG`` asks for it and the configuration is valid."""
    global _started
    if _started:
        return
    _started = True
    try:
        from autologagent import _bootstrap, _config

        try:
            if not _config.agent_requested():
                return
            loaded = _config.load_from_environment()
        except _config.ConfigError as exc:
            sys.stderr.write(f"autologagent: warning: {exc}; the agent is off\n")
            return
        _bootstrap.bootstrap(loaded)
    except Exception as exc:  # never break the interpreter's start-up
        try:
            sys.stderr.write(
                f"autologagent: warning: could not start ({type(exc).__name__}: {exc}); "
                "the agent is off\n"
            )
        except Exception:
            pass
