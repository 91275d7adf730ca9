"""The embedded store: one SQLite file in WAL mode, artifacts as plain files.

Several processes write at once (a training script and its workers): WAL lets
readers and one writer proceed together, ``busy_timeout`` makes a writer wait
for another's transaction instead of failing, and every flush is one short
transaction of ``executemany`` calls. Metric points are stored in chunks
(``_series``), not a row each.
"""

from __future__ import annotations

import math
import os
import sqlite3
import time
from array import array

from autologagent import _series
from autologagent._store import Batch, MetricPoint, RunNotFound, RunRecord

# Schema history:
#   1: experiments, runs, params, tags, metric_chunks, latest_metrics, inputs.
# A new version adds a numbered step to _MIGRATIONS; a store written by a newer
# agent is refused with a clear message rather than misread.
SCHEMA_VERSION = 1
SCHEMA = """
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
-- experiment_id as MLflow: a small integer, and a unique name.
CREATE TABLE IF NOT EXISTS experiments (
    experiment_id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    artifact_location TEXT,
    creation_time INTEGER
);
-- times in milliseconds since the epoch, as MLflow; status RUNNING, FINISHED,
-- FAILED or KILLED; parent_run_id for child runs (MLflow keeps it as a tag).
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    experiment_id INTEGER NOT NULL,
    name TEXT,
    status TEXT NOT NULL,
    start_time INTEGER,
    end_time INTEGER,
    parent_run_id TEXT,
    artifact_uri TEXT
);
CREATE INDEX IF NOT EXISTS runs_by_start ON runs (start_time);
CREATE TABLE IF NOT EXISTS params (
    run_id TEXT NOT NULL, key TEXT NOT NULL, value TEXT, PRIMARY KEY (run_id, key)
);
CREATE TABLE IF NOT EXISTS tags (
    run_id TEXT NOT NULL, key TEXT NOT NULL, value TEXT, PRIMARY KEY (run_id, key)
);
-- every point of every series, in chunks of consecutive points (see _series.py):
-- steps and timestamps (ms) as little-endian int64 arrays, values as float64.
CREATE TABLE IF NOT EXISTS metric_chunks (
    run_id TEXT NOT NULL, key TEXT NOT NULL, count INTEGER NOT NULL,
    min_step INTEGER NOT NULL, max_step INTEGER NOT NULL,
    steps BLOB NOT NULL, vals BLOB NOT NULL, timestamps BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS metric_chunks_by_series ON metric_chunks (run_id, key);
-- the newest point of each series (highest step, then last written), kept by the
-- writer; SQLite stores NaN as NULL, hence is_nan (as MLflow).
CREATE TABLE IF NOT EXISTS latest_metrics (
    run_id TEXT NOT NULL, key TEXT NOT NULL, value REAL, step INTEGER NOT NULL,
    timestamp INTEGER NOT NULL, is_nan INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (run_id, key)
);
-- dataset inputs (MLflow's inputs + datasets, flattened).
CREATE TABLE IF NOT EXISTS inputs (
    run_id TEXT NOT NULL, name TEXT NOT NULL, digest TEXT, source_type TEXT,
    source TEXT, schema TEXT, profile TEXT, context TEXT
);
"""

_MIGRATIONS: dict[int, str] = {}

_CHUNK_INSERT = """
INSERT INTO metric_chunks (run_id, key, count, min_step, max_step, steps, vals, timestamps)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)
"""

# A later flush's newest point wins over an earlier one's at the same step.
_LATEST_UPSERT = """
INSERT INTO latest_metrics (run_id, key, value, step, timestamp, is_nan)
VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (run_id, key) DO UPDATE SET
    value = excluded.value, step = excluded.step,
    timestamp = excluded.timestamp, is_nan = excluded.is_nan
WHERE excluded.step >= latest_metrics.step
"""


def _statements(script: str) -> list[str]:
    """The statements of a schema script, its ``--`` comments removed."""
    lines = [line.split("--", 1)[0] for line in script.splitlines()]
    return [part.strip() for part in "\n".join(lines).split(";") if part.strip()]


def _ms(seconds: float) -> int:
    return int(seconds * 1000)


def _create_private(database: str) -> None:
    """Create the database file readable by its owner only (0600), if it is new.

    SQLite gives the ``-wal`` and ``-shm`` files the database file's permissions.
    An empty file is a valid empty database.
    """
    try:
        os.close(os.open(database, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except FileExistsError:
        pass


class StoreVersionError(RuntimeError):
    """The store was written by a newer agent."""


class SqliteStore:
    """The local backend of ``Store``."""

    def __init__(self, database: str, artifact_root: str, create: bool = True) -> None:
        self.database = database
        self.artifact_root = artifact_root
        if not create and not os.path.exists(database):
            raise FileNotFoundError(f"no store at {database}")
        if create:
            os.makedirs(os.path.dirname(database), mode=0o700, exist_ok=True)
            _create_private(database)
        self._connection = sqlite3.connect(
            database, timeout=60.0, isolation_level=None, check_same_thread=False
        )
        self._connection.execute("PRAGMA busy_timeout = 60000")
        if create:
            self._enable_wal()
            self._connection.execute("PRAGMA synchronous = NORMAL")
            self._migrate()
        self._experiment_ids: dict[str, int] = {}

    # --- schema ---------------------------------------------------------------

    def _enable_wal(self) -> None:
        """Switch to WAL, waiting out another process doing the same.

        Changing the journal mode can answer "database is locked" at once, without
        the busy timeout, while several processes open a new store together.
        """
        for attempt in range(100):
            try:
                self._connection.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc) or attempt == 99:
                    raise
                time.sleep(0.05)

    def _migrate(self) -> None:
        connection = self._connection
        connection.execute("BEGIN IMMEDIATE")
        try:
            for statement in _statements(SCHEMA):
                connection.execute(statement)
            row = connection.execute("SELECT version FROM schema_version").fetchone()
            if row is None:
                connection.execute(
                    "INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,)
                )
            elif row[0] > SCHEMA_VERSION:
                raise StoreVersionError(
                    f"{self.database} has schema version {row[0]}; this agent reads "
                    f"up to {SCHEMA_VERSION}: upgrade autologagent"
                )
            else:
                for version in range(row[0] + 1, SCHEMA_VERSION + 1):
                    connection.execute(_MIGRATIONS[version])
                connection.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION,))
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise

    # --- writing ----------------------------------------------------------------

    def _experiment_id(self, name: str) -> int:
        cached = self._experiment_ids.get(name)
        if cached is not None:
            return cached
        connection = self._connection
        connection.execute(
            "INSERT OR IGNORE INTO experiments (name, artifact_location, creation_time) "
            "VALUES (?, ?, strftime('%s','now') * 1000)",
            (name, self.artifact_root),
        )
        row = connection.execute(
            "SELECT experiment_id FROM experiments WHERE name = ?", (name,)
        ).fetchone()
        self._experiment_ids[name] = row[0]
        return int(row[0])

    def write(self, batch: Batch) -> None:
        """Commit one batch in one transaction."""
        connection = self._connection
        connection.execute("BEGIN IMMEDIATE")
        try:
            if batch.run_starts:
                connection.executemany(
                    "INSERT OR IGNORE INTO runs (run_id, experiment_id, name, status, "
                    "start_time, parent_run_id, artifact_uri) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [
                        (
                            run_id,
                            self._experiment_id(experiment),
                            name,
                            status,
                            _ms(start),
                            parent,
                            os.path.join(self.artifact_root, run_id),
                        )
                        for run_id, experiment, name, start, parent, status in batch.run_starts
                    ],
                )
            if batch.params:
                connection.executemany(
                    "INSERT OR REPLACE INTO params (run_id, key, value) VALUES (?, ?, ?)",
                    batch.params,
                )
            if batch.tags:
                connection.executemany(
                    "INSERT OR REPLACE INTO tags (run_id, key, value) VALUES (?, ?, ?)",
                    batch.tags,
                )
            if batch.inputs:
                connection.executemany(
                    "INSERT INTO inputs (run_id, name, digest, source_type, source, schema, "
                    "profile, context) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    batch.inputs,
                )
            if batch.metrics:
                self._write_metrics(batch.metrics)
            for run_id, status, end, only_if_running in batch.run_ends:
                sql = "UPDATE runs SET status = ?, end_time = ? WHERE run_id = ?"
                if only_if_running:
                    sql += " AND status = 'RUNNING'"
                ended = None if status == "RUNNING" else _ms(end)  # RUNNING: a resumed run
                connection.execute(sql, (status, ended, run_id))
            connection.execute("COMMIT")
        except BaseException:
            # A full disk makes SQLite roll back by itself: a second ROLLBACK would
            # raise "no transaction is active" and hide the real error.
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            self._experiment_ids.clear()  # an experiment made in this transaction is gone
            raise

    def _write_metrics(self, points: list[tuple[str, str, float, int, float]]) -> None:
        """Insert the points as chunks, then move each series' newest point forward."""
        chunk_rows = []
        newest: dict[tuple[str, str], tuple[str, str, float | None, int, int, int]] = {}
        for chunk in _series.chunks(points):
            steps = chunk.steps
            chunk_rows.append(
                (chunk.run_id, chunk.key, len(steps), chunk.low, chunk.high, *chunk.blobs())
            )
            index = chunk.newest()
            value = chunk.values[index]
            nan = math.isnan(value)
            candidate = (
                chunk.run_id,
                chunk.key,
                None if nan else value,
                steps[index],
                chunk.timestamps[index],
                int(nan),
            )
            seen = newest.get((chunk.run_id, chunk.key))
            if seen is None or candidate[3] >= seen[3]:
                newest[(chunk.run_id, chunk.key)] = candidate
        connection = self._connection
        connection.executemany(_CHUNK_INSERT, chunk_rows)
        connection.executemany(_LATEST_UPSERT, list(newest.values()))

    # --- reading -----------------------------------------------------------------

    def _record(self, row: tuple) -> RunRecord:
        run_id, experiment, name, status, start, end, parent = row
        return RunRecord(run_id, experiment, name or "", status, start, end, parent)

    _RUN_COLUMNS = (
        "SELECT r.run_id, e.name, r.name, r.status, r.start_time, r.end_time, r.parent_run_id "
        "FROM runs r JOIN experiments e ON e.experiment_id = r.experiment_id "
    )

    def list_runs(self) -> list[RunRecord]:
        rows = self._connection.execute(
            self._RUN_COLUMNS + "ORDER BY r.start_time DESC, r.rowid DESC"
        ).fetchall()
        return [self._record(row) for row in rows]

    def resolve_run_id(self, ref: str) -> str:
        """A full run id, a unique prefix of one, or ``last`` (the newest run)."""
        connection = self._connection
        if ref == "last":
            row = connection.execute(
                "SELECT run_id FROM runs ORDER BY start_time DESC, rowid DESC LIMIT 1"
            ).fetchone()
            if row is None:
                raise RunNotFound("the store has no runs yet")
            return str(row[0])
        rows = connection.execute(
            "SELECT run_id FROM runs WHERE run_id = ? OR run_id LIKE ? LIMIT 2",
            (ref, ref.replace("%", "").replace("_", "") + "%"),
        ).fetchall()
        exact = [row[0] for row in rows if row[0] == ref]
        if exact:
            return str(exact[0])
        if len(rows) == 1:
            return str(rows[0][0])
        if not rows:
            raise RunNotFound(f"no run {ref!r} in the store")
        raise RunNotFound(f"{ref!r} matches several runs: give more of the run id")

    def get_run(self, run_id: str) -> RunRecord:
        connection = self._connection
        row = connection.execute(self._RUN_COLUMNS + "WHERE r.run_id = ?", (run_id,)).fetchone()
        if row is None:
            raise RunNotFound(f"no run {run_id!r} in the store")
        record = self._record(row)
        record.params = dict(
            connection.execute(
                "SELECT key, value FROM params WHERE run_id = ? ORDER BY key", (run_id,)
            ).fetchall()
        )
        record.tags = dict(
            connection.execute(
                "SELECT key, value FROM tags WHERE run_id = ? ORDER BY key", (run_id,)
            ).fetchall()
        )
        record.metrics = {
            key: (math.nan if is_nan else value)
            for key, value, is_nan in connection.execute(
                "SELECT key, value, is_nan FROM latest_metrics WHERE run_id = ? ORDER BY key",
                (run_id,),
            )
        }
        record.artifacts = self.list_artifacts(run_id)
        columns = ("name", "digest", "source_type", "source", "schema", "profile", "context")
        record.inputs = [
            dict(zip(columns, row, strict=True))
            for row in connection.execute(
                "SELECT name, digest, source_type, source, schema, profile, context "
                "FROM inputs WHERE run_id = ? ORDER BY rowid",
                (run_id,),
            )
        ]
        return record

    def metric_history(self, run_id: str, key: str) -> list[MetricPoint]:
        """Every point of the series in step order (points of equal step in logged order)."""
        steps: array = array("q")
        values: array = array("d")
        stamps: array = array("q")
        for step_blob, value_blob, stamp_blob in self._connection.execute(
            "SELECT steps, vals, timestamps FROM metric_chunks WHERE run_id = ? AND key = ? "
            "ORDER BY rowid",
            (run_id, key),
        ):
            steps.extend(_series.unpack("q", step_blob))
            values.extend(_series.unpack("d", value_blob))
            stamps.extend(_series.unpack("q", stamp_blob))
        order = sorted(range(len(steps)), key=steps.__getitem__)
        return [MetricPoint(steps[i], values[i], stamps[i]) for i in order]

    def artifact_dir(self, run_id: str) -> str:
        return os.path.join(self.artifact_root, run_id)

    def list_artifacts(self, run_id: str) -> list[str]:
        root = self.artifact_dir(run_id)
        found: list[str] = []
        for folder, _dirs, files in os.walk(root):
            for file in files:
                relative = os.path.relpath(os.path.join(folder, file), root)
                found.append(relative.replace(os.sep, "/"))
        return sorted(found)

    def close(self) -> None:
        self._connection.close()
