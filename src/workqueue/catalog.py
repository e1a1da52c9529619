"""Name advertisement and lookup: masters with a project name advertise, ``-M NAME`` workers find them.

Two backends, chosen by the ``catalog`` argument (or, when it is None, by the environment):

* a **directory** (zero configuration; one machine or a shared filesystem): one JSON file per master,
  ``$WORKQUEUE_CATALOG_DIR`` or ``~/.workqueue/catalog/``. Used when ``catalog`` is None and
  ``CATALOG_HOST`` is unset, or when ``catalog`` looks like a path (has a ``/`` or starts with ``~``).
* a **catalog server** (``workqueue catalog``, :class:`CatalogServer`): ``catalog="HOST:PORT"`` or
  ``CATALOG_HOST``/``CATALOG_PORT``. Masters send their record as a UDP datagram to HOST:PORT (fire and
  forget, so a dead catalog never stalls a master; also accepted: ``POST /update`` with the JSON body);
  lookups are ``GET /query.json`` over TCP on the same port number.

A record: ``{"type": "wq_master", "name", "host", "port", "pid", "owner", "started", "updated"}``.
A record is stale when older than :data:`MAX_AGE` seconds, or (directory) when it names a dead pid on
this host. Nothing here starts a thread or opens a socket at import, and nothing ever contacts a host
that the caller or the environment did not name.
"""
from __future__ import annotations

import getpass
import json
import logging
import os
import re
import socket
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from typing import Any, Dict, List, Optional, Tuple

logger = logging.getLogger(__name__)

DEFAULT_CATALOG_PORT = 9097
REFRESH_INTERVAL = 30.0  # seconds between a master's updates
MAX_AGE = 120.0  # seconds after which a record is ignored (four missed updates)
QUERY_TIMEOUT = 5.0
MAX_RECORD = 16 * 1024  # bytes: one record, one datagram
RECORD_TYPE = "wq_master"

Endpoint = Tuple[str, int]


# -- where is the catalog? ------------------------------------------------------------------------
def default_directory() -> str:
    return os.path.expanduser(os.environ.get("WORKQUEUE_CATALOG_DIR") or "~/.workqueue/catalog")


def resolve(catalog: Optional[str] = None) -> Tuple[str, Any]:
    """``("dir", path)`` or ``("server", (host, port))`` for a catalog spec, None meaning the environment."""
    if catalog is None:
        host = os.environ.get("CATALOG_HOST")
        if not host:
            return ("dir", default_directory())
        catalog = f"{host}:{os.environ.get('CATALOG_PORT') or DEFAULT_CATALOG_PORT}" if ":" not in host else host
    if catalog.startswith(("~", "/", ".")) or os.sep in catalog:
        return ("dir", os.path.expanduser(catalog))
    host, _, port = catalog.rpartition(":") if ":" in catalog else (catalog, "", "")
    return ("server", (host.strip("[]") or "localhost", int(port) if port else DEFAULT_CATALOG_PORT))


def _record(name: str, host: str, port: int, started: float, extra: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    record: Dict[str, Any] = dict(extra or {})
    record.update(type=RECORD_TYPE, name=name, host=host, port=int(port), pid=os.getpid(),
                  owner=_owner(), started=started, updated=time.time(), hostname=socket.gethostname())
    return record


def _owner() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return str(os.getuid())


# -- advertising ----------------------------------------------------------------------------------
class Advertiser:
    """Keeps one master's record fresh. Call :meth:`maybe_refresh` from the master's loop (cheap: a
    clock check; every :data:`REFRESH_INTERVAL` seconds it writes a small file or sends one datagram,
    neither of which can block on a dead peer). :meth:`close` withdraws the record."""

    def __init__(self, name: str, host: str, port: int, catalog: Optional[str] = None,
                 interval: float = REFRESH_INTERVAL) -> None:
        self.name, self.host, self.port = name, host, int(port)
        self.kind, self.where = resolve(catalog)
        self.interval = interval
        self.started = time.time()
        self.extra: Dict[str, Any] = {}
        self._last = 0.0
        self._closed = False
        self._lock = threading.Lock()  # refresh() from the master's loop, close() from the user's thread
        self._sock: Optional[socket.socket] = None
        self._address: Optional[Tuple[Any, ...]] = None
        if self.kind == "dir":
            os.makedirs(self.where, exist_ok=True)
            safe = re.sub(r"[^A-Za-z0-9_.-]", "_", f"{socket.gethostname()}-{self.port}-{os.getpid()}")
            self.path = os.path.join(self.where, safe + ".json")
        else:
            host_, port_ = self.where
            # resolve once, here, so that a refresh never waits on DNS
            family, _, _, _, address = socket.getaddrinfo(host_, port_, type=socket.SOCK_DGRAM)[0]
            self._sock = socket.socket(family, socket.SOCK_DGRAM)
            self._sock.setblocking(False)
            self._address = address
        self.refresh()

    def refresh(self, extra: Optional[Dict[str, Any]] = None) -> None:
        """Publish the record now (``extra``: more fields, e.g. tasks waiting, workers connected)."""
        with self._lock:
            if self._closed:
                return
            if extra is not None:
                self.extra = dict(extra)
            self._last = time.monotonic()
            data = json.dumps(_record(self.name, self.host, self.port, self.started, self.extra)).encode()
            if len(data) > MAX_RECORD:  # one datagram, one file read: drop the extras rather than the record
                data = json.dumps(_record(self.name, self.host, self.port, self.started, None)).encode()
            try:
                if self.kind == "dir":
                    _atomic_write(self.path, data)
                else:
                    self._sock.sendto(data, self._address)
            except OSError as exc:  # a full disk or an unreachable catalog must not break the master
                logger.warning("catalog update to %s failed: %s", self.where, exc)

    def maybe_refresh(self, now: Optional[float] = None) -> bool:
        """Refresh if the interval has passed; returns whether it did."""
        if self._closed or (now if now is not None else time.monotonic()) - self._last < self.interval:
            return False
        self.refresh()
        return True

    def close(self) -> None:
        """Withdraw the record (delete the file, or tell the server)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        try:
            if self.kind == "dir":
                os.unlink(self.path)
            else:
                gone = {"type": RECORD_TYPE, "host": self.host, "port": self.port, "closed": True}
                self._sock.sendto(json.dumps(gone).encode(), self._address)
        except OSError:
            pass
        if self._sock is not None:
            self._sock.close()

    def __enter__(self) -> "Advertiser":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def advertise(name: str, host: str, port: int, catalog: Optional[str] = None) -> Advertiser:
    """Start advertising master ``name`` at ``host:port``; publishes once immediately."""
    return Advertiser(name, host, port, catalog)


def _atomic_write(path: str, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


# -- looking up -----------------------------------------------------------------------------------
def records(catalog: Optional[str] = None, max_age: float = MAX_AGE) -> List[Dict[str, Any]]:
    """Every live master record in the catalog, newest first."""
    kind, where = resolve(catalog)
    found = _dir_records(where, max_age) if kind == "dir" else _server_records(where)
    now = time.time()
    live = [r for r in found if r.get("type") == RECORD_TYPE and now - float(r.get("updated", 0)) <= max_age]
    live.sort(key=lambda r: float(r.get("updated", 0)), reverse=True)
    return live


def lookup(name_regex: str, catalog: Optional[str] = None, max_age: float = MAX_AGE) -> List[Tuple[str, str, int]]:
    """``[(name, host, port)]`` of live masters whose whole name matches ``name_regex``, newest first."""
    pattern = re.compile(name_regex)
    return [(r["name"], r["host"], int(r["port"])) for r in records(catalog, max_age)
            if isinstance(r.get("name"), str) and pattern.fullmatch(r["name"])]


def _dir_records(directory: str, max_age: float) -> List[Dict[str, Any]]:
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return []
    here = socket.gethostname()
    out = []
    for entry in names:
        if not entry.endswith(".json") or entry.startswith("."):
            continue
        path = os.path.join(directory, entry)
        try:
            with open(path, "rb") as f:
                record = json.loads(f.read(MAX_RECORD + 1))
            if not isinstance(record, dict):
                continue
        except (OSError, ValueError):
            continue
        if record.get("hostname") == here and not _pid_alive(record.get("pid")):
            _remove_quietly(path)  # a master that died without closing
            continue
        if time.time() - float(record.get("updated", 0)) > 10 * max_age:
            _remove_quietly(path)  # long dead on some other host
            continue
        out.append(record)
    return out


def _pid_alive(pid: Any) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _server_records(endpoint: Endpoint) -> List[Dict[str, Any]]:
    host, port = endpoint
    url = f"http://{host if ':' not in host else '[' + host + ']'}:{port}/query.json"
    try:
        with urllib.request.urlopen(url, timeout=QUERY_TIMEOUT) as response:
            data = json.loads(response.read())
    except (OSError, ValueError) as exc:
        logger.warning("catalog query %s failed: %s", url, exc)
        return []
    return [r for r in data if isinstance(r, dict)] if isinstance(data, list) else []


def post_update(endpoint: str, record: Dict[str, Any], timeout: float = QUERY_TIMEOUT) -> None:
    """Send a record over HTTP (``POST /update``) instead of UDP: for tools and tests."""
    kind, (host, port) = resolve(endpoint)
    request = urllib.request.Request(f"http://{host}:{port}/update", data=json.dumps(record).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=timeout) as response:
        response.read()


# -- the catalog server -----------------------------------------------------------------------------
class CatalogServer:
    """A tiny catalog: UDP datagrams and ``POST /update`` add records; ``GET /query.json`` lists them.

    Records are keyed by (host, port), stamped with the server's own clock when heard from (so the
    masters' clocks do not matter) and forgotten ``max_age`` seconds later. TCP and UDP share one port
    number. ``start()`` serves from two daemon threads; ``serve_forever()`` blocks (the CLI).
    """

    def __init__(self, host: str = "", port: int = DEFAULT_CATALOG_PORT, max_age: float = MAX_AGE,
                 max_records: int = 10000) -> None:
        import http.server

        self.max_age, self.max_records = max_age, max_records
        self._records: Dict[Tuple[str, int], Dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: List[Any] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                url = urllib.parse.urlsplit(self.path)
                if url.path not in ("/query.json", "/"):
                    self.send_error(404)
                    return
                self._reply(200, server.query())

            def do_POST(self) -> None:  # noqa: N802
                if urllib.parse.urlsplit(self.path).path != "/update":
                    self.send_error(404)
                    return
                size = int(self.headers.get("Content-Length") or 0)
                if not 0 < size <= MAX_RECORD:
                    self.send_error(413 if size else 411)
                    return
                ok = server.update(self.rfile.read(size), self.client_address[0])
                self._reply(200 if ok else 400, {"ok": ok})

            def _reply(self, code: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, fmt: str, *args: Any) -> None:
                logger.debug("catalog http: " + fmt, *args)

        class HTTPServer(http.server.ThreadingHTTPServer):
            daemon_threads = True
            address_family = socket.AF_INET6 if ":" in host else socket.AF_INET

        for _ in range(20):  # port 0: find a number free for both TCP and UDP
            self._http = HTTPServer((host, port), Handler)
            self.port = self._http.server_address[1]
            self._udp = socket.socket(HTTPServer.address_family, socket.SOCK_DGRAM)
            try:
                self._udp.bind((host, self.port))
                break
            except OSError:
                self._udp.close()
                self._http.server_close()
                if port:
                    raise
        else:
            raise OSError("no port free for both TCP and UDP")
        self._udp.settimeout(0.5)

    def update(self, data: bytes, sender: str) -> bool:
        """Take one record (JSON bytes) from ``sender``; False if it is not a valid master record."""
        try:
            record = json.loads(data)
            host = str(record.get("host") or sender)
            port = int(record["port"])
        except (ValueError, TypeError, KeyError, AttributeError):
            return False
        if record.get("type") != RECORD_TYPE or not 0 < port < 65536:
            return False
        key = (host, port)
        with self._lock:
            if record.get("closed"):
                self._records.pop(key, None)
                return True
            if not isinstance(record.get("name"), str):
                return False
            if key not in self._records and len(self._records) >= self.max_records:
                self._expire()
                if len(self._records) >= self.max_records:
                    return False
            record.update(host=host, port=port, updated=time.time(), address=sender)
            self._records[key] = record
        return True

    def query(self) -> List[Dict[str, Any]]:
        with self._lock:
            self._expire()
            return sorted(self._records.values(), key=lambda r: r["updated"], reverse=True)

    def _expire(self) -> None:
        cutoff = time.time() - self.max_age
        for key in [k for k, r in self._records.items() if r["updated"] < cutoff]:
            del self._records[key]

    def _serve_udp(self) -> None:
        while not self._stop.is_set():
            try:
                data, sender = self._udp.recvfrom(MAX_RECORD + 1)
            except socket.timeout:
                continue
            except OSError:
                return
            if len(data) <= MAX_RECORD:
                self.update(data, sender[0])

    def start(self) -> "CatalogServer":
        for target in (self._serve_udp, self._http.serve_forever):
            thread = threading.Thread(target=target, name="catalog-server", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def serve_forever(self) -> None:
        udp = threading.Thread(target=self._serve_udp, name="catalog-udp", daemon=True)
        udp.start()
        self._threads.append(udp)
        try:
            self._http.serve_forever()
        finally:
            self.close()

    def close(self) -> None:
        if self._stop.is_set():
            return
        self._stop.set()
        if any(t.name == "catalog-server" for t in self._threads):
            self._http.shutdown()
        self._http.server_close()
        for thread in self._threads:
            thread.join(2)
        self._udp.close()

    def __enter__(self) -> "CatalogServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
