"""``python -m autologagent runs ...``: list, show and history, as tables or JSON.

Reading the store runs no code from it: rows are plain values, artifacts are
listed by name, never loaded. A RUNNING run whose process is gone (SIGKILL,
``os._exit``) is reported KILLED (see ``_liveness``); the store is not changed.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sqlite3
import sys
import time
from typing import Any

from autologagent import _liveness
from autologagent._store import RunNotFound, RunRecord

OK, ERROR, USAGE = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        from autologagent._cli import UsageError

        raise UsageError(message)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="autologagent runs", add_help=True)
    common = _Parser(add_help=False)
    common.add_argument("--json", action="store_true", help="machine-readable output")
    common.add_argument(
        "--uri",
        default=None,
        help="tracking URI (default: $AUTOLOG_TRACKING_URI or ./autologruns)",
    )
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    commands.add_parser("list", parents=[common], help="runs, newest first")
    show = commands.add_parser("show", parents=[common], help="one run")
    show.add_argument("run", help="a run id (or a unique prefix), or 'last'")
    history = commands.add_parser("history", parents=[common], help="a metric's points")
    history.add_argument("run", help="a run id (or a unique prefix), or 'last'")
    history.add_argument("key", help="the metric's name")
    return parser


def runs_command(args: list[str]) -> int:
    options = _parser().parse_args(args)
    from autologagent import _config
    from autologagent._store import open_store

    raw_uri = options.uri or os.environ.get("AUTOLOG_TRACKING_URI") or _config.DEFAULT_TRACKING_URI
    try:
        uri = _config.parse_tracking_uri(
            raw_uri, "--uri" if options.uri else "AUTOLOG_TRACKING_URI"
        )
    except _config.ConfigError as exc:
        sys.stderr.write(f"autologagent: error: {exc}\n")
        return USAGE
    try:
        store = open_store(uri, create=False)
    except sqlite3.Error as exc:
        sys.stderr.write(f"autologagent: error: cannot read the store at {uri}: {exc}\n")
        return ERROR
    except FileNotFoundError:
        if options.command == "list":
            _print_list([], options.json)
            return OK
        sys.stderr.write(f"autologagent: error: no runs recorded at {uri}\n")
        return ERROR
    try:
        if options.command == "list":
            _print_list([_settled(store, run) for run in store.list_runs()], options.json)
        elif options.command == "show":
            run = _liveness.settle(store.get_run(store.resolve_run_id(options.run)))
            _print_run(run, options.json)
        else:
            run_id = store.resolve_run_id(options.run)
            points = store.metric_history(run_id, options.key)
            if not points and options.key not in store.get_run(run_id).metrics:
                raise RunNotFound(f"run {run_id} has no metric {options.key!r}")
            _print_history(points, options.json)
    except RunNotFound as exc:
        sys.stderr.write(f"autologagent: error: {exc}\n")
        return ERROR
    except sqlite3.Error as exc:
        sys.stderr.write(f"autologagent: error: cannot read the store at {uri}: {exc}\n")
        return ERROR
    except (OSError, ValueError) as exc:  # a tracking server down, refusing, or rejecting
        sys.stderr.write(f"autologagent: error: {exc}\n")
        return ERROR
    finally:
        store.close()
    return OK


def _settled(store: Any, run: RunRecord) -> RunRecord:
    """A RUNNING run as ``runs show`` reports it: KILLED once its process is gone."""
    if run.status != "RUNNING":
        return run
    tags = store.get_run(run.run_id).tags
    if _liveness.PROCESS_TAG in tags:
        run.tags = tags
        _liveness.settle(run)
    return run


def _json_number(value: float) -> Any:
    """JSON has no NaN or infinity: those are written as the strings Python prints."""
    if math.isnan(value) or math.isinf(value):
        return str(value)
    return value


def _summary(run: RunRecord) -> dict[str, Any]:
    return {
        "run_id": run.run_id,
        "experiment": run.experiment,
        "name": run.name,
        "status": run.status,
        "start_time": run.start_time,
        "end_time": run.end_time,
        "parent_run_id": run.parent_run_id,
    }


def run_as_json(run: RunRecord) -> dict[str, Any]:
    """The JSON shape of ``runs show`` (DESIGN.md)."""
    data = _summary(run)
    data["params"] = dict(run.params)
    data["metrics"] = {key: _json_number(value) for key, value in run.metrics.items()}
    data["tags"] = dict(run.tags)
    data["artifacts"] = list(run.artifacts)
    return data


def _when(ms: int | None) -> str:
    if ms is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ms / 1000))


def _duration(run: RunRecord) -> str:
    if run.start_time is None or run.end_time is None:
        return "-"
    return f"{(run.end_time - run.start_time) / 1000:.1f}s"


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows)
    return "\n".join(line.rstrip() for line in lines)


def _print_list(runs: list[RunRecord], as_json: bool) -> None:
    if as_json:
        print(json.dumps([_summary(run) for run in runs], indent=2))
        return
    if not runs:
        print("no runs yet")
        return
    rows = [["RUN ID", "NAME", "STATUS", "STARTED", "DURATION", "EXPERIMENT", "PARENT"]]
    for run in runs:
        rows.append(
            [
                run.run_id[:12],
                run.name,
                run.status,
                _when(run.start_time),
                _duration(run),
                run.experiment,
                (run.parent_run_id or "")[:12],
            ]
        )
    print(_table(rows))


def _print_run(run: RunRecord, as_json: bool) -> None:
    if as_json:
        print(json.dumps(run_as_json(run), indent=2))
        return
    print(f"run        {run.run_id}")
    print(f"name       {run.name}")
    print(f"experiment {run.experiment}")
    print(f"status     {run.status}")
    print(f"started    {_when(run.start_time)}")
    print(f"ended      {_when(run.end_time)}  ({_duration(run)})")
    if run.parent_run_id:
        print(f"parent     {run.parent_run_id}")
    for title, mapping in (("params", run.params), ("metrics", run.metrics), ("tags", run.tags)):
        print(f"\n{title} ({len(mapping)})")
        for key, value in mapping.items():
            print(f"  {key} = {value}")
    print(f"\ndatasets ({len(run.inputs)})")
    for dataset in run.inputs:
        print(f"  {dataset['name']} ({dataset['context']}) digest {dataset['digest']}")
        print(f"    {dataset['profile']}")
    print(f"\nartifacts ({len(run.artifacts)})")
    for path in run.artifacts:
        print(f"  {path}")


def _print_history(points: list[Any], as_json: bool) -> None:
    if as_json:
        print(
            json.dumps(
                [
                    {"step": p.step, "value": _json_number(p.value), "timestamp": p.timestamp}
                    for p in points
                ],
                indent=2,
            )
        )
        return
    rows = [["STEP", "VALUE", "TIME"]]
    rows += [[str(p.step), repr(p.value), _when(p.timestamp)] for p in points]
    print(_table(rows))
