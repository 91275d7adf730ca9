"""``python -m autologagent ui``: a read-only web UI over the embedded store.

The standard library's ``ThreadingHTTPServer`` serves three pages (runs table, run,
compare), their static files, plotly's JavaScript from the installed ``plotly``
package (nothing is fetched from the internet), and JSON endpoints answered by
``_ui_queries``. Only GET and HEAD exist: nothing a browser sends can change the
store. Artifacts are served from the run's own artifact folder and nowhere else.
"""

from __future__ import annotations

import argparse
import json
import mimetypes
import os
import re
import signal
import sys
import time
import urllib.parse
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from autologagent import _ui_queries as queries
from autologagent._ui_filter import FilterError

OK, ERROR, USAGE = 0, 1, 2
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 5050
STATIC_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_ui_static")
PAGES = {"/": "index.html", "/compare": "compare.html"}
RUN_PAGE = re.compile(r"^/run/([A-Za-z0-9_\-]+)$")
RUN_API = re.compile(r"^/api/runs/([A-Za-z0-9_\-]+)(/metric|/artifacts|/artifact)?$")
LOOPBACK = ("127.0.0.1", "localhost", "::1")
# Every page is the UI's own: no frame of it elsewhere, no script from elsewhere
# ('unsafe-eval': plotly's WebGL traces, parallel coordinates among them, compile
# their shaders' glue with new Function()).
PAGE_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-eval'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; frame-src 'self'; connect-src 'self'; frame-ancestors 'self'"
)
# An artifact is someone's file: shown, if at all, in a sandbox with an origin of its own.
ARTIFACT_POLICY = "sandbox allow-scripts; default-src 'self' 'unsafe-inline' data: blob:"


class UiUsageError(Exception):
    """Bad arguments to ``ui``; the message is one line."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UiUsageError(message)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="autologagent ui", description="Browse the store in a web browser.")
    parser.add_argument("--uri", default=None, help="tracking URI (default: ./autologruns)")
    parser.add_argument("--host", default=DEFAULT_HOST, help=f"address (default {DEFAULT_HOST})")
    parser.add_argument("--port", default=DEFAULT_PORT, type=int, help="port; 0 picks a free one")
    return parser


def plotly_script() -> str:
    """The path of plotly's bundled ``plotly.min.js`` (the ``ui`` extra installs plotly)."""
    import importlib.util

    spec = importlib.util.find_spec("plotly")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("plotly is not installed")
    folder = list(spec.submodule_search_locations)[0]
    path = os.path.join(folder, "package_data", "plotly.min.js")
    if not os.path.isfile(path):
        raise ImportError(f"plotly is installed but has no {path}")
    return path


class UiServer(ThreadingHTTPServer):
    """The HTTP server, holding where the store is and which static files exist."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], database: str, artifact_root: str) -> None:
        self.database = database
        self.artifact_root = artifact_root
        self.static_files = {
            name: os.path.join(STATIC_DIR, name)
            for name in os.listdir(STATIC_DIR)
            if os.path.isfile(os.path.join(STATIC_DIR, name))
        }
        self.static_files["plotly.min.js"] = plotly_script()
        super().__init__(address, UiRequestHandler)


class UiRequestHandler(BaseHTTPRequestHandler):
    """GET and HEAD only; every answer is a page, a static file, JSON or an artifact."""

    server: UiServer
    server_version = "autologagent-ui"
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002  (the base's name)
        """Quiet: the terminal shows the URL and errors, not every request."""

    def do_HEAD(self) -> None:  # noqa: N802  (http.server's naming)
        self._handle(head=True)

    def do_GET(self) -> None:  # noqa: N802
        self._handle(head=False)

    def _refuse(self) -> None:
        self._head = False
        self.close_connection = True  # a request body, if any, is left unread
        self._send_json(
            {"error": "the UI is read-only: only GET and HEAD"},
            405,
            {"Allow": "GET, HEAD", "Connection": "close"},
        )

    do_POST = do_PUT = do_DELETE = do_PATCH = _refuse  # noqa: N815

    def _handle(self, head: bool) -> None:
        self._head = head
        url = urllib.parse.urlsplit(self.path)
        query = {k: v[-1] for k, v in urllib.parse.parse_qs(url.query).items()}
        path = url.path
        connection = None
        try:
            if path in PAGES or RUN_PAGE.match(path):
                page = PAGES.get(path, "run.html")
                self._send_file(self.server.static_files[page], "text/html; charset=utf-8")
                return
            if path == "/favicon.ico":  # none: say so without an error in the console
                self._send(HTTPStatus.NO_CONTENT, b"", "image/x-icon")
                return
            if path.startswith("/static/"):
                name = path[len("/static/") :]
                found = self.server.static_files.get(name)
                if found is None:
                    raise queries.NotFound(f"no static file {name!r}")
                self._send_file(found, cache=name == "plotly.min.js")
                return
            if not path.startswith("/api/"):
                raise queries.NotFound(f"no page {path!r}")
            connection = queries.connect(self.server.database)
            self._api(path, query, connection)
        except (queries.BadRequest, FilterError) as exc:
            self._send_json({"error": str(exc)}, 400)
        except queries.NotFound as exc:
            self._send_json({"error": str(exc)}, 404)
        except (BrokenPipeError, ConnectionResetError):
            pass
        except Exception as exc:  # the UI stays up; the browser sees what went wrong
            self._send_json({"error": f"{type(exc).__name__}: {exc}"}, 500)
        finally:
            if connection is not None:
                connection.close()

    def _api(self, path: str, query: dict[str, str], connection: Any) -> None:
        root = self.server.artifact_root
        if path == "/api/experiments":
            self._send_json({"experiments": queries.experiments(connection)})
            return
        if path == "/api/runs":
            table = queries.runs_table(
                connection,
                filter_text=query.get("filter", ""),
                sort=query.get("sort", "start_time"),
                descending=query.get("order", "desc") != "asc",
                experiment=query.get("experiment", ""),
                now_ms=int(time.time() * 1000),
                columns=query["columns"].split(",") if "columns" in query else None,
                store_version=queries.store_version(self.server.database),
            )
            table["store"] = self.server.database
            self._send_json(table)
            return
        if path == "/api/compare":
            run_ids = [part for part in query.get("runs", "").split(",") if part]
            self._send_json(queries.compare(connection, run_ids))
            return
        match = RUN_API.match(path)
        if not match:
            raise queries.NotFound(f"no endpoint {path!r}")
        run_id, what = match.groups()
        if what is None:
            self._send_json(queries.run_detail(connection, root, run_id))
        elif what == "/metric":
            if "key" not in query:
                raise queries.BadRequest("a metric needs ?key=NAME")
            buckets = query.get("buckets", str(queries.DEFAULT_CHART_BUCKETS))
            if not buckets.isdigit():
                raise queries.BadRequest(f"buckets={buckets!r}: expected a positive integer")
            self._send_json(queries.metric_series(connection, run_id, query["key"], int(buckets)))
        elif what == "/artifacts":
            if not queries._run_exists(connection, run_id):
                raise queries.NotFound(f"no run {run_id!r} in the store")
            self._send_json({"artifacts": queries.list_artifacts(root, run_id)})
        else:
            full = queries.artifact_file(connection, root, run_id, query.get("path", ""))
            self._send_artifact(full, query)

    # --- answers -------------------------------------------------------------------

    def _send(
        self, status: int, body: bytes, content_type: str, headers: dict | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if not self._head:
            self.wfile.write(body)

    def _send_json(self, data: Any, status: int = 200, headers: dict | None = None) -> None:
        body = json.dumps(data, separators=(",", ":"), allow_nan=False).encode()
        extra = {"Cache-Control": "no-store", **(headers or {})}
        self._send(status, body, "application/json", extra)

    def _send_file(self, full: str, content_type: str | None = None, cache: bool = False) -> None:
        with open(full, "rb") as file:
            body = file.read()
        if content_type is None:
            content_type = _content_type(full)
        headers = {"Cache-Control": "max-age=86400" if cache else "no-cache"}
        if content_type.startswith("text/html"):
            headers["Content-Security-Policy"] = PAGE_POLICY
        self._send(HTTPStatus.OK, body, content_type, headers)

    def _send_artifact(self, full: str, query: dict[str, str]) -> None:
        name = os.path.basename(full)
        headers = {"Cache-Control": "no-cache", "Content-Security-Policy": ARTIFACT_POLICY}
        if query.get("download"):
            quoted = urllib.parse.quote(name)
            headers["Content-Disposition"] = f"attachment; filename*=UTF-8''{quoted}"
            content_type = "application/octet-stream"
        else:
            content_type = _content_type(full)
            if queries.artifact_kind(full) in ("json", "csv", "text"):
                content_type = "text/plain; charset=utf-8"
        limit = queries.PREVIEW_BYTES if query.get("preview") else None
        with open(full, "rb") as file:
            body = file.read(limit) if limit else file.read()
            if limit and file.read(1):
                headers["X-Preview-Truncated"] = "1"
        self._send(HTTPStatus.OK, body, content_type, headers)


def _content_type(path: str) -> str:
    guessed, _ = mimetypes.guess_type(path)
    guessed = guessed or "application/octet-stream"
    if guessed.startswith("text/") or guessed in ("application/javascript", "image/svg+xml"):
        guessed += "; charset=utf-8"
    return guessed


def ui_command(args: list[str]) -> int:
    """Serve until Ctrl-C (or SIGTERM); return the exit status."""
    try:
        options = _parser().parse_args(args)
    except UiUsageError as exc:
        sys.stderr.write(f"autologagent: error: {exc}\n")
        return USAGE
    from autologagent import _config

    raw_uri = options.uri or os.environ.get("AUTOLOG_TRACKING_URI") or _config.DEFAULT_TRACKING_URI
    try:
        uri = _config.parse_tracking_uri(
            raw_uri, "--uri" if options.uri else "AUTOLOG_TRACKING_URI"
        )
    except _config.ConfigError as exc:
        sys.stderr.write(f"autologagent: error: {exc}\n")
        return USAGE
    if "://" in uri and not uri.startswith(("sqlite:", "file:")):
        sys.stderr.write(
            f"autologagent: error: the UI reads a local store, not {uri!r}: expected a folder, "
            "file:///folder or sqlite:///path.db\n"
        )
        return USAGE
    if not 0 <= options.port <= 65535:
        sys.stderr.write(f"autologagent: error: --port {options.port}: expected 0 to 65535\n")
        return USAGE
    try:
        import numpy  # noqa: F401  (the chart endpoint's downsampling)

        plotly_script()
    except ImportError as exc:
        sys.stderr.write(
            f"autologagent: error: the UI needs the 'ui' extra ({exc}): "
            "pip install 'autologagent[ui]'\n"
        )
        return ERROR
    database, artifact_root = _config.store_paths(uri)
    try:
        server = UiServer((options.host, options.port), database, artifact_root)
    except OSError as exc:
        sys.stderr.write(
            f"autologagent: error: cannot serve on {options.host}:{options.port}: {exc.strerror}\n"
        )
        return ERROR
    host, port = server.server_address[:2]
    if options.host not in LOOPBACK:
        sys.stderr.write(
            f"autologagent: warning: serving on {options.host}, not 127.0.0.1: anyone who can "
            "reach this machine on that address can read every run and artifact\n"
        )
    shown = f"[{host}]" if ":" in str(host) else host
    if not os.path.exists(database):
        sys.stdout.write(f"no store at {database} yet: the UI shows runs as they appear\n")
    sys.stdout.write(f"autologagent UI at http://{shown}:{port}/ (Ctrl-C to stop)\n")
    sys.stdout.flush()

    def _stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _stop)
    # Ctrl-C stops the server even when started from a shell that ignores SIGINT in
    # background jobs (Python then leaves it ignored).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    sys.stdout.write("autologagent UI stopped\n")
    return OK
