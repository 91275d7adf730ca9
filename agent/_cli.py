"""The command line: the ``python -m autologagent`` door and the ``runs`` commands.

``main()`` is the one place that turns errors into messages and exit statuses.

    python -m autologagent [agent options] train.py [args]
    python -m autologagent [agent options] -m pkg.module [args]
    python -m autologagent runs list|show RUN|history RUN KEY [--json] [--uri URI]
    python -m autologagent sitecustomize
"""

from __future__ import annotations

import os
import sys

OK = 0
ERROR = 1
USAGE = 2  # bad arguments, bad configuration, no such script: before the script runs

USAGE_TEXT = """\
usage: python -m autologagent [agent options] SCRIPT.py [args ...]
       python -m autologagent [agent options] -m MODULE [args ...]
       python -m autologagent runs list [--json] [--uri URI]
       python -m autologagent runs show RUN [--json] [--uri URI]     (RUN: a run id or 'last')
       python -m autologagent runs history RUN KEY [--json] [--uri URI]
       python -m autologagent sync [--uri http(s)://HOST:PORT]   (replay the spool)
       python -m autologagent export --to http(s)://HOST:PORT [--uri URI] [RUN ...]
       python -m autologagent ui [--uri URI] [--host 127.0.0.1] [--port 5050]   (web UI)
       python -m autologagent sitecustomize

agent options (each also an environment variable):
  --uri URI                       AUTOLOG_TRACKING_URI: a folder, sqlite:///path.db, or
                                  http(s)://host:port (an MLflow tracking server)
  --experiment NAME               AUTOLOG_EXPERIMENT
  --disable LIST                  AUTOLOG_DISABLE: integrations to leave alone (sklearn)
  --log-models BOOL               AUTOLOG_LOG_MODELS
  --log-datasets BOOL             AUTOLOG_LOG_DATASETS
  --max-tuning-runs N             AUTOLOG_MAX_TUNING_RUNS
  --log-every-n-steps N           AUTOLOG_LOG_EVERY_N_STEPS
  --system-metrics BOOL           AUTOLOG_SYSTEM_METRICS
  --system-metrics-interval S     AUTOLOG_SYSTEM_METRICS_INTERVAL
  --silent                        AUTOLOG_SILENT: no warnings from the agent
"""

# agent option -> environment variable
AGENT_OPTIONS = {
    "--uri": "AUTOLOG_TRACKING_URI",
    "--experiment": "AUTOLOG_EXPERIMENT",
    "--disable": "AUTOLOG_DISABLE",
    "--log-models": "AUTOLOG_LOG_MODELS",
    "--log-datasets": "AUTOLOG_LOG_DATASETS",
    "--max-tuning-runs": "AUTOLOG_MAX_TUNING_RUNS",
    "--log-every-n-steps": "AUTOLOG_LOG_EVERY_N_STEPS",
    "--system-metrics": "AUTOLOG_SYSTEM_METRICS",
    "--system-metrics-interval": "AUTOLOG_SYSTEM_METRICS_INTERVAL",
    "--silent": "AUTOLOG_SILENT",
}
FLAG_OPTIONS = {"--silent"}


class UsageError(Exception):
    """Bad command-line arguments; the message is one line."""


def _error(message: str) -> None:
    sys.stderr.write(f"autologagent: error: {message}\n")


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        if not args or args[0] in ("-h", "--help"):
            sys.stdout.write(USAGE_TEXT)
            return OK if args else USAGE
        if args[0] == "--version":
            from autologagent import __version__

            sys.stdout.write(f"autologagent {__version__}\n")
            return OK
        if args[0] in ("sync", "export"):
            from autologagent._cli_sync import export_command, sync_command

            return sync_command(args[1:]) if args[0] == "sync" else export_command(args[1:])
        if args[0] == "ui":
            from autologagent._ui_server import ui_command

            return ui_command(args[1:])
        if args[0] == "runs":
            from autologagent._cli_runs import runs_command

            return runs_command(args[1:])
        if args[0] == "sitecustomize":
            if len(args) > 1:
                raise UsageError("sitecustomize takes no arguments")
            return _print_sitecustomize_folder()
        return _run_program(args)
    except UsageError as exc:
        _error(str(exc))
        return USAGE
    except BrokenPipeError:  # `... | head`: the reader has gone, as for any Unix tool
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return ERROR


def _print_sitecustomize_folder() -> int:
    import autologagent._sitecustomize as folder_package

    sys.stdout.write(os.path.dirname(os.path.abspath(folder_package.__file__ or "")) + "\n")
    return OK


def _parse_agent_options(args: list[str]) -> tuple[dict[str, str], list[str]]:
    """Split ``[agent options] target ...``; return (environment settings, the rest)."""
    settings: dict[str, str] = {}
    index = 0
    while index < len(args):
        arg = args[index]
        if arg == "-m" or not arg.startswith("-") or arg == "-":
            break
        if arg == "--":
            index += 1
            break
        name, has_value, value = arg.partition("=")
        if name not in AGENT_OPTIONS:
            accepted = ", ".join(sorted(AGENT_OPTIONS))
            raise UsageError(f"unknown agent option {name!r}: expected one of {accepted}")
        if not has_value:
            if name in FLAG_OPTIONS:
                value = "true"
            else:
                index += 1
                if index >= len(args):
                    raise UsageError(f"agent option {name} needs a value")
                value = args[index]
        settings[AGENT_OPTIONS[name]] = value
        index += 1
    return settings, args[index:]


def _run_program(args: list[str]) -> int:
    from autologagent import _config, _execfile

    settings, rest = _parse_agent_options(args)
    if not rest:
        raise UsageError("no script or -m module to run; see --help")
    os.environ.update(settings)
    os.environ["AUTOLOG"] = "1"
    try:
        loaded = _config.load_from_environment()
    except _config.ConfigError as exc:
        _error(str(exc))
        return USAGE
    try:
        if rest[0] == "-m":
            if len(rest) < 2:
                raise UsageError("-m needs a module name")
            code, main_module = _execfile.prepare_module(rest[1], rest[2:])
        else:
            code, main_module = _execfile.prepare_script(rest[0], rest[1:])
    except _execfile.NoSource as exc:
        _error(str(exc))
        return USAGE
    except _execfile.UncaughtException as wrapped:  # a SyntaxError: as python prints it
        sys.excepthook(type(wrapped.exc), wrapped.exc, None)
        return ERROR

    from autologagent import _bootstrap, _runs

    _exit_by_sigint_armed = _arm_exit_by_sigint()
    try:
        _bootstrap.bootstrap(loaded)
    except Exception as exc:  # the program runs even if the agent cannot
        _error(f"could not start the agent ({type(exc).__name__}: {exc}); running without it")
    try:
        _execfile.run(code, main_module)
    except SystemExit as exc:
        _runs.note_exit_exception(exc)
        raise
    except _execfile.UncaughtException as wrapped:
        error = wrapped.exc
        _runs.note_exit_exception(error)
        sys.last_type, sys.last_value, sys.last_traceback = type(error), error, error.__traceback__
        sys.excepthook(type(error), error, error.__traceback__)
        if isinstance(error, KeyboardInterrupt):
            _exit_by_sigint_armed[0] = True
            return 130
        return ERROR
    return OK


def _arm_exit_by_sigint() -> list[bool]:
    """As python does on an uncaught Ctrl-C: after atexit, die of SIGINT (status -2)."""
    import atexit

    armed = [False]

    def _die_of_sigint() -> None:
        if not armed[0]:
            return
        import signal

        from autologagent import _bootstrap

        if _bootstrap.core_ready:
            _bootstrap.at_exit()  # idempotent; it may be registered after this handler

        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except Exception:
            pass
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)

    atexit.register(_die_of_sigint)  # registered first, so it runs after every other
    return armed
