"""Reading runs back from an MLflow tracking server: what ``runs list/show/history``
and ``load_model`` need of the team store (``_mlflow_store``).

A run is named by the server's id (``runs list --uri http://...`` shows those), or
by the agent's own (its ``autolog.run_id`` tag), a unique prefix, or ``last``.
Artifacts are listed through the server's artifact proxy; a model is read from
the local staging folder when it was logged on this machine, else downloaded.
"""

from __future__ import annotations

import os
import re
from typing import Any

from autologagent._mlflow_rest import RequestRejected, RestClient, parse_number
from autologagent._store import MetricPoint, RunNotFound, RunRecord

RUN_ID_TAG = "autolog.run_id"
PARENT_TAG = "mlflow.parentRunId"
RUN_NAME_TAG = "mlflow.runName"
SAFE_ID = re.compile(r"^[A-Za-z0-9_\-]+$")


class ServerReader:
    """The reading half of ``MlflowStore``; the writing half provides ``_find``."""

    client: RestClient
    display_uri: str
    folder: str
    staging: str
    _runs: dict[str, dict[str, str]]
    _experiment_names: dict[str, str]

    def _find(
        self, agent_run_id: str, experiment_ids: list[str] | None = None
    ) -> dict[str, Any] | None:
        raise NotImplementedError

    def all_experiment_ids(self) -> list[str]:
        ids: list[str] = []
        token = None
        while True:
            body: dict[str, Any] = {"max_results": 1000, "view_type": "ALL"}
            if token:
                body["page_token"] = token
            answer = self.client.call("POST", "experiments/search", body, retries=2)
            for experiment in answer.get("experiments", []):
                ids.append(str(experiment["experiment_id"]))
                self._experiment_names[str(experiment["experiment_id"])] = experiment["name"]
            token = answer.get("next_page_token")
            if not token:
                return ids

    def _search_runs(self, max_results: int | None = None) -> list[dict[str, Any]]:
        experiment_ids = self.all_experiment_ids()
        runs: list[dict[str, Any]] = []
        token = None
        while experiment_ids:
            body: dict[str, Any] = {
                "experiment_ids": experiment_ids,
                "order_by": ["attributes.start_time DESC"],
                "max_results": min(max_results or 1000, 1000),
            }
            if token:
                body["page_token"] = token
            answer = self.client.call("POST", "runs/search", body, retries=2)
            runs.extend(answer.get("runs", []))
            token = answer.get("next_page_token")
            if not token or (max_results and len(runs) >= max_results):
                break
        return runs

    def _record(self, run: dict[str, Any]) -> RunRecord:
        info = run["info"]
        tags = {tag["key"]: tag.get("value", "") for tag in run.get("data", {}).get("tags", [])}
        experiment_id = str(info["experiment_id"])
        if experiment_id not in self._experiment_names:
            self.all_experiment_ids()
        end = info.get("end_time")
        return RunRecord(
            run_id=info["run_id"],
            experiment=self._experiment_names.get(experiment_id, experiment_id),
            name=info.get("run_name", "") or tags.get(RUN_NAME_TAG, ""),
            status=info.get("status", ""),
            start_time=int(info["start_time"]) if info.get("start_time") else None,
            end_time=int(end) if end and info.get("status") != "RUNNING" else None,
            parent_run_id=tags.get(PARENT_TAG),
        )

    def list_runs(self) -> list[RunRecord]:
        return [self._record(run) for run in self._search_runs()]

    def resolve_run_id(self, ref: str) -> str:
        """A server run id, a unique prefix of one, an agent run id, or ``last``."""
        if ref == "last":
            runs = self._search_runs(max_results=1)
            if not runs:
                raise RunNotFound(f"the tracking server at {self.display_uri} has no runs yet")
            return str(runs[0]["info"]["run_id"])
        found = self._find(ref) if SAFE_ID.match(ref) else None
        if found is not None:
            return str(found["info"]["run_id"])
        matches = [
            run["info"]["run_id"]
            for run in self._search_runs()
            if run["info"]["run_id"].startswith(ref)
        ]
        if len(matches) == 1:
            return str(matches[0])
        if not matches:
            raise RunNotFound(f"no run {ref!r} on the tracking server at {self.display_uri}")
        raise RunNotFound(f"{ref!r} matches several runs: give more of the run id")

    def get_run(self, run_id: str) -> RunRecord:
        try:
            run = self.client.call("GET", "runs/get", query={"run_id": run_id}, retries=2)["run"]
        except RequestRejected:
            raise RunNotFound(
                f"no run {run_id!r} on the tracking server at {self.display_uri}"
            ) from None
        record = self._record(run)
        data = run.get("data", {})
        record.params = {p["key"]: p.get("value", "") for p in data.get("params", [])}
        record.tags = {t["key"]: t.get("value", "") for t in data.get("tags", [])}
        record.metrics = {
            m["key"]: parse_number(m.get("value", 0.0)) for m in data.get("metrics", [])
        }
        root = proxy_path(run["info"].get("artifact_uri", ""))
        record.artifacts = self._list_artifacts(root) if root else []
        for entry in run.get("inputs", {}).get("dataset_inputs", []):
            dataset = entry.get("dataset", {})
            context = {t["key"]: t.get("value", "") for t in entry.get("tags", [])}
            record.inputs.append(
                {
                    "name": dataset.get("name", ""),
                    "digest": dataset.get("digest", ""),
                    "source_type": dataset.get("source_type", ""),
                    "source": dataset.get("source", ""),
                    "schema": dataset.get("schema", ""),
                    "profile": dataset.get("profile", ""),
                    "context": context.get("mlflow.data.context", ""),
                }
            )
        return record

    def _list_artifacts(self, root: str, prefix: str = "") -> list[str]:
        found: list[str] = []
        path = f"{root}/{prefix}".rstrip("/")
        for entry in self.client.list_artifacts(path):
            name = entry["path"].rsplit("/", 1)[-1]
            relative = f"{prefix}{name}"
            if entry.get("is_dir"):
                found.extend(self._list_artifacts(root, relative + "/"))
            else:
                found.append(relative)
        return sorted(found)

    def metric_history(self, run_id: str, key: str) -> list[MetricPoint]:
        """Every point of the series in step order (equal steps in the server's order)."""
        points: list[MetricPoint] = []
        token = None
        while True:
            query: dict[str, Any] = {"run_id": run_id, "metric_key": key, "max_results": 25000}
            if token:
                query["page_token"] = token
            answer = self.client.call("GET", "metrics/get-history", query=query, retries=2)
            for metric in answer.get("metrics", []):
                points.append(
                    MetricPoint(
                        int(metric.get("step", 0)),
                        parse_number(metric.get("value", 0.0)),
                        int(metric.get("timestamp", 0)),
                    )
                )
            token = answer.get("next_page_token")
            if not token:
                break
        points.sort(key=lambda point: point.step)
        return points

    def artifact_dir(self, run_id: str) -> str:
        """A local folder with the run's artifacts: staged here, or downloaded from the server."""
        agent_run_id = None
        for agent_id, known in self._runs.items():
            if known["run_id"] == run_id:
                agent_run_id = agent_id
        if agent_run_id is None:
            run = self.client.call("GET", "runs/get", query={"run_id": run_id})["run"]
            tags = {t["key"]: t.get("value", "") for t in run.get("data", {}).get("tags", [])}
            agent_run_id = tags.get(RUN_ID_TAG)
            root = proxy_path(run["info"].get("artifact_uri", ""))
        else:
            root = proxy_path(self._runs[agent_run_id]["artifact_uri"])
        staged = os.path.join(self.staging, agent_run_id) if agent_run_id else ""
        if staged and os.path.isdir(staged):
            return staged
        folder = os.path.join(self.folder, "downloads", run_id)
        if root:
            for relative in self._list_artifacts(root):
                self.client.download(
                    f"{root}/{relative}", os.path.join(folder, *relative.split("/"))
                )
        return folder


def proxy_path(artifact_uri: str) -> str | None:
    """The proxy path of a run's ``mlflow-artifacts:`` URI, or None for another scheme."""
    if not artifact_uri.startswith("mlflow-artifacts:"):
        return None
    rest = artifact_uri[len("mlflow-artifacts:") :]
    if rest.startswith("//"):  # mlflow-artifacts://host:port/path
        rest = rest[2:].split("/", 1)[1] if "/" in rest[2:] else ""
    return rest.strip("/")
