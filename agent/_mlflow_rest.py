"""An MLflow tracking server's REST API, spoken with the standard library.

The training process never imports ``mlflow`` (about 2 s and 170 MB): the agent
talks to the server's REST API (``/api/2.0/mlflow/...``) and its artifact proxy
(``/api/2.0/mlflow-artifacts/...``) over one keep-alive ``http.client``
connection, JSON in and out.

Authentication is the one MLflow's own clients use, read from the same
variables: ``MLFLOW_TRACKING_TOKEN`` (a bearer token), else
``MLFLOW_TRACKING_USERNAME`` and ``MLFLOW_TRACKING_PASSWORD`` (HTTP basic), else
``user:password@`` in the URI. TLS certificates are verified unless
``MLFLOW_TRACKING_INSECURE_TLS=true``; ``MLFLOW_TRACKING_SERVER_CERT_PATH`` names a
CA bundle and ``MLFLOW_TRACKING_CLIENT_CERT_PATH`` a client certificate. No
credential is ever part of a message: the server is named by ``display_uri``,
which has no user-info part.

Failures come in three kinds, because the agent answers each differently:
``ServerUnreachable`` (network down, timeout, 5xx, 429: retry later, spool
meanwhile), ``ServerRefused`` (401/403: the credentials are wrong; spool, say so
once), and ``RequestRejected`` (any other 4xx: this record is bad, drop it).
"""

from __future__ import annotations

import json
import math
import os
import threading
import time
from collections.abc import Mapping
from typing import IO, Any
from urllib.parse import quote, urlencode, urlsplit

API = "/api/2.0/mlflow/"
ARTIFACTS_API = "/api/2.0/mlflow-artifacts/artifacts/"

_TRUE = ("1", "true", "yes", "on")


class ServerUnreachable(OSError):
    """The server did not answer, or answered that it cannot now (5xx, 429)."""


class ServerRefused(PermissionError):
    """The server refused the credentials (401, 403)."""


class RequestRejected(ValueError):
    """The server rejected the request itself (400, 404...): retrying will not help."""

    def __init__(self, message: str, status: int, error_code: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.error_code = error_code


def display_uri(uri: str) -> str:
    """The URI without user-info (``https://user:secret@host`` -> ``https://host``)."""
    parts = urlsplit(uri)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port else host
    return f"{parts.scheme}://{netloc}{parts.path.rstrip('/')}"


_SPECIAL = {math.inf: '"Infinity"', -math.inf: '"-Infinity"'}


def metrics_json(metrics: list[Any], max_key_length: int) -> str:
    """``[[key, value, step, timestamp_ms], ...]`` as log-batch's JSON list of metrics.

    Written as text, not built as dicts for ``json.dumps``: this runs for every
    point on the writer thread, which shares the interpreter with training.
    """
    keys: dict[str, str] = {}
    special = _SPECIAL
    parts = []
    append = parts.append
    for key, value, step, stamp in metrics:
        key_text = keys.get(key)
        if key_text is None:
            key_text = keys[key] = json.dumps(key[:max_key_length])
        if value != value:
            value_text = '"NaN"'
        else:
            value_text = special.get(value) or repr(float(value))
        append(f'{{"key":{key_text},"value":{value_text},"step":{step},"timestamp":{stamp}}}')
    return "[" + ",".join(parts) + "]"


def parse_number(value: Any) -> float:
    """A double from the server's JSON (it sends NaN and infinities as strings)."""
    if isinstance(value, str):
        return float(value.replace("Infinity", "inf"))
    return float(value)


class RestClient:
    """One keep-alive connection to one server; thread-safe, one request at a time."""

    def __init__(
        self,
        uri: str,
        environ: Mapping[str, str] | None = None,
        connect_timeout_s: float = 5.0,
        read_timeout_s: float = 120.0,
    ) -> None:
        env = os.environ if environ is None else environ
        parts = urlsplit(uri)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{display_uri(uri)} is not an http(s)://host[:port] URI")
        self.uri = uri
        self.display_uri = display_uri(uri)
        self.https = parts.scheme == "https"
        self.host = parts.hostname
        self.port = parts.port or (443 if self.https else 80)
        self.base_path = parts.path.rstrip("/")
        self.connect_timeout_s = connect_timeout_s
        self.read_timeout_s = read_timeout_s
        self._headers = {"Content-Type": "application/json", "User-Agent": "autologagent"}
        authorization = _authorization(env, parts.username, parts.password)
        if authorization:
            self._headers["Authorization"] = authorization
        self._ssl_context = _ssl_context(env) if self.https else None
        self._connection: Any = None
        self._lock = threading.Lock()

    # --- transport -------------------------------------------------------------------

    def _connect(self) -> Any:
        import http.client

        if self.https:
            connection = http.client.HTTPSConnection(
                self.host, self.port, timeout=self.connect_timeout_s, context=self._ssl_context
            )
        else:
            connection = http.client.HTTPConnection(
                self.host, self.port, timeout=self.connect_timeout_s
            )
        connection.connect()
        if connection.sock is not None:
            connection.sock.settimeout(self.read_timeout_s)
        return connection

    def close(self) -> None:
        with self._lock:
            self._drop()

    def _drop(self) -> None:
        if self._connection is not None:
            try:
                self._connection.close()
            except Exception:
                pass
            self._connection = None

    def request(
        self,
        method: str,
        path: str,
        body: bytes | IO[bytes] | None = None,
        headers: Mapping[str, str] | None = None,
        length: int | None = None,
    ) -> tuple[int, bytes]:
        """One HTTP request; a stale keep-alive connection is replaced once, silently."""
        import http.client

        all_headers = dict(self._headers)
        if headers:
            all_headers.update(headers)
        if length is not None:
            all_headers["Content-Length"] = str(length)
        with self._lock:
            for attempt in (0, 1):
                fresh = self._connection is None
                try:
                    if fresh:
                        self._connection = self._connect()
                    self._connection.request(
                        method, self.base_path + path, body=body, headers=all_headers
                    )
                    response = self._connection.getresponse()
                    data = response.read()
                    if response.will_close:
                        self._drop()
                    return response.status, data
                except (OSError, http.client.HTTPException) as exc:
                    self._drop()
                    rewindable = body is None or isinstance(body, bytes)
                    if fresh or attempt or not rewindable:
                        raise ServerUnreachable(
                            f"{self.display_uri} did not answer ({type(exc).__name__}: {exc})"
                        ) from None
                    # A keep-alive connection the server closed meanwhile: once more.
        raise AssertionError("unreachable")

    # --- the tracking API ------------------------------------------------------------

    def call(
        self,
        method: str,
        endpoint: str,
        body: Mapping[str, Any] | bytes | None = None,
        query: Mapping[str, Any] | None = None,
        retries: int = 0,
    ) -> dict[str, Any]:
        """Call ``/api/2.0/mlflow/<endpoint>``; transient failures retried ``retries`` times."""
        path = API + endpoint
        if query:
            path += "?" + urlencode(query, doseq=True)
        if body is None or isinstance(body, bytes):
            payload = body
        else:
            payload = json.dumps(body, allow_nan=False).encode("utf-8")
        delay = 0.5
        for attempt in range(retries + 1):
            try:
                status, data = self.request(method, path, payload)
                return self._answer(status, data, endpoint)
            except ServerUnreachable:
                if attempt == retries:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 8.0)
        raise AssertionError("unreachable")

    def _answer(self, status: int, data: bytes, what: str) -> dict[str, Any]:
        if 200 <= status < 300:
            try:
                return json.loads(data) if data.strip() else {}
            except ValueError:  # a proxy's login page, say
                raise ServerUnreachable(
                    f"{self.display_uri} answered {what} with something that is not JSON: "
                    "is it an MLflow tracking server?"
                ) from None
        code, message = _error_of(data)
        where = f"{self.display_uri} ({what})"
        if status in (401, 403):
            raise ServerRefused(
                f"the tracking server at {self.display_uri} refused the credentials "
                f"(HTTP {status}): set MLFLOW_TRACKING_TOKEN, "
                "or MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD"
            )
        if not code and status in (404, 405, 501):  # not MLflow's JSON: something else
            raise ServerUnreachable(
                f"{self.display_uri} does not answer as an MLflow tracking server "
                f"(HTTP {status} for {what})"
            )
        if status == 429 or status >= 500:
            raise ServerUnreachable(f"{where} answered HTTP {status}: {message[:200]}")
        raise RequestRejected(
            f"{where} rejected it (HTTP {status} {code}): {message[:300]}", status, code
        )

    # --- the artifact proxy ----------------------------------------------------------

    def upload(self, artifact_path: str, local_path: str) -> None:
        """PUT a file to ``/api/2.0/mlflow-artifacts/artifacts/<artifact_path>``."""
        size = os.path.getsize(local_path)
        with open(local_path, "rb") as handle:
            status, data = self.request(
                "PUT",
                ARTIFACTS_API + quote(artifact_path),
                body=handle,
                headers={"Content-Type": "application/octet-stream"},
                length=size,
            )
        self._answer(status, data, f"uploading {artifact_path}")

    def list_artifacts(self, artifact_path: str) -> list[dict[str, Any]]:
        path = ARTIFACTS_API.rstrip("/") + "?" + urlencode({"path": artifact_path})
        status, data = self.request("GET", path)
        return list(self._answer(status, data, "listing artifacts").get("files", []))

    def download(self, artifact_path: str, local_path: str) -> None:
        status, data = self.request("GET", ARTIFACTS_API + quote(artifact_path))
        if not 200 <= status < 300:
            self._answer(status, data, f"downloading {artifact_path}")
        os.makedirs(os.path.dirname(local_path), exist_ok=True)
        with open(local_path, "wb") as handle:
            handle.write(data)


def _error_of(data: bytes) -> tuple[str, str]:
    """(MLflow's error code, the message on one line) of an error answer."""
    try:
        answer = json.loads(data)
        code, message = str(answer.get("error_code", "")), str(answer.get("message", ""))
    except (ValueError, AttributeError):
        code, message = "", data.decode("utf-8", "replace")
    return code, " ".join(message.split())


def _authorization(env: Mapping[str, str], user: str | None, password: str | None) -> str:
    token = env.get("MLFLOW_TRACKING_TOKEN")
    if token:
        return f"Bearer {token}"
    user = env.get("MLFLOW_TRACKING_USERNAME") or user
    password = env.get("MLFLOW_TRACKING_PASSWORD") or password
    if user or password:
        import base64
        from urllib.parse import unquote

        pair = f"{unquote(user or '')}:{unquote(password or '')}".encode()
        return "Basic " + base64.b64encode(pair).decode("ascii")
    return ""


def _ssl_context(env: Mapping[str, str]) -> Any:
    import ssl

    if env.get("MLFLOW_TRACKING_INSECURE_TLS", "").strip().lower() in _TRUE:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    context = ssl.create_default_context(cafile=env.get("MLFLOW_TRACKING_SERVER_CERT_PATH") or None)
    client_cert = env.get("MLFLOW_TRACKING_CLIENT_CERT_PATH")
    if client_cert:
        context.load_cert_chain(client_cert)
    return context
