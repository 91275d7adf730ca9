"""The team store: an MLflow tracking server, behind the same ``Store`` interface.

``AUTOLOG_TRACKING_URI=http(s)://host:port`` sends every run to the server
through its REST API (``_mlflow_rest``), from the background writer: the
training thread only enqueues, as with the embedded store.

A batch from the writer becomes a list of *operations*, each one REST call:
``start`` (``experiments/get-by-name``/``create``, then ``runs/create``),
``log`` (``runs/log-batch`` within its limits: 1000 entities, 100 params and
100 tags a call), ``inputs`` (``runs/log-inputs``) and ``end`` (``runs/update``).
An operation the server cannot take now (unreachable, 5xx, refused
credentials) goes, with every operation after it, to the spool file
(``_spool``), and later batches follow it there until a replay gets through:
order is kept, nothing is lost, and the writer never waits on a retry loop.

Run ids: MLflow gives a run its id when it creates it, while the agent names
its runs when they start (workers log into their root's run by that name). The
server's run carries the agent's id as the tag ``autolog.run_id``; this store
maps one to the other, asking the server (``runs/search``) for runs it did not
create itself. The agent's run names, parents and sources land on MLflow's
system tags (``mlflow.runName``, ``mlflow.parentRunId``, ``mlflow.source.*``,
``mlflow.user``), so the MLflow UI shows them where it always does.

Artifacts (models, plots, ``log_artifact`` files) are written as with the
embedded store, into a local staging folder beside the spool; after each batch
the store uploads what is new or changed there through the server's artifact
proxy (``mlflow-artifacts``), and records what it uploaded in the run's folder.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from autologagent import _errors, _spool
from autologagent._mlflow_read import (
    PARENT_TAG,
    RUN_ID_TAG,
    SAFE_ID,
    ServerReader,
    proxy_path,
)
from autologagent._mlflow_rest import (
    RequestRejected,
    RestClient,
    ServerRefused,
    ServerUnreachable,
    metrics_json,
)
from autologagent._store import Batch

# runs/log-batch limits (MLflow's validation.py).
MAX_ENTITIES = 1000
MAX_PARAMS_TAGS = 100
MAX_PARAM_LENGTH = 6000
MAX_TAG_LENGTH = 8000
MAX_KEY_LENGTH = 250
MANIFEST = ".autolog-uploaded.json"
# The longest the last flush of a process waits for an unreachable server, and
# the longest it sends to a slow one; what is left stays in the spool.
EXIT_PATIENCE_S = 5.0
EXIT_SEND_BUDGET_S = 60.0
MAX_BACKOFF_S = 8.0

_DEFAULT_EXPERIMENT_VAR = "AUTOLOG_EXPERIMENT"

Operation = dict[str, Any]


def _ms(seconds: float) -> int:
    return int(seconds * 1000)


def operations(batch: Batch) -> list[Operation]:
    """The batch as REST operations, in an order the server accepts."""
    ops: list[Operation] = []
    for run_id, experiment, name, start, parent, status in batch.run_starts:
        ops.append(
            {
                "op": "start",
                "run": run_id,
                "experiment": experiment,
                "name": name,
                "start": _ms(start),
                "parent": parent,
                "status": status,
            }
        )
    by_run: dict[str, tuple[list[Any], list[Any], list[Any]]] = {}
    for run_id, key, value in batch.params:
        by_run.setdefault(run_id, ([], [], []))[0].append([key, value])
    for run_id, key, value in batch.tags:
        by_run.setdefault(run_id, ([], [], []))[1].append([key, value])
    for run_id, key, value, step, seconds in batch.metrics:
        by_run.setdefault(run_id, ([], [], []))[2].append([key, value, step, int(seconds * 1000)])
    for run_id, (params, tags, metrics) in by_run.items():
        ops.extend(log_operations(run_id, params, tags, metrics))
    inputs: dict[str, list[Any]] = {}
    for run_id, *dataset in batch.inputs:
        inputs.setdefault(run_id, []).append(list(dataset))
    for run_id, datasets in inputs.items():
        ops.append({"op": "inputs", "run": run_id, "datasets": datasets})
    for run_id, status, end, only_if_running in batch.run_ends:
        ops.append(
            {"op": "end", "run": run_id, "status": status, "end": _ms(end), "only": only_if_running}
        )
    return ops


def log_operations(
    run_id: str, params: list[Any], tags: list[Any], metrics: list[Any]
) -> Iterable[Operation]:
    """``log`` operations within log-batch's limits; a series keeps its order."""
    p = t = m = 0
    while p < len(params) or t < len(tags) or m < len(metrics):
        some_params = params[p : p + MAX_PARAMS_TAGS]
        some_tags = tags[t : t + MAX_PARAMS_TAGS]
        room = MAX_ENTITIES - len(some_params) - len(some_tags)
        some_metrics = metrics[m : m + room]
        p, t, m = p + len(some_params), t + len(some_tags), m + len(some_metrics)
        yield {
            "op": "log",
            "run": run_id,
            "params": some_params,
            "tags": some_tags,
            "metrics": some_metrics,
        }


class _ExitBudgetSpent(Exception):
    """The last flush of the process ran out of time: the rest goes to the spool."""


def _final_flush() -> bool:
    """Whether this is the last flush of the process (atexit runs after the main thread)."""
    return not threading.main_thread().is_alive()


class MlflowStore(ServerReader):
    """``Store`` on an MLflow tracking server, with a spool for when it cannot be reached."""

    def __init__(self, uri: str, create: bool = True) -> None:
        self.uri = uri
        self.client = RestClient(uri)
        self.display_uri = self.client.display_uri
        self.folder = _spool.server_folder(uri)
        self.staging = _spool.staging_root(uri)
        self.spool = _process_spool(self.folder, self.display_uri)
        self._lock = threading.RLock()
        self._experiment_ids: dict[str, str] = {}
        self._runs: dict[str, dict[str, str]] = {}  # agent run id -> server run info
        self._retry_at = 0.0
        self._backoff_s = 1.0
        self._offline = False
        self._refused = False  # the server refused the credentials (said once, with the fix)
        self._manifests: dict[str, dict[str, list[int]]] = {}
        self._deadline: float | None = None  # set during the last flush of the process
        self._experiment_names: dict[str, str] = {}  # id -> name, for reading

    # --- writing ---------------------------------------------------------------------

    def write(self, batch: Batch) -> None:
        """Send the batch, or spool it (and what follows) while the server cannot take it.

        The last flush of the process sends for at most ``EXIT_SEND_BUDGET_S`` (a slow
        server) and waits at most ``EXIT_PATIENCE_S`` for an unreachable one; what is
        left stays in the spool, and a warning says where.
        """
        final = _final_flush()
        with self._lock:
            self._deadline = time.monotonic() + EXIT_SEND_BUDGET_S if final else None
            try:
                self._write_operations(operations(batch), final)
                if not self.spool.pending():
                    self._upload_all(final)
            except _ExitBudgetSpent:
                pass
            if final:
                self._report_left()

    def _send_in_time(self, op: Operation) -> None:
        if self._deadline is not None and time.monotonic() > self._deadline:
            raise _ExitBudgetSpent(f"the process is exiting: gave up after {EXIT_SEND_BUDGET_S} s")
        self.send(op)

    def _write_operations(self, ops: list[Operation], final: bool) -> None:
        if self.spool.pending():
            if not (final or time.monotonic() >= self._retry_at):
                self.spool.append(ops)
                return
            if not self._replay_spool(final):
                self.spool.append(ops)
                return
        for index, op in enumerate(ops):
            try:
                self._send_in_time(op)
            except _ExitBudgetSpent:
                self.spool.append(ops[index:])
                return
            except (ServerUnreachable, ServerRefused) as exc:
                self._went_offline(exc)
                self.spool.append(ops[index:])
                if final:
                    self._replay_spool(final)
                return
        self._back_online()

    def _replay_spool(self, final: bool) -> bool:
        """Replay this process's spool; at exit, keep trying for ``EXIT_PATIENCE_S``."""
        deadline = time.monotonic() + (EXIT_PATIENCE_S if final else 0.0)
        while True:
            try:
                self.spool.replay(self._send_in_time)
            except _ExitBudgetSpent:
                return False
            except ServerRefused as exc:
                self._went_offline(exc)
                return False
            except ServerUnreachable as exc:
                self._went_offline(exc)
                if time.monotonic() + 0.5 >= deadline:
                    return False
                time.sleep(0.5)
                continue
            self._back_online()
            return True

    def _went_offline(self, exc: Exception) -> None:
        self._offline = True
        self._retry_at = time.monotonic() + self._backoff_s
        self._backoff_s = min(self._backoff_s * 2, MAX_BACKOFF_S)
        self.spool._open()
        where = self.spool.path
        if isinstance(exc, ServerRefused):
            self._refused = True
            _errors.warn(
                f"{exc}; what this program logs is kept in {where}: once the credentials are "
                f"right, run `python -m autologagent sync --uri {self.display_uri}`",
                key="tracking-server-refused",
            )
            return
        _errors.warn(
            f"the tracking server at {self.display_uri} cannot be reached ({exc}); "
            f"the agent keeps what it logs in {where} and sends it when the server answers "
            "again; training goes on",
            key="tracking-server-unreachable",
        )

    def _back_online(self) -> None:
        self._backoff_s = 1.0
        if self._offline:
            self._offline = False
            _errors.warn(
                f"the tracking server at {self.display_uri} answers again: "
                "what was spooled meanwhile has been sent",
                key="tracking-server-back",
            )

    def _report_left(self) -> None:
        """At exit: what the server did not take, and where it is (once said for refusals)."""
        if self.spool.pending() and not self._refused:
            left = self.spool.left()
            _errors.warn(
                f"{left} operation(s) the tracking server at {self.display_uri} did not take "
                f"are left in {self.spool.path}; run `python -m autologagent sync --uri "
                f"{self.display_uri}` once it answers",
                key="tracking-server-left",
            )
        self.spool.close()

    # --- operations --------------------------------------------------------------------

    def send(self, op: Operation) -> None:
        """Carry out one operation; a record the server rejects is dropped with a warning."""
        kind = op["op"]
        try:
            if kind == "start":
                self._start(op)
            elif kind == "log":
                self._log(op)
            elif kind == "inputs":
                self._inputs(op)
            elif kind == "end":
                self._end(op)
        except RequestRejected as exc:
            _errors.warn(
                f"the tracking server dropped a record ({exc})",
                key=f"rejected-{kind}-{exc.error_code}",
            )

    def _experiment_id(self, name: str) -> str:
        cached = self._experiment_ids.get(name)
        if cached is not None:
            return cached
        try:
            found = self.client.call(
                "GET", "experiments/get-by-name", query={"experiment_name": name}
            )
            experiment_id = str(found["experiment"]["experiment_id"])
        except RequestRejected as exc:
            if exc.status != 404:
                raise
            try:
                made = self.client.call("POST", "experiments/create", {"name": name})
                experiment_id = str(made["experiment_id"])
            except RequestRejected as again:  # another process made it meanwhile
                if again.error_code != "RESOURCE_ALREADY_EXISTS":
                    raise
                found = self.client.call(
                    "GET", "experiments/get-by-name", query={"experiment_name": name}
                )
                experiment_id = str(found["experiment"]["experiment_id"])
        self._experiment_ids[name] = experiment_id
        return experiment_id

    def _remember(self, agent_run_id: str, info: dict[str, Any]) -> dict[str, str]:
        known = {
            "run_id": str(info["run_id"]),
            "experiment_id": str(info["experiment_id"]),
            "artifact_uri": str(info.get("artifact_uri", "")),
        }
        self._runs[agent_run_id] = known
        return known

    def _search_tagged(self, agent_run_id: str, experiment_ids: list[str]) -> dict[str, Any] | None:
        if not experiment_ids or not SAFE_ID.match(agent_run_id):
            return None
        found = self.client.call(
            "POST",
            "runs/search",
            {
                "experiment_ids": experiment_ids,
                "filter": f"tags.`{RUN_ID_TAG}` = '{agent_run_id}'",
                "run_view_type": "ALL",
                "max_results": 1,
            },
        )
        runs = found.get("runs") or []
        return runs[0] if runs else None

    def _find(
        self, agent_run_id: str, experiment_ids: list[str] | None = None
    ) -> dict[str, Any] | None:
        """The server's run for an agent run id (by tag), or a server run of that very id.

        With ``experiment_ids`` (a run about to start), only there.
        """
        candidates = experiment_ids or list(dict.fromkeys(self._experiment_ids.values()))
        found = self._search_tagged(agent_run_id, candidates)
        if experiment_ids:
            return found
        if found is None:
            others = [e for e in self.all_experiment_ids() if e not in candidates]
            found = self._search_tagged(agent_run_id, others)
        if found is None and SAFE_ID.match(agent_run_id):
            try:  # a run the user resumed by the server's own id
                found = self.client.call("GET", "runs/get", query={"run_id": agent_run_id})["run"]
            except RequestRejected:
                found = None
        return found

    def server_run(self, agent_run_id: str, create: bool = True) -> dict[str, str] | None:
        """The server run records of ``agent_run_id`` go to (made if it must be and may be)."""
        known = self._runs.get(agent_run_id)
        if known is not None:
            return known
        if not create:
            found = self._claimed(agent_run_id) or self._find(agent_run_id)
            return None if found is None else self._remember(agent_run_id, found["info"])
        with self._claim(agent_run_id):
            found = self._claimed(agent_run_id) or self._find(agent_run_id)
            if found is None:  # a worker logging into a run its root has not sent yet
                experiment = os.environ.get(_DEFAULT_EXPERIMENT_VAR) or "Default"
                found = self._create(agent_run_id, self._experiment_id(experiment), "", 0, None)
            return self._remember(agent_run_id, found["info"])

    @contextmanager
    def _claim(self, agent_run_id: str) -> Iterator[None]:
        """Hold this machine's lock on making ``agent_run_id``'s server run.

        MLflow names a run when it creates it, so two processes (the workers of a
        pool, logging into their root's run) must not both create it: the first
        does, under the lock, and leaves the server's id in a file beside the
        spool that the others read.
        """
        import fcntl

        folder = os.path.join(self.folder, "runs")
        os.makedirs(folder, mode=0o700, exist_ok=True)
        with open(os.path.join(folder, f"{_safe_name(agent_run_id)}.lock"), "a") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock.fileno(), fcntl.LOCK_UN)

    def _claimed(self, agent_run_id: str) -> dict[str, Any] | None:
        """The run another process of this machine made for ``agent_run_id``, if any."""
        path = os.path.join(self.folder, "runs", _safe_name(agent_run_id))
        try:
            with open(path, encoding="ascii") as handle:
                server_run_id = handle.read().strip()
        except (OSError, ValueError):
            return None
        if not server_run_id:
            return None
        try:
            return dict(self.client.call("GET", "runs/get", query={"run_id": server_run_id})["run"])
        except RequestRejected:  # deleted from the server since
            return None

    def _note_claim(self, agent_run_id: str, server_run_id: str) -> None:
        path = os.path.join(self.folder, "runs", _safe_name(agent_run_id))
        temporary = f"{path}.{os.getpid()}"
        with open(temporary, "w", encoding="ascii") as handle:
            handle.write(server_run_id)
        os.replace(temporary, path)

    def _create(
        self, agent_run_id: str, experiment_id: str, name: str, start_ms: int, parent: str | None
    ) -> dict[str, Any]:
        tags = [{"key": RUN_ID_TAG, "value": agent_run_id}]
        if parent:
            parent_run = self.server_run(parent, create=False)
            if parent_run is not None:
                tags.append({"key": PARENT_TAG, "value": parent_run["run_id"]})
            tags.append({"key": "autolog.parent_run_id", "value": parent})
        body: dict[str, Any] = {"experiment_id": experiment_id, "tags": tags}
        if start_ms:
            body["start_time"] = start_ms
        if name:
            body["run_name"] = name
        created = dict(self.client.call("POST", "runs/create", body)["run"])
        self._note_claim(agent_run_id, str(created["info"]["run_id"]))
        return created

    def _start(self, op: Operation) -> None:
        agent_run_id = op["run"]
        if agent_run_id in self._runs:
            return
        experiment_id = self._experiment_id(op["experiment"])
        with self._claim(agent_run_id):
            found = self._claimed(agent_run_id) or self._find(agent_run_id, [experiment_id])
            if found is None:
                found = self._create(
                    agent_run_id, experiment_id, op["name"], op["start"], op["parent"]
                )
            elif op["name"] and found["info"].get("run_name") != op["name"]:
                # A worker made it first, without a name: give it its own.
                self.client.call(
                    "POST",
                    "runs/update",
                    {"run_id": found["info"]["run_id"], "run_name": op["name"]},
                )
            self._remember(agent_run_id, found["info"])

    def _log(self, op: Operation) -> None:
        run = self.server_run(op["run"])
        assert run is not None
        head = {
            "run_id": run["run_id"],
            "params": [
                {"key": key[:MAX_KEY_LENGTH], "value": str(value)[:MAX_PARAM_LENGTH]}
                for key, value in op["params"]
            ],
            "tags": [
                {"key": key[:MAX_KEY_LENGTH], "value": str(value)[:MAX_TAG_LENGTH]}
                for key, value in op["tags"]
            ],
        }
        metrics = metrics_json(op["metrics"], MAX_KEY_LENGTH)
        body = (json.dumps(head)[:-1] + ',"metrics":' + metrics + "}").encode("utf-8")
        try:
            self.client.call("POST", "runs/log-batch", body)
        except RequestRejected:
            self._log_in_parts(op)

    def _log_in_parts(self, op: Operation) -> None:
        """A rejected batch (a param whose value changed, say): halve it until the bad record
        is alone, and drop only that one."""
        items = [("params", item) for item in op["params"]]
        items += [("tags", item) for item in op["tags"]]
        items += [("metrics", item) for item in op["metrics"]]
        if len(items) <= 1:
            raise RequestRejected(
                f"{self.display_uri} rejected {items[0][0][:-1]} {items[0][1][0]!r}"
                if items
                else "empty batch",
                400,
                "INVALID_PARAMETER_VALUE",
            )
        half = len(items) // 2
        for part in (items[:half], items[half:]):
            piece: Operation = {
                "op": "log",
                "run": op["run"],
                "params": [],
                "tags": [],
                "metrics": [],
            }
            for kind, item in part:
                piece[kind].append(item)
            try:
                self._log(piece)
            except RequestRejected as exc:
                _errors.warn(f"the tracking server dropped a record ({exc})", key=str(exc))

    def _inputs(self, op: Operation) -> None:
        run = self.server_run(op["run"])
        assert run is not None
        datasets = []
        for name, digest, source_type, source, schema, profile, context in op["datasets"]:
            dataset = {
                "name": name,
                "digest": (digest or "")[:36],
                "source_type": source_type,
                "source": source or "{}",
            }
            if schema:
                dataset["schema"] = schema
            if profile:
                dataset["profile"] = profile
            tags = [{"key": "mlflow.data.context", "value": context}] if context else []
            datasets.append({"tags": tags, "dataset": dataset})
        self.client.call("POST", "runs/log-inputs", {"run_id": run["run_id"], "datasets": datasets})

    def _end(self, op: Operation) -> None:
        run = self.server_run(op["run"], create=not op["only"])
        if run is None:
            return
        if op["only"]:
            info = self.client.call("GET", "runs/get", query={"run_id": run["run_id"]})
            if info["run"]["info"].get("status") != "RUNNING":
                return
        body: dict[str, Any] = {"run_id": run["run_id"], "status": op["status"]}
        if op["status"] != "RUNNING":
            body["end_time"] = op["end"]
        self.client.call("POST", "runs/update", body)

    # --- artifacts ---------------------------------------------------------------------

    def _upload_all(self, final: bool) -> None:
        for agent_run_id in list(self._runs):
            try:
                self.upload_run_artifacts(agent_run_id, os.path.join(self.staging, agent_run_id))
            except (ServerUnreachable, ServerRefused) as exc:
                self._went_offline(exc)
                return

    def upload_run_artifacts(
        self, agent_run_id: str, folder: str, manifest_path: str | None = None
    ) -> int:
        """Upload the files of ``folder`` new or changed since the last upload; return how many.

        What was uploaded is recorded in ``manifest_path`` (default: a hidden file in
        ``folder``), so neither a later flush nor ``sync`` sends a file twice.
        """
        manifest_path = manifest_path or os.path.join(folder, MANIFEST)
        manifest = self._manifests.get(manifest_path)
        if manifest is None:
            manifest = _read_manifest(manifest_path)
            self._manifests[manifest_path] = manifest
        waiting = [item for item in _files_of(folder) if manifest.get(item[0]) != item[2]]
        if not waiting:
            return 0
        run = self.server_run(agent_run_id, create=False)
        if run is None:
            return 0
        root = proxy_path(run["artifact_uri"])
        if root is None:
            _errors.warn(
                f"the tracking server at {self.display_uri} keeps artifacts at "
                f"{run['artifact_uri']}, which it does not serve (start it with "
                f"--serve-artifacts); artifacts stay in {folder}",
                key="artifacts-not-proxied",
            )
            return 0
        uploaded = 0
        try:
            for relative, path, signature in waiting:
                try:
                    self.client.upload(f"{root}/{relative}", path)
                except RequestRejected as exc:
                    _errors.warn(f"the tracking server refused an artifact ({exc})", key=str(exc))
                except FileNotFoundError:
                    continue
                manifest[relative] = signature
                uploaded += 1
        finally:
            if uploaded:
                os.makedirs(os.path.dirname(manifest_path), exist_ok=True)
                _write_manifest(manifest_path, manifest)
        return uploaded

    def close(self) -> None:
        with self._lock:
            self.spool.close()
            self.client.close()


# This process's spool file per server, kept across a close and reopen of the
# store (the writer closes it around every fork), so that what it holds is still
# replayed, in order, before anything newer. A forked child starts its own.
_spools: dict[tuple[int, str], _spool.SpoolFile] = {}


def _process_spool(folder: str, display_uri: str) -> _spool.SpoolFile:
    key = (os.getpid(), folder)
    found = _spools.get(key)
    if found is None:
        found = _spools[key] = _spool.SpoolFile(folder, display_uri)
    return found


def _safe_name(agent_run_id: str) -> str:
    """A file name for a run id (the agent's are hex; a user's resumed id may be anything)."""
    if SAFE_ID.match(agent_run_id):
        return agent_run_id
    import hashlib

    return "id-" + hashlib.sha256(agent_run_id.encode()).hexdigest()[:32]


def _files_of(folder: str) -> list[tuple[str, str, list[int]]]:
    """(relative path, path, [size, mtime]) of the files under ``folder``; hidden ones
    (``.partial-*`` being written, the manifest) left out."""
    found = []
    for directory, dirs, files in os.walk(folder):
        dirs.sort()
        for name in sorted(files):
            if name.startswith("."):
                continue
            path = os.path.join(directory, name)
            try:
                stat = os.stat(path)
            except OSError:
                continue
            relative = os.path.relpath(path, folder).replace(os.sep, "/")
            found.append((relative, path, [stat.st_size, stat.st_mtime_ns]))
    return found


def _read_manifest(path: str) -> dict[str, list[int]]:
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
        return {str(k): list(v) for k, v in data.items()}
    except (OSError, ValueError, AttributeError):
        return {}


def _write_manifest(path: str, manifest: dict[str, list[int]]) -> None:
    temporary = f"{path}.{os.getpid()}"
    with open(temporary, "w", encoding="utf-8") as handle:
        json.dump(manifest, handle)
    os.replace(temporary, path)
