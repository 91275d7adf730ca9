"""The store interface: what the writer and the CLI need of a backend.

The data model maps one to one onto MLflow's (experiments, runs, params, metric
series, tags, artifacts, dataset inputs, parent run), so that an MLflow tracking
server can be a second backend behind the same interface. ``open_store(uri)``
picks the backend from the tracking URI.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

# Queue records, as the writer receives them. Tuples, because building one is the
# whole cost of a logging call on the training thread.
#   RunStart  (run_id, experiment, name, start_time_s, parent_run_id, status)
#   Param/Tag (run_id, key, value)
#   Metric    (run_id, key, value, step, time_s)
#   RunEnd    (run_id, status, end_time_s, only_if_running)
#   Input     (run_id, name, digest, source_type, source, schema, profile, context)
RunStart = tuple[str, str, str, float, "str | None", str]
KeyValue = tuple[str, str, str]
Metric = tuple[str, str, float, int, float]
RunEnd = tuple[str, str, float, bool]
Input = tuple[str, str, str, str, str, str, str, str]
RECORD_KINDS = ("run_starts", "params", "tags", "inputs", "metrics", "run_ends")


@dataclass
class Batch:
    """Everything to commit in one transaction, applied in this order."""

    run_starts: list[RunStart] = field(default_factory=list)
    params: list[KeyValue] = field(default_factory=list)
    tags: list[KeyValue] = field(default_factory=list)
    inputs: list[Input] = field(default_factory=list)
    metrics: list[Metric] = field(default_factory=list)
    run_ends: list[RunEnd] = field(default_factory=list)

    def __len__(self) -> int:
        return sum(len(getattr(self, kind)) for kind in RECORD_KINDS)


@dataclass
class RunRecord:
    run_id: str
    experiment: str
    name: str
    status: str
    start_time: int | None
    end_time: int | None
    parent_run_id: str | None
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    artifacts: list[str] = field(default_factory=list)
    # Dataset inputs: name, digest, source_type, source, schema, profile, context.
    inputs: list[dict[str, str]] = field(default_factory=list)


@dataclass
class MetricPoint:
    step: int
    value: float
    timestamp: int


class RunNotFound(LookupError):
    """No run with the id (or prefix) asked for."""


class Store(Protocol):
    def write(self, batch: Batch) -> None: ...

    def list_runs(self) -> list[RunRecord]: ...

    def get_run(self, run_id: str) -> RunRecord: ...

    def resolve_run_id(self, ref: str) -> str: ...

    def metric_history(self, run_id: str, key: str) -> list[MetricPoint]: ...

    def artifact_dir(self, run_id: str) -> str: ...

    def close(self) -> None: ...


def open_store(uri: str, create: bool = True) -> Store:
    from autologagent._config import is_server_uri, store_paths

    if is_server_uri(uri):
        from autologagent._mlflow_store import MlflowStore

        return MlflowStore(uri, create=create)
    from autologagent._sqlite_store import SqliteStore

    database, artifacts = store_paths(uri)
    return SqliteStore(database, artifacts, create=create)
