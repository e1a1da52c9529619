"""The dashboard's HTTP server: one page, its JSON, ``/metrics``; read-only.

A stdlib ``ThreadingHTTPServer`` in a daemon thread (what ``prometheus_client.start_http_server``
runs too): no event loop of its own and no dependency, in the user's process beside the master's
loop. Nothing is computed until a request arrives; the master is then asked through the ``Source``.
Bound to 127.0.0.1 by default; bound anywhere else, every request for figures (``/api/``,
``/metrics``) must carry a token derived from the master's password (``token``), and the server
refuses to start for a master without one. The token, not the password, travels: whoever reads it
off the network may watch, but cannot join as a worker. The page itself (HTML, JS, CSS) holds no
figures and is served to anyone.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import json
import logging
import os
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Optional, Tuple
from urllib.parse import parse_qs, urlsplit

from . import metrics, views
from .source import Source

log = logging.getLogger("workqueue.dashboard")

STATIC = os.path.join(os.path.dirname(__file__), "static")
TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
         ".css": "text/css; charset=utf-8", ".png": "image/png"}
DEFAULT_PORT = 8787  # Dask's
FIGURES = ("/api/status.json", "/metrics")  # what needs the token when the dashboard is not on loopback


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Dashboard:
    """A running dashboard; ``url`` says where, ``close()`` stops it."""

    def __init__(self, source: Source, host: str = "127.0.0.1", port: int = DEFAULT_PORT) -> None:
        self.source = source
        self.host = host
        self.protected = not is_loopback(host)
        if self.protected and not source.password():
            raise ValueError(f"a dashboard bound to {host!r} (not this machine alone) needs the master's password: "
                             "give the manager a password, or bind the dashboard to 127.0.0.1")
        self.registry = metrics.registry(source)
        self.static = {name: os.path.join(STATIC, name) for name in os.listdir(STATIC)}
        try:
            self.server = _Server((host, port), _handler(self))
        except OSError as error:
            raise OSError(error.errno, f"the dashboard cannot listen on {host}:{port}: {error.strerror}") from None
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.5},
                                       name=f"workqueue-dashboard-{self.port}", daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        """Where to point a browser (with the token, when one is needed)."""
        host = socket.gethostname() if self.host in ("", "0.0.0.0") else self.host
        password = self.source.password() if self.protected else None
        return f"http://{host}:{self.port}/" + (f"?token={token(password)}" if password else "")

    def allowed(self, query: str, authorization: Optional[str]) -> bool:
        """Whether a request for figures may have them: always on loopback, else with the token (in
        the query, as a bearer token, or as the password of basic auth)."""
        if not self.protected:
            return True
        password = self.source.password()
        given = _given_token(query, authorization)
        return bool(password) and given is not None and hmac.compare_digest(given, token(password))

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away mid-answer is no error of ours: logged at debug, not printed."""
        log.debug("dashboard request from %s failed", client_address, exc_info=True)


def token(password: bytes) -> str:
    """The dashboard's token for a master with this password (HMAC-SHA256, 128 bits in hex)."""
    return hmac.new(password, b"workqueue dashboard", hashlib.sha256).hexdigest()[:32]


def _given_token(query: str, authorization: Optional[str]) -> Optional[str]:
    """The token a request carries: ``?token=``, ``Authorization: Bearer``, or basic auth's password."""
    values = parse_qs(query).get("token")
    if values:
        return values[0]
    if not authorization:
        return None
    if authorization.startswith("Bearer "):
        return authorization[7:].strip()
    if authorization.startswith("Basic "):
        try:
            decoded = base64.b64decode(authorization[6:].strip(), validate=True)
        except (binascii.Error, ValueError):
            return None
        return decoded.partition(b":")[2].decode("utf-8", "replace")
    return None


def _handler(dashboard: Dashboard) -> type:
    class Handler(BaseHTTPRequestHandler):
        server_version = "workqueue-dashboard"

        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            parts = urlsplit(self.path)
            path = parts.path
            if path in FIGURES and not dashboard.allowed(parts.query, self.headers.get("Authorization")):
                self._send(401, b"this dashboard needs its token (the URL it was started with has it)\n",
                           "text/plain; charset=utf-8", [("WWW-Authenticate", 'Bearer realm="workqueue"')])
                return
            try:
                self._route(path)
            except (OSError, RuntimeError) as error:  # timeouts, refusals, a closed or stopped manager
                self._json(502, {"error": f"the master did not answer: {error}"})

        def _route(self, path: str) -> None:
            if path == "/":
                self._file("index.html")
            elif path.startswith("/static/"):
                self._file(path[len("/static/"):])
            elif path == "/api/status.json":
                self._json(200, views.page(dashboard.source.answer(), dashboard.source.label))
            elif path == "/metrics":
                self._send(200, metrics.exposition(dashboard.registry), metrics.CONTENT_TYPE)
            elif path == "/health":
                self._send(200, b"ok\n", "text/plain; charset=utf-8")
            else:
                self._send(404, b"not found\n", "text/plain; charset=utf-8")

        def _file(self, name: str) -> None:
            path = dashboard.static.get(name)
            if path is None:
                self._send(404, b"not found\n", "text/plain; charset=utf-8")
                return
            with open(path, "rb") as f:
                self._send(200, f.read(), TYPES.get(os.path.splitext(name)[1], "application/octet-stream"))

        def _json(self, code: int, data: Any) -> None:
            self._send(code, json.dumps(data, separators=(",", ":"), default=str).encode(), "application/json")

        def _send(self, code: int, body: bytes, content_type: str, headers: Tuple = ()) -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            for name, value in headers:
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (http.server's name)
            log.debug("%s %s", self.address_string(), format % args)

    return Handler


def start(source: Source, port: int = DEFAULT_PORT, host: str = "127.0.0.1") -> Dashboard:
    return Dashboard(source, host, port)
