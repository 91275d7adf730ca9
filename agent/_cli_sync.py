"""``python -m autologagent sync`` and ``export``: runs onto an MLflow tracking server.

``sync`` replays what programs spooled while the server could not take it
(``_spool``), oldest first, and uploads the artifacts they staged; a spool file
still held by a running process is left to that process.

``export --to URL [RUN ...]`` copies runs of the embedded store (all of them, or
those named) to a server: the same operations the live agent sends, so an
exported run looks like one logged there directly. Exporting again changes
nothing: the run is found again by its ``autolog.run_id`` tag, the server keeps
one copy of an identical metric point, and an artifact already uploaded (as
recorded beside the spool) is not sent twice.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

OK, ERROR, USAGE = 0, 1, 2


def _parser(prog: str) -> argparse.ArgumentParser:
    from autologagent._cli_runs import _Parser

    return _Parser(prog=prog)


def _error(message: str) -> int:
    sys.stderr.write(f"autologagent: error: {message}\n")
    return ERROR


def _server_uri(raw: str | None, source: str) -> str:
    """A checked http(s) URI; a one-line usage error otherwise."""
    from autologagent import _config
    from autologagent._cli import UsageError

    if not raw:
        raise UsageError(f"{source} needs an MLflow tracking server: http(s)://host:port")
    try:
        uri = _config.parse_tracking_uri(raw, source)
    except _config.ConfigError as exc:
        raise UsageError(str(exc)) from None
    if not _config.is_server_uri(uri):
        raise UsageError(f"{source} must be an MLflow tracking server: http(s)://host:port")
    return uri


def sync_command(args: list[str]) -> int:
    """Replay every spool file of the server, then upload the staged artifacts."""
    parser = _parser("autologagent sync")
    parser.add_argument("--uri", default=None, help="the server (default: $AUTOLOG_TRACKING_URI)")
    options = parser.parse_args(args)
    source = "--uri" if options.uri else "AUTOLOG_TRACKING_URI"
    uri = _server_uri(options.uri or os.environ.get("AUTOLOG_TRACKING_URI"), source)

    from autologagent import _spool
    from autologagent._mlflow_rest import ServerRefused, ServerUnreachable
    from autologagent._mlflow_store import MlflowStore

    store = MlflowStore(uri)
    sent = files = busy = uploaded = 0
    try:
        for path in _spool.spool_files(store.folder):
            handle = _spool.try_lock(path)
            if handle is None:
                busy += 1
                print(f"{path}: a running program still writes it; it sends it itself")
                continue
            try:
                sent += _spool.replay_file(path, store.send)
                _spool.remove(path)
                files += 1
            except (ServerUnreachable, ServerRefused) as exc:
                left = _spool.count_left(path)
                return _error(f"{exc}; {left} operation(s) are still in {path}")
            finally:
                handle.close()
        staging = store.staging
        for run_id in sorted(os.listdir(staging)) if os.path.isdir(staging) else []:
            try:
                uploaded += store.upload_run_artifacts(run_id, os.path.join(staging, run_id))
            except (ServerUnreachable, ServerRefused) as exc:
                return _error(str(exc))
    finally:
        store.close()
    print(
        f"sent {sent} operation(s) from {files} spool file(s) and {uploaded} artifact file(s) "
        f"to {store.display_uri}" + (f"; {busy} file(s) in use left alone" if busy else "")
    )
    return OK


def export_command(args: list[str]) -> int:
    """Copy runs of the embedded store to a server, with a progress bar."""
    parser = _parser("autologagent export")
    parser.add_argument("--to", required=True, help="the server: http(s)://host:port")
    parser.add_argument(
        "--uri", default=None, help="the embedded store (default: $AUTOLOG_TRACKING_URI)"
    )
    parser.add_argument("runs", nargs="*", help="run ids (or unique prefixes); default: all")
    options = parser.parse_args(args)
    target = _server_uri(options.to, "--to")

    from autologagent import _config
    from autologagent._mlflow_rest import ServerRefused, ServerUnreachable
    from autologagent._mlflow_store import MlflowStore
    from autologagent._store import RunNotFound, open_store

    raw = options.uri or os.environ.get("AUTOLOG_TRACKING_URI") or ""
    if not raw or _config.is_server_uri(raw):
        raw = _config.DEFAULT_TRACKING_URI
    try:
        local_uri = _config.parse_tracking_uri(raw, "--uri")
        local = open_store(local_uri, create=False)
    except _config.ConfigError as exc:
        sys.stderr.write(f"autologagent: error: {exc}\n")
        return USAGE
    except FileNotFoundError:
        return _error(f"no runs recorded at {raw}")
    server = MlflowStore(target)
    try:
        if options.runs:
            run_ids = [local.resolve_run_id(ref) for ref in options.runs]
        else:  # oldest first, so that a parent is there before its children
            run_ids = [run.run_id for run in reversed(local.list_runs())]
        progress = _Progress(len(run_ids), target)
        for run_id in run_ids:
            _export_run(local, server, run_id)
            progress.advance()
        progress.done()
    except RunNotFound as exc:
        return _error(str(exc))
    except (ServerUnreachable, ServerRefused) as exc:
        sys.stderr.write("\n")
        return _error(str(exc))
    finally:
        server.close()
        local.close()
    return OK


def _export_run(local: Any, server: Any, run_id: str) -> None:
    from autologagent._mlflow_store import log_operations

    record = local.get_run(run_id)
    server.send(
        {
            "op": "start",
            "run": run_id,
            "experiment": record.experiment,
            "name": record.name,
            "start": record.start_time or 0,
            "parent": record.parent_run_id,
            "status": "RUNNING",
        }
    )
    metrics = [
        [key, point.value, point.step, point.timestamp]
        for key in record.metrics
        for point in local.metric_history(run_id, key)
    ]
    params = [[key, value] for key, value in record.params.items()]
    tags = [[key, value] for key, value in record.tags.items()]
    for op in log_operations(run_id, params, tags, metrics):
        server.send(op)
    if record.inputs:
        datasets = [
            [
                d["name"],
                d["digest"],
                d["source_type"],
                d["source"],
                d["schema"],
                d["profile"],
                d["context"],
            ]
            for d in record.inputs
        ]
        server.send({"op": "inputs", "run": run_id, "datasets": datasets})
    if record.status != "RUNNING":
        end = record.end_time or record.start_time or 0
        server.send(
            {"op": "end", "run": run_id, "status": record.status, "end": end, "only": False}
        )
    manifest = os.path.join(server.folder, "exported", f"{run_id}.json")
    server.upload_run_artifacts(run_id, local.artifact_dir(run_id), manifest_path=manifest)


class _Progress:
    """A one-line progress bar on stderr: ``exporting [####......] 3/10 runs``."""

    WIDTH = 30

    def __init__(self, total: int, target: str) -> None:
        from autologagent._mlflow_rest import display_uri

        self.total = total
        self.count = 0
        self.target = display_uri(target)
        self._draw()

    def _draw(self) -> None:
        filled = self.WIDTH * self.count // self.total if self.total else self.WIDTH
        bar = "#" * filled + "." * (self.WIDTH - filled)
        sys.stderr.write(f"\rexporting to {self.target} [{bar}] {self.count}/{self.total} runs")
        sys.stderr.flush()

    def advance(self) -> None:
        self.count += 1
        self._draw()

    def done(self) -> None:
        sys.stderr.write("\n")
        print(f"exported {self.count} run(s) to {self.target}")
