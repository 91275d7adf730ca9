"""What the web UI reads from the store: read-only SQLite queries, answers as plain dicts.

The database is opened with ``mode=ro`` (and ``PRAGMA query_only``), one connection
per request: the UI can never write to the store, and a store that training
processes create or grow while the UI runs is simply read afresh each time.
Artifacts are listed and read as files under the run's own artifact folder only.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import threading
import urllib.parse
from typing import Any

from autologagent._ui_filter import compile_filter

SOURCE_TAG = "mlflow.source.name"
COMMIT_TAG = "mlflow.source.git.commit"
SYSTEM_PREFIX = "system/"
# Metric points drawn per chart at most (each bucket keeps its min and max: two points).
DEFAULT_CHART_BUCKETS = 1000
MAX_CHART_BUCKETS = 20000
PREVIEW_BYTES = 256 * 1024


class NotFound(LookupError):
    """No such run, metric or artifact; the message is one line."""


class BadRequest(ValueError):
    """A request the UI refuses (bad filter, bad artifact path); the message is one line."""


def connect(database: str) -> sqlite3.Connection | None:
    """A read-only connection, or None when there is no store (yet)."""
    if not os.path.exists(database):
        return None
    uri = "file:" + urllib.parse.quote(os.path.abspath(database)) + "?mode=ro"
    connection = sqlite3.connect(uri, uri=True, timeout=10.0, check_same_thread=False)
    connection.execute("PRAGMA query_only = 1")
    connection.execute("PRAGMA busy_timeout = 10000")
    return connection


def _number(value: float | None, is_nan: int = 0) -> Any:
    """JSON has no NaN or infinity: NaN becomes None, infinities the strings Python prints."""
    if is_nan or value is None:
        return None
    if math.isinf(value):
        return str(value)
    return value


def settled_status(connection: sqlite3.Connection, run_id: str, status: str) -> str:
    """The status a reader should see (as ``runs show`` does): a RUNNING run whose
    process is gone (SIGKILL, ``os._exit``) is KILLED; the store is not changed."""
    if status != "RUNNING":
        return status
    from autologagent import _liveness

    found = connection.execute(
        "SELECT value FROM tags WHERE run_id = ? AND key = ?", (run_id, _liveness.PROCESS_TAG)
    ).fetchone()
    if found and found[0] and _liveness.owner_gone(found[0]):
        return "KILLED"
    return status


def experiments(connection: sqlite3.Connection | None) -> list[dict[str, Any]]:
    if connection is None:
        return []
    rows = connection.execute(
        "SELECT e.experiment_id, e.name, COUNT(r.run_id) FROM experiments e "
        "LEFT JOIN runs r ON r.experiment_id = e.experiment_id "
        "GROUP BY e.experiment_id ORDER BY e.name"
    ).fetchall()
    return [{"experiment_id": row[0], "name": row[1], "runs": row[2]} for row in rows]


def _group_by_run(rows: Any, into: dict[str, dict[str, Any]], field: str) -> None:
    for run_id, key, value in rows:
        row = into.get(run_id)
        if row is not None:
            row[field][key] = value


# One row per run; its params and latest metrics come as JSON objects built by SQLite
# (json_group_object over the primary-key index), which is several times faster for
# a thousand runs than assembling them in Python row by row.
_TABLE_QUERY = """
SELECT r.run_id, e.name, r.name, r.status, r.start_time, r.end_time, r.parent_run_id,
    (SELECT json_group_object(p.key, p.value) FROM params p WHERE p.run_id = r.run_id),
    (SELECT json_group_object(m.key, m.value) FROM latest_metrics m WHERE m.run_id = r.run_id),
    (SELECT t.value FROM tags t WHERE t.run_id = r.run_id AND t.key = 'mlflow.source.name'),
    (SELECT t.value FROM tags t WHERE t.run_id = r.run_id AND t.key = 'mlflow.source.git.commit')
FROM runs r JOIN experiments e ON e.experiment_id = r.experiment_id
"""
DEFAULT_PARAM_COLUMNS = 6
DEFAULT_METRIC_COLUMNS = 6


def default_columns(param_keys: list[str], metric_keys: list[str]) -> list[str]:
    """The columns a table shows before the user picks: a few params, a few own metrics."""
    own = [key for key in metric_keys if not key.startswith(SYSTEM_PREFIX)]
    return [f"params.{key}" for key in param_keys[:DEFAULT_PARAM_COLUMNS]] + [
        f"metrics.{key}" for key in own[:DEFAULT_METRIC_COLUMNS]
    ]


def store_version(database: str) -> tuple:
    """What changes whenever a process commits to the store: the database's and its
    write-ahead log's modification times and sizes."""
    found = []
    for path in (database, database + "-wal"):
        try:
            stat = os.stat(path)
            found.append((stat.st_mtime_ns, stat.st_size))
        except OSError:
            found.append(None)
    return (database, *found)


# The rows of the last table read, for as long as the store does not change: the
# table page asks every 2 s, and a finished store answers from here.
_table_cache: dict[str, Any] = {}
_table_cache_lock = threading.Lock()


def _table_rows(
    connection: sqlite3.Connection, version: Any
) -> tuple[dict[str, dict[str, Any]], list[str], list[str]]:
    """Every run's row (shared, never to be changed by the caller), and the keys seen."""
    with _table_cache_lock:
        if version is not None and _table_cache.get("version") == version:
            return _table_cache["rows"], _table_cache["param_keys"], _table_cache["metric_keys"]
    rows: dict[str, dict[str, Any]] = {}
    loads = json.loads
    for (
        run_id,
        exp,
        name,
        status,
        start,
        end,
        parent,
        params,
        metrics,
        source,
        commit,
    ) in connection.execute(_TABLE_QUERY):
        rows[run_id] = {
            "run_id": run_id,
            "experiment": exp,
            "name": name or "",
            "status": status,
            "start_time": start,
            "end_time": end,
            "duration": None if start is None or end is None else end - start,
            "source": source,
            "commit": commit,
            "parent_run_id": parent,
            "params": loads(params) if params else {},
            "metrics": loads(metrics) if metrics else {},
        }
    param_keys = sorted({key for row in rows.values() for key in row["params"]})
    metric_keys = sorted({key for row in rows.values() for key in row["metrics"]})
    if version is not None:
        with _table_cache_lock:
            _table_cache.update(
                version=version, rows=rows, param_keys=param_keys, metric_keys=metric_keys
            )
    return rows, param_keys, metric_keys


def runs_table(
    connection: sqlite3.Connection | None,
    filter_text: str = "",
    sort: str = "start_time",
    descending: bool = True,
    experiment: str = "",
    now_ms: int = 0,
    columns: list[str] | None = None,
    store_version: Any = None,
) -> dict[str, Any]:
    """Every run as a table row, filtered and sorted, with the param and metric columns seen.

    A row: run_id, experiment, name, status, start_time, end_time, duration (ms),
    source, commit, parent_run_id, params {key: value}, metrics {key: latest value}
    (NaN as null). ``columns`` (``params.KEY`` / ``metrics.KEY``) keeps only those
    params and metrics in the rows; ``["default"]`` picks a few, as the table page does.
    ``store_version`` (see ``store_version()``) lets an unchanged store's rows be reused.
    """
    predicate = compile_filter(filter_text)  # a bad filter fails before any query
    if sort.split(".", 1)[0] not in ("params", "metrics", "tags") and sort not in _ATTRIBUTE_SORT:
        raise BadRequest(
            f"cannot sort by {sort!r}: expected one of {', '.join(_ATTRIBUTE_SORT)}, "
            "params.KEY, metrics.KEY or tags.KEY"
        )
    if connection is None:
        return {"runs": [], "total": 0, "param_keys": [], "metric_keys": [], "columns": []}
    rows, param_keys, metric_keys = _table_rows(connection, store_version)
    running = [run_id for run_id, row in rows.items() if row["status"] == "RUNNING"]
    if running:
        rows = dict(rows)
        for run_id in running:
            status = settled_status(connection, run_id, "RUNNING")
            if status != "RUNNING":
                rows[run_id] = {**rows[run_id], "status": status}
    if "tag" in (filter_text or "").lower() or sort.startswith("tags."):
        rows = {run_id: {**row, "tags": {}} for run_id, row in rows.items()}
        _group_by_run(connection.execute("SELECT run_id, key, value FROM tags"), rows, "tags")
    if columns == ["default"]:
        columns = default_columns(param_keys, metric_keys)
    selected = [
        row
        for row in rows.values()
        if (not experiment or row["experiment"] == experiment) and predicate(row)
    ]
    if sort == "duration":  # a running run's duration grows until now
        selected = [
            {**row, "duration": now_ms - row["start_time"]}
            if row["status"] == "RUNNING" and row["end_time"] is None and row["start_time"]
            else row
            for row in selected
        ]
    _sort_rows(selected, sort, descending)
    shown_params = shown_metrics = None
    if columns is not None:
        shown_params = [c[len("params.") :] for c in columns if c.startswith("params.")]
        shown_metrics = [c[len("metrics.") :] for c in columns if c.startswith("metrics.")]
    answer = []
    for row in selected:
        params, metrics = row["params"], row["metrics"]
        if shown_params is not None and shown_metrics is not None:
            params = {key: params[key] for key in shown_params if key in params}
            metrics = {key: metrics[key] for key in shown_metrics if key in metrics}
        if any(v is not None and not -math.inf < v < math.inf for v in metrics.values()):
            metrics = {key: _number(value) for key, value in metrics.items()}  # infinity as text
        shown = {**row, "params": params, "metrics": metrics}
        shown.pop("tags", None)
        if shown["status"] == "RUNNING" and shown["end_time"] is None and shown["start_time"]:
            shown["duration"] = now_ms - shown["start_time"]
        answer.append(shown)
    return {
        "runs": answer,
        "total": len(rows),
        "param_keys": param_keys,
        "metric_keys": metric_keys,
        "columns": columns,
    }


_ATTRIBUTE_SORT = (
    "start_time",
    "end_time",
    "duration",
    "name",
    "status",
    "experiment",
    "source",
    "commit",
    "run_id",
)


def _sort_rows(rows: list[dict[str, Any]], sort: str, descending: bool) -> None:
    """Sort by a column; runs without a value go last in either direction.

    Numbers sort as numbers (params are strings in the store: "10" > "9").
    """
    entity, _, key = sort.partition(".")

    def value_of(row: dict[str, Any]) -> Any:
        if entity in ("params", "metrics", "tags"):
            return row.get(entity, {}).get(key)
        return row.get(sort)

    def sort_key(row: dict[str, Any]) -> tuple[int, Any]:
        value = value_of(row)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return (2, 0)
        if isinstance(value, (int, float)):
            return (0, value)
        try:
            return (0, float(value))
        except ValueError:
            return (1, str(value).lower())

    present = [row for row in rows if sort_key(row)[0] < 2]
    missing = [row for row in rows if sort_key(row)[0] == 2]
    numbers = sorted((r for r in present if sort_key(r)[0] == 0), key=lambda r: sort_key(r)[1])
    texts = sorted((r for r in present if sort_key(r)[0] == 1), key=lambda r: sort_key(r)[1])
    ordered = numbers + texts
    if descending:
        ordered.reverse()
    rows[:] = ordered + missing


def run_detail(connection: sqlite3.Connection | None, artifact_root: str, run_id: str) -> dict:
    """One run: its row, params, tags, latest metrics (own and system), children, datasets."""
    if connection is None:
        raise NotFound("the store has no runs yet")
    row = connection.execute(
        "SELECT r.run_id, e.name, r.name, r.status, r.start_time, r.end_time, r.parent_run_id "
        "FROM runs r JOIN experiments e ON e.experiment_id = r.experiment_id WHERE r.run_id = ?",
        (run_id,),
    ).fetchone()
    if row is None:
        raise NotFound(f"no run {run_id!r} in the store")
    _, experiment, name, status, start, end, parent = row
    status = settled_status(connection, run_id, status)
    params = dict(
        connection.execute("SELECT key, value FROM params WHERE run_id = ? ORDER BY key", (run_id,))
    )
    tags = dict(
        connection.execute("SELECT key, value FROM tags WHERE run_id = ? ORDER BY key", (run_id,))
    )
    if status != row[3]:
        tags["autolog.liveness"] = (
            "the run's process ended without ending the run (killed, or os._exit); "
            "the store still says RUNNING"
        )
    metrics: dict[str, Any] = {}
    system: dict[str, Any] = {}
    for key, value, step, stamp, is_nan in connection.execute(
        "SELECT key, value, step, timestamp, is_nan FROM latest_metrics WHERE run_id = ? "
        "ORDER BY key",
        (run_id,),
    ):
        entry = {"value": _number(value, is_nan), "step": step, "timestamp": stamp}
        (system if key.startswith(SYSTEM_PREFIX) else metrics)[key] = entry
    children = [
        {
            "run_id": c[0],
            "name": c[1] or "",
            "status": settled_status(connection, c[0], c[2]),
            "start_time": c[3],
            "end_time": c[4],
        }
        for c in connection.execute(
            "SELECT run_id, name, status, start_time, end_time FROM runs "
            "WHERE parent_run_id = ? ORDER BY start_time, rowid",
            (run_id,),
        )
    ]
    columns = ("name", "digest", "source_type", "source", "schema", "profile", "context")
    inputs = [
        dict(zip(columns, found, strict=True))
        for found in connection.execute(
            "SELECT name, digest, source_type, source, schema, profile, context "
            "FROM inputs WHERE run_id = ? ORDER BY rowid",
            (run_id,),
        )
    ]
    parent_name = None
    if parent:
        found = connection.execute("SELECT name FROM runs WHERE run_id = ?", (parent,)).fetchone()
        parent_name = found[0] if found else None
    return {
        "run_id": run_id,
        "experiment": experiment,
        "name": name or "",
        "status": status,
        "start_time": start,
        "end_time": end,
        "parent_run_id": parent,
        "parent_name": parent_name,
        "source": tags.get(SOURCE_TAG),
        "commit": tags.get(COMMIT_TAG),
        "params": params,
        "tags": tags,
        "metrics": metrics,
        "system_metrics": system,
        "system_groups": system_groups(list(system)),
        "children": children,
        "inputs": inputs,
        "artifacts": list_artifacts(artifact_root, run_id),
    }


def system_groups(keys: list[str]) -> dict[str, list[str]]:
    """System metrics by device: ``system/gpu_0_utilization_percentage`` under "gpu 0",
    ``system/cpu_utilization_percentage`` under "cpu", and so on."""
    groups: dict[str, list[str]] = {}
    for key in sorted(keys):
        words = key[len(SYSTEM_PREFIX) :].split("_")
        group = words[0]
        if group == "gpu" and len(words) > 1 and words[1].isdigit():
            group = f"gpu {words[1]}"
        elif group == "system" and len(words) > 1:  # system_memory_usage_megabytes
            group = words[1]
        groups.setdefault(group, []).append(key)
    return groups


def metric_series(
    connection: sqlite3.Connection | None,
    run_id: str,
    key: str,
    buckets: int = DEFAULT_CHART_BUCKETS,
) -> dict[str, Any]:
    """A metric's points in step order, downsampled to at most ``2 * buckets`` points.

    Each bucket of consecutive points keeps its lowest and its highest point, so a
    spike in a million points still shows on a chart a thousand pixels wide.
    """
    import numpy

    if connection is None:
        raise NotFound("the store has no runs yet")
    buckets = max(1, min(int(buckets), MAX_CHART_BUCKETS))
    step_parts, value_parts, stamp_parts = [], [], []
    for step_blob, value_blob, stamp_blob in connection.execute(
        "SELECT steps, vals, timestamps FROM metric_chunks WHERE run_id = ? AND key = ? "
        "ORDER BY rowid",
        (run_id, key),
    ):
        step_parts.append(numpy.frombuffer(step_blob, dtype="<i8"))
        value_parts.append(numpy.frombuffer(value_blob, dtype="<f8"))
        stamp_parts.append(numpy.frombuffer(stamp_blob, dtype="<i8"))
    if not step_parts:
        if connection.execute("SELECT 1 FROM runs WHERE run_id = ?", (run_id,)).fetchone() is None:
            raise NotFound(f"no run {run_id!r} in the store")
        raise NotFound(f"run {run_id} has no metric {key!r}")
    steps = numpy.concatenate(step_parts)
    values = numpy.concatenate(value_parts)
    stamps = numpy.concatenate(stamp_parts)
    if len(steps) > 1 and bool((numpy.diff(steps) < 0).any()):
        order = numpy.argsort(steps, kind="stable")  # equal steps keep their logged order
        steps, values, stamps = steps[order], values[order], stamps[order]
    total = len(steps)
    chosen = keep_extremes(values, buckets)
    if chosen is not None:
        steps, values, stamps = steps[chosen], values[chosen], stamps[chosen]
    return {
        "run_id": run_id,
        "key": key,
        "total_points": total,
        "downsampled": chosen is not None,
        "steps": steps.tolist(),
        "timestamps": stamps.tolist(),
        "values": [None if math.isnan(v) else v for v in values.tolist()],
    }


def keep_extremes(values: Any, buckets: int) -> Any:
    """Indices (sorted) of each bucket's min and max point, or None if none need dropping.

    The series is cut into ``buckets`` runs of consecutive points of equal length
    (the last one padded); NaN points count as neither the min nor the max
    unless a bucket holds nothing else.
    """
    import numpy

    total = len(values)
    if total <= 2 * buckets:
        return None
    width = -(-total // buckets)  # ceil
    rows = -(-total // width)
    padded = rows * width
    low = numpy.full(padded, numpy.inf)
    high = numpy.full(padded, -numpy.inf)
    clean_low = numpy.where(numpy.isnan(values), numpy.inf, values)
    clean_high = numpy.where(numpy.isnan(values), -numpy.inf, values)
    low[:total] = clean_low
    high[:total] = clean_high
    offsets = numpy.arange(rows) * width
    lows = offsets + low.reshape(rows, width).argmin(axis=1)
    highs = offsets + high.reshape(rows, width).argmax(axis=1)
    chosen = numpy.unique(numpy.concatenate([lows, highs]))
    return chosen[chosen < total]


def compare(connection: sqlite3.Connection | None, run_ids: list[str]) -> dict[str, Any]:
    """2 to 10 runs side by side: params and latest metrics, the differing keys marked."""
    unique = list(dict.fromkeys(run_ids))
    if not 2 <= len(unique) <= 10:
        raise BadRequest(f"compare takes 2 to 10 different runs, got {len(unique)}")
    if connection is None:
        raise NotFound("the store has no runs yet")
    runs = []
    for run_id in unique:
        row = connection.execute(
            "SELECT run_id, name, status, start_time, end_time FROM runs WHERE run_id = ?",
            (run_id,),
        ).fetchone()
        if row is None:
            raise NotFound(f"no run {run_id!r} in the store")
        params = dict(
            connection.execute("SELECT key, value FROM params WHERE run_id = ?", (run_id,))
        )
        metrics = {
            key: _number(value, is_nan)
            for key, value, is_nan in connection.execute(
                "SELECT key, value, is_nan FROM latest_metrics WHERE run_id = ?", (run_id,)
            )
        }
        runs.append(
            {
                "run_id": row[0],
                "name": row[1] or "",
                "status": settled_status(connection, row[0], row[2]),
                "start_time": row[3],
                "end_time": row[4],
                "params": params,
                "metrics": metrics,
            }
        )
    param_keys = sorted({key for run in runs for key in run["params"]})
    metric_keys = sorted({key for run in runs for key in run["metrics"]})

    def differing(entity: str, keys: list[str]) -> list[str]:
        return [k for k in keys if len({repr(run[entity].get(k)) for run in runs}) > 1]

    return {
        "runs": runs,
        "param_keys": param_keys,
        "metric_keys": metric_keys,
        "differing_params": differing("params", param_keys),
        "differing_metrics": differing("metrics", metric_keys),
    }


# --- artifacts ---------------------------------------------------------------


def _run_exists(connection: sqlite3.Connection | None, run_id: str) -> bool:
    if connection is None:
        return False
    found = connection.execute("SELECT 1 FROM runs WHERE run_id = ?", (run_id,)).fetchone()
    return found is not None


def list_artifacts(artifact_root: str, run_id: str) -> list[dict[str, Any]]:
    """The run's artifact files: path ('/'-separated, relative), size in bytes, kind."""
    root = os.path.join(artifact_root, run_id)
    found: list[dict[str, Any]] = []
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for file in sorted(files):
            full = os.path.join(folder, file)
            if os.path.islink(full):
                continue
            relative = os.path.relpath(full, root).replace(os.sep, "/")
            try:
                size = os.path.getsize(full)
            except OSError:
                continue
            found.append({"path": relative, "size": size, "kind": artifact_kind(relative)})
    found.sort(key=lambda item: item["path"])
    return found


_KINDS = {
    "image": (".png", ".jpg", ".jpeg", ".gif", ".svg", ".webp", ".bmp"),
    "html": (".html", ".htm"),
    "json": (".json", ".jsonl"),
    "csv": (".csv", ".tsv"),
    "text": (
        ".txt",
        ".log",
        ".md",
        ".yaml",
        ".yml",
        ".patch",
        ".diff",
        ".py",
        ".cfg",
        ".ini",
        ".toml",
        ".xml",
        ".rst",
    ),
}


def artifact_kind(path: str) -> str:
    """How the UI previews a file: image, html, json, csv, text, or none (download only)."""
    lowered = path.lower()
    for kind, endings in _KINDS.items():
        if lowered.endswith(endings):
            return kind
    name = lowered.rsplit("/", 1)[-1]
    if name in ("mlmodel", "requirements.txt", "conda.yaml", "python_env.yaml"):
        return "text"
    return "none"


def artifact_file(
    connection: sqlite3.Connection | None, artifact_root: str, run_id: str, path: str
) -> str:
    """The file an artifact path names, confined to the run's artifact folder.

    Refused (BadRequest): an empty or absolute path, a drive or backslash, any
    ``..`` or ``.`` component; a link that leads out of the folder is NotFound.
    """
    if not path or path.startswith(("/", "\\")) or "\\" in path or "\x00" in path:
        raise BadRequest(f"artifact path {path!r} refused: expected a relative path like a/b.txt")
    parts = path.split("/")
    if any(part in ("", ".", "..") for part in parts) or ":" in parts[0]:
        raise BadRequest(
            f"artifact path {path!r} refused: '..', '.' and empty parts are not accepted"
        )
    if not _run_exists(connection, run_id):
        raise NotFound(f"no run {run_id!r} in the store")
    root = os.path.realpath(os.path.join(artifact_root, run_id))
    full = os.path.realpath(os.path.join(root, *parts))
    if os.path.commonpath([root, full]) != root or not os.path.isfile(full):
        raise NotFound(f"run {run_id} has no artifact {path!r}")
    return full
