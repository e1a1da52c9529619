"""The dashboard's HTTP server: one page, its JSON, ``/metrics``; read-only.

A stdlib ``ThreadingHTTPServer`` in a daemon thread (what ``prometheus_client.start_http_server``
runs too): no event loop of its own and no dependency, in the user's process beside the master's
loop. Nothing is computed until a request arrives; the master is then asked through the ``Source``.
Bound to 127.0.0.1 by default; bound anywhere else, every request must carry the master's password
(HTTP basic auth, any user name) and the server refuses to start for a master without one.
"""
from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress
import json
import logging
import os
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Optional, Tuple

from . import metrics, views
from .source import Source

log = logging.getLogger("workqueue.dashboard")

STATIC = os.path.join(os.path.dirname(__file__), "static")
TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
         ".css": "text/css; charset=utf-8", ".png": "image/png"}
DEFAULT_PORT = 8787  # Dask's


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
        host = socket.gethostname() if self.host in ("", "0.0.0.0") else self.host
        return f"http://{host}:{self.port}/"

    def allowed(self, authorization: Optional[str]) -> bool:
        if not self.protected:
            return True
        password = self.source.password()
        given = _basic_password(authorization)
        return bool(password) and given is not None and hmac.compare_digest(given, password)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away mid-answer is no error of ours: logged at debug, not printed."""
        log.debug("dashboard request from %s failed", client_address, exc_info=True)


def _basic_password(authorization: Optional[str]) -> Optional[bytes]:
    """The password of an ``Authorization: Basic`` header (any user name), or None."""
    if not authorization or not authorization.startswith("Basic "):
        return None
    try:
        decoded = base64.b64decode(authorization[6:].strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    return decoded.partition(b":")[2]


def _handler(dashboard: Dashboard) -> type:
    class Handler(BaseHTTPRequestHandler):
        server_version = "workqueue-dashboard"

        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            if not dashboard.allowed(self.headers.get("Authorization")):
                self._send(401, b"the master's password is needed\n", "text/plain; charset=utf-8",
                           [("WWW-Authenticate", 'Basic realm="workqueue"')])
                return
            path = self.path.split("?", 1)[0]
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
