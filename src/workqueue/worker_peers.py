"""Workers feeding each other: the peer server, which serves this worker's cache to other workers,
and the fetcher, which gets files from them when the master says where (``fetch``).

Both run in threads of their own, so that neither a slow peer nor a large file ever holds up the
worker's loop; the fetcher hands what it got to the loop through a pipe the loop polls.

The peer protocol is the master's, cut down (every peer is hostile): a client says ``peer-hello``
with its nonce, gets a ``challenge``, and asks for one file with ``peer-get`` and its proof (HMAC
over both nonces with the key its master gave: the password, or the master's peer key); it gets
a ``put`` and the file's ``chunk``s, which it acknowledges, or a ``reject``. A client that does
not prove, or asks for a file this worker does not hold, gets a ``reject`` and nothing else. The
file's digest is checked on arrival, so a lying server can waste time but never plant a file.
A source that does not answer within ``ANSWER_TIMEOUT`` is reported unreachable: the master then
uses another source and no task waits on that peer (cooperative-computing-lab/cctools#3763).
"""
from __future__ import annotations

import collections
import logging
import os
import queue
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Deque, List, Optional, Tuple

import zmq

from . import auth, protocol
from .cache import Cache, is_digest
from .ratelimit import LimitedLog
from .transfer import Credits, FileSource, Incoming, Outbox, TransferError
from .worker_archives import remove_tree, unpack
from .worker_urls import download

log = logging.getLogger("workqueue.worker")

ANSWER_TIMEOUT = 5.0  # seconds a source has to answer each request (TaskVine gives 5 s too)
STALL_TIMEOUT = 30.0  # seconds without a chunk before a transfer under way is given up
CLIENTS_MAX = 64  # peers the server talks to at once; more are refused
CLIENT_IDLE = 60.0  # seconds a peer's state is kept without a word from it
SERVER_CREDITS = 64  # chunks in flight from the server to all its peers together (64 MiB)
FETCHERS = 4  # transfers this worker makes at once (TaskVine: --max-transfer-procs, 10)
JOBS_MAX = 4096  # transfers, downloads and unpackings waiting here at most: past it, a broken master
PEER_MESSAGE_MAX = 64 << 10  # what a peer may send the server in one frame: small messages only


# -- the server --------------------------------------------------------------------------------
@dataclass
class _Client:
    nonce: bytes  # ours, in the challenge
    client_nonce: bytes
    last_heard: float
    outbox: Outbox = field(default_factory=Outbox)


class PeerServer:
    """This worker's cache, served to its peers from a ROUTER socket on an ephemeral port."""

    def __init__(self, ctx: zmq.Context, cache_root: str, contact_host: Optional[str] = None,
                 bind_host: str = "*") -> None:
        self.cache_root = cache_root
        self.key: Optional[bytes] = None  # set by the worker's loop once a master has welcomed it
        self.served_bytes = 0
        self.refused = 0
        self._socket = ctx.socket(zmq.ROUTER)
        self._socket.setsockopt(zmq.LINGER, 0)
        self._socket.setsockopt(zmq.ROUTER_MANDATORY, 1)
        self._socket.setsockopt(zmq.MAXMSGSIZE, PEER_MESSAGE_MAX)
        self._socket.setsockopt(zmq.SNDHWM, 1000)
        port = self._socket.bind_to_random_port(f"tcp://{bind_host}")
        self.address = f"tcp://{contact_host or socket.gethostname()}:{port}"
        self._clients: "collections.OrderedDict[bytes, _Client]" = collections.OrderedDict()
        self._credits = Credits(SERVER_CREDITS)
        self._stop = threading.Event()
        self._complain = LimitedLog(log)
        self._thread = threading.Thread(target=self._run, name="workqueue-peer-server", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                pending = any(c.outbox.pending for c in self._clients.values())
                if self._socket.poll(20 if pending else 200, zmq.POLLIN):
                    self._receive()
                self._pump()
                self._expire(time.monotonic())
        except Exception as error:  # the server stops; the worker goes on, and peers find it unreachable
            log.error("the peer server stopped: %r", error, exc_info=error)
        finally:
            for client in self._clients.values():
                client.outbox.close()
            self._socket.close(0)

    def _receive(self) -> None:
        for _ in range(256):
            try:
                frames = self._socket.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            if len(frames) < 2:
                continue
            try:
                self._handle(frames[0], protocol.decode(frames[1:]))
            except protocol.ProtocolError as error:
                self._refuse(frames[0], f"not understood: {error}")
            except Exception as error:  # a defect of ours: the peer gets nothing, the server goes on
                self._complain("peer-failed", logging.ERROR, "a request from a peer failed: %r", error, exc_info=error)
                self._refuse(frames[0], "the request failed")

    def _handle(self, identity: bytes, message: protocol.Message) -> None:
        now = time.monotonic()
        client = self._clients.get(identity)
        if client is not None:
            client.last_heard = now
        if message.type == "peer-hello":
            self._hello(identity, message["nonce"], now)
        elif message.type == "peer-get" and client is not None:
            self._get(identity, client, message["digest"], message["proof"])
        elif message.type == "ack" and client is not None:
            client.outbox.ack()
        else:
            self._refuse(identity, f"unexpected {message.type!r}")

    def _hello(self, identity: bytes, client_nonce: bytes, now: float) -> None:
        previous = self._clients.pop(identity, None)
        if previous is not None:
            previous.outbox.close()
        if len(self._clients) >= CLIENTS_MAX:
            self._refuse(identity, f"already serving {CLIENTS_MAX} peers")
            return
        client = _Client(auth.new_nonce(), client_nonce, now, Outbox(credits=self._credits))
        self._clients[identity] = client
        self._send(identity, protocol.encode("challenge", nonce=client.nonce))

    def _get(self, identity: bytes, client: _Client, digest: str, proof: bytes) -> None:
        key = self.key
        if key is None or not auth.verify(auth.peer_proof(key, client.client_nonce, client.nonce), proof):
            self._drop(identity)
            self._refuse(identity, "authentication failed: wrong password")
            return
        path = os.path.join(self.cache_root, digest) if is_digest(digest) else None
        try:
            source = FileSource(path) if path else None
            mode = os.stat(path).st_mode & 0o777 if path else 0
        except OSError:
            source = None
        if source is None:
            self._refuse(identity, f"{NOT_HERE}{digest}")
            return
        client.nonce = b""  # one file per proof
        client.outbox.stream(1, protocol.encode("put", xfer=1, digest=digest, size=source.size, mode=mode), source)
        self.served_bytes += source.size

    def _refuse(self, identity: bytes, reason: str) -> None:
        self.refused += 1
        self._send(identity, protocol.encode("reject", reason=reason))

    def _drop(self, identity: bytes) -> None:
        client = self._clients.pop(identity, None)
        if client is not None:
            client.outbox.close()

    def _send(self, identity: bytes, frames: List[Any]) -> None:
        try:
            self._socket.send_multipart([identity, *frames], zmq.NOBLOCK, copy=False)
        except zmq.ZMQError:
            self._drop(identity)  # gone, or reads nothing

    def _pump(self) -> None:
        for identity, client in list(self._clients.items()):
            try:
                client.outbox.pump(lambda frames: self._socket.send_multipart([identity, *frames], zmq.NOBLOCK,
                                                                              copy=False))
            except zmq.Again:
                continue
            except zmq.ZMQError:
                self._drop(identity)

    def _expire(self, now: float) -> None:
        for identity in [i for i, c in self._clients.items() if now - c.last_heard > CLIENT_IDLE]:
            self._drop(identity)


# -- the client --------------------------------------------------------------------------------
class PeerRefused(Exception):
    """A source answered but would not give the file (wrong key, file not there)."""


class PeerGone(PeerRefused):
    """A source that does not hold the file (any more)."""


class PeerUnreachable(Exception):
    """A source that did not answer in time."""


NOT_HERE = "not here: "  # how a server's reject begins when it does not hold the file


def fetch_from_peer(ctx: zmq.Context, source: str, digest: str, key: bytes, tmp_path: str,
                    expected_size: int = -1, answer_timeout: float = ANSWER_TIMEOUT) -> Tuple[Incoming, int]:
    """Get one file from the peer at ``source`` into ``tmp_path``: (the verified file, its mode).
    Raises PeerUnreachable, PeerRefused, or TransferError for a file that arrives damaged."""
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.MAXMSGSIZE, protocol.MAX_FRAME_BYTES)
    sock.setsockopt(zmq.RCVHWM, 64)
    incoming: Optional[Incoming] = None
    try:
        sock.connect(source)
        nonce = auth.new_nonce()
        sock.send_multipart(protocol.encode("peer-hello", nonce=nonce))
        challenge = _answer(sock, source, answer_timeout, ("challenge",))
        sock.send_multipart(protocol.encode("peer-get", digest=digest,
                                            proof=auth.peer_proof(key, nonce, challenge["nonce"])))
        put = _answer(sock, source, answer_timeout, ("put",))
        if put["digest"] != digest or (expected_size >= 0 and put["size"] != expected_size):
            raise TransferError(f"{source} offered {put['digest']} of {put['size']} bytes for {digest}")
        incoming = Incoming(tmp_path, expected_digest=digest, expected_size=put["size"])
        done = False  # even an empty file comes as one (last) chunk
        while not done:
            chunk = _answer(sock, source, STALL_TIMEOUT, ("chunk",))
            sock.send_multipart(protocol.encode("ack", xfer=chunk["xfer"], seq=chunk["seq"]))
            done = incoming.add(chunk["seq"], protocol.as_buffer(chunk.payload[0]), chunk["last"], chunk["digest"])
        return incoming, put["mode"]
    except BaseException:
        if incoming is not None:
            incoming.abort()
        raise
    finally:
        sock.close(0)


def _answer(sock: zmq.Socket, source: str, timeout: float, expected: Tuple[str, ...]) -> protocol.Message:
    if not sock.poll(int(timeout * 1000), zmq.POLLIN):
        raise PeerUnreachable(f"{source} did not answer in {timeout:g} s")
    message = protocol.decode(sock.recv_multipart(copy=False))
    if message.type == "reject":
        gone = message["reason"].startswith(NOT_HERE)
        raise (PeerGone if gone else PeerRefused)(f"{source} refused: {message['reason']}")
    if message.type not in expected:
        raise TransferError(f"{source} sent {message.type!r} where {' or '.join(expected)} was due")
    return message


@dataclass
class _Job:
    session: int
    xfer: int
    digest: str
    size: int
    mode: int
    source: str
    keep: bool
    key: bytes
    tmp_path: str
    incoming: Optional[Incoming] = None
    error: Optional[BaseException] = None
    url: str = ""  # a URL to download instead of a peer to ask
    unpack: str = ""  # an archive to unpack into this directory instead


class PeerFetcher:
    """Transfers from peers, ``FETCHERS`` at once, each in a thread; the loop learns of the ones
    done through ``fileno`` (readable) and takes them with ``done``."""

    def __init__(self, ctx: zmq.Context, tmp_dir: str) -> None:
        self.ctx = ctx
        self.tmp_dir = tmp_dir
        self._jobs: "queue.Queue[Optional[_Job]]" = queue.Queue()
        self._done: Deque[_Job] = collections.deque()
        self._read_fd, self._write_fd = os.pipe()
        os.set_blocking(self._read_fd, False)
        os.set_blocking(self._write_fd, False)
        self._threads = [threading.Thread(target=self._run, name=f"workqueue-fetch-{i}", daemon=True)
                         for i in range(FETCHERS)]
        for thread in self._threads:
            thread.start()

    def fileno(self) -> int:
        return self._read_fd

    def start(self, job: _Job) -> bool:
        """Queue a job; False if too many wait already (it is not queued)."""
        if self._jobs.qsize() >= JOBS_MAX:
            return False
        self._jobs.put(job)
        return True

    def done(self) -> List[_Job]:
        try:
            while os.read(self._read_fd, 4096):
                pass
        except BlockingIOError:
            pass
        jobs = []
        while self._done:
            jobs.append(self._done.popleft())
        return jobs

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            try:
                if job.unpack:
                    unpack(job.unpack, job.tmp_path)
                elif job.url:
                    job.size = download(job.url, job.tmp_path, max_bytes=job.size or None)
                else:
                    job.incoming, job.mode = fetch_from_peer(self.ctx, job.source, job.digest, job.key,
                                                             job.tmp_path, job.size)
            except Exception as error:
                job.error = error
            self._done.append(job)
            try:
                os.write(self._write_fd, b"x")
            except BlockingIOError:
                pass  # the pipe is full of wake-ups already

    def close(self) -> None:
        for _ in self._threads:
            self._jobs.put(None)
        for thread in self._threads:
            thread.join(timeout=0.5)  # one mid-transfer fails once the context is destroyed; never waited on
        if not any(thread.is_alive() for thread in self._threads):  # else it may yet write: the pipe stays
            os.close(self._read_fd)
            os.close(self._write_fd)


class WorkerPeers:
    """The worker's side of the data plane: its server, its fetches, and the messages about them."""

    def __init__(self, ctx: zmq.Context, cache: Cache, contact_host: Optional[str] = None,
                 complain: Optional[LimitedLog] = None) -> None:
        self.cache = cache
        self.server = PeerServer(ctx, cache.root, contact_host)
        self.fetcher = PeerFetcher(ctx, os.path.join(cache.root, "tmp"))
        self.complain = complain or LimitedLog(log)
        self.key: Optional[bytes] = None
        self._session = 0
        self._xfers = 0

    @property
    def address(self) -> str:
        return self.server.address

    def fileno(self) -> int:
        return self.fetcher.fileno()

    def set_key(self, key: Optional[bytes]) -> None:
        """What peers prove with: the password, or the peer key of the master that welcomed us."""
        self.key = self.server.key = key or None

    def end_session(self) -> None:
        """Fetches of a session that ended are dropped when they finish; no one serves its peers."""
        self._session += 1
        self.set_key(None)

    def on_fetch(self, session: Any, message: protocol.Message) -> None:
        digest = message["digest"]
        if self.cache.has(digest):
            session.send(protocol.encode("fetched", xfer=message["xfer"], digest=digest, ok=True))
            return
        budget = self.cache.budget
        if budget is not None and message["size"] > budget:
            session.send(protocol.encode("fetched", xfer=message["xfer"], digest=digest,
                                         reason=f"{message['size']} bytes, more than this worker's disk budget"))
            return
        self._xfers += 1
        tmp_path = os.path.join(self.fetcher.tmp_dir, f"peer-{self._xfers}-{digest}")
        self._queue(session, _Job(self._session, message["xfer"], digest, message["size"], message["mode"],
                                message["source"], message["keep"], self.key, tmp_path))

    def _queue(self, session: Any, job: _Job) -> None:
        if not self.fetcher.start(job):
            self.complain("fetch-refused", logging.WARNING, "refused a transfer: too many wait already")
            session.send(protocol.encode("fetched", xfer=job.xfer, digest=job.digest,
                                         reason="too many transfers wait on this worker"))

    def on_fetch_url(self, session: Any, message: protocol.Message) -> None:
        self._xfers += 1
        tmp_path = os.path.join(self.fetcher.tmp_dir, f"url-{self._xfers}")
        self._queue(session, _Job(self._session, message["xfer"], "", self.cache.budget or 0, 0o644, "",
                                message["keep"], b"", tmp_path, url=message["url"]))

    def completed(self, session: Any) -> None:
        """Fetches done: into the cache, and the master told (with why, for one that failed)."""
        for job in self.fetcher.done():
            if job.session != self._session:
                if job.incoming is not None:
                    job.incoming.abort()
                _unlink(job.tmp_path)
                continue
            if job.url:
                self._url_done(session, job)
                continue
            if job.unpack:
                self._unpacked(session, job)
                continue
            if job.error is None:
                evicted = self.cache.admit(job.digest, job.incoming, job.mode, keep=job.keep)
                session.send(protocol.encode("fetched", xfer=job.xfer, digest=job.digest, ok=True))
                if evicted:
                    session.send(protocol.encode("cache-update", removed=evicted))
                continue
            self.complain("fetch-failed", logging.WARNING, "could not get %s from %s: %s", job.digest, job.source,
                          job.error)
            session.send(protocol.encode("fetched", xfer=job.xfer, digest=job.digest,
                                         unreachable=isinstance(job.error, PeerUnreachable),
                                         gone=isinstance(job.error, PeerGone),
                                         reason=str(job.error)[:protocol.REASON_MAX]))

    def on_unpack(self, session: Any, message: protocol.Message) -> None:
        digest = message["digest"]
        target = self.cache.unpacked_path(digest)
        if os.path.isdir(target):
            session.send(protocol.encode("fetched", xfer=message["xfer"], digest=digest, ok=True))
            return
        if not self.cache.has(digest):
            session.send(protocol.encode("fetched", xfer=message["xfer"], digest=digest, gone=True,
                                         reason=f"the archive {digest} is not in this worker's cache"))
            return
        self._xfers += 1
        tmp_path = os.path.join(self.fetcher.tmp_dir, f"unpack-{self._xfers}")
        self._queue(session, _Job(self._session, message["xfer"], digest, 0, 0o755, "", True, b"", tmp_path,
                                unpack=self.cache.path(digest)))

    def _unpacked(self, session: Any, job: _Job) -> None:
        if job.error is None:
            try:
                target = self.cache.unpacked_path(job.digest)
                os.makedirs(os.path.dirname(target), exist_ok=True)
                os.rename(job.tmp_path, target)
            except OSError as error:
                job.error = error if not os.path.isdir(self.cache.unpacked_path(job.digest)) else None
        if job.error is None:
            session.send(protocol.encode("fetched", xfer=job.xfer, digest=job.digest, ok=True))
            return
        remove_tree(job.tmp_path)
        self.complain("unpack-failed", logging.WARNING, "could not unpack %s: %s", job.digest, job.error)
        session.send(protocol.encode("fetched", xfer=job.xfer, digest=job.digest,
                                     reason=str(job.error)[:protocol.REASON_MAX]))

    def _url_done(self, session: Any, job: _Job) -> None:
        if job.error is None:
            try:
                digest, size, evicted = self.cache.adopt(job.tmp_path, 0o644, temp=False, keep=job.keep)
            except OSError as error:
                job.error = error
            else:
                session.send(protocol.encode("fetched", xfer=job.xfer, digest=digest, size=size, ok=True))
                if evicted:
                    session.send(protocol.encode("cache-update", removed=evicted))
                return
        _unlink(job.tmp_path)
        self.complain("url-failed", logging.WARNING, "could not download %s", job.error)
        session.send(protocol.encode("fetched", xfer=job.xfer, reason=str(job.error)[:protocol.REASON_MAX]))

    def close(self) -> None:
        self.server.close()
        self.fetcher.close()


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
