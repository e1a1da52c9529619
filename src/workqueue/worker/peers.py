"""Workers feeding each other: the fetcher, which gets files from peers when the master says where
(``fetch``), downloads URLs (``fetch-url``) and unpacks archives (``unpack``); with the peer server
(``worker.peer_server``) they make the worker's side of the data plane (``WorkerPeers``).

Fetches run in threads of their own, so that neither a slow peer nor a large file ever holds up
the worker's loop; the fetcher hands what it got to the loop through a pipe the loop polls. The
file's digest is checked on arrival, so a lying server can waste time but never plant a file.
A source that does not answer within ``ANSWER_TIMEOUT`` is reported unreachable: the master then
uses another source and no task waits on that peer (cooperative-computing-lab/cctools#3763).
"""
from __future__ import annotations

import collections
import logging
import os
import queue
import threading
from dataclasses import dataclass
from typing import Any, Deque, List, Optional, Tuple

import zmq

from ..data.cache import Cache
from ..data.transfer import Incoming, TransferError
from ..ratelimit import LimitedLog
from ..wire import auth, protocol
from .archives import remove_tree, unpack
from .peer_server import NOT_HERE, PeerServer
from .urls import download

log = logging.getLogger("workqueue.worker")

ANSWER_TIMEOUT = 5.0  # seconds a source has to answer each request (TaskVine gives 5 s too)
STALL_TIMEOUT = 30.0  # seconds without a chunk before a transfer under way is given up
FETCHERS = 4  # transfers this worker makes at once (TaskVine: --max-transfer-procs, 10)
JOBS_MAX = 4096  # transfers, downloads and unpackings waiting here at most: past it, a broken master


# -- the client --------------------------------------------------------------------------------
class PeerRefused(Exception):
    """A source answered but would not give the file (wrong key, file not there)."""


class PeerGone(PeerRefused):
    """A source that does not hold the file (any more)."""


class PeerUnreachable(Exception):
    """A source that did not answer in time."""




def fetch_from_peer(ctx: zmq.Context, source: str, digest: str, key: bytes, tmp_path: str,
                    expected_size: int = -1, answer_timeout: float = ANSWER_TIMEOUT,
                    curve_key: bytes = b"") -> Tuple[Incoming, int]:
    """Get one file from the peer at ``source`` into ``tmp_path``: (the verified file, its mode).
    With the source's ``curve_key``, over CURVE (a key pair of our own for this one connection); a
    source that does not hold that key's secret never answers: PeerUnreachable.
    Raises PeerUnreachable, PeerRefused, or TransferError for a file that arrives damaged."""
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.MAXMSGSIZE, protocol.MAX_FRAME_BYTES)
    sock.setsockopt(zmq.RCVHWM, 64)
    if curve_key:
        sock.curve_publickey, sock.curve_secretkey = zmq.curve_keypair()
        sock.curve_serverkey = curve_key
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
    curve_key: bytes = b""  # the source's, to reach it over CURVE
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
                                                             job.tmp_path, job.size, curve_key=job.curve_key)
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
                 complain: Optional[LimitedLog] = None, encrypted: bool = False) -> None:
        """``encrypted``: this worker's master uses CURVE; so do its transfers from and to peers."""
        self.cache = cache
        self.encrypted = encrypted
        self.server = PeerServer(ctx, cache.root, contact_host, encrypted=encrypted)
        self.fetcher = PeerFetcher(ctx, os.path.join(cache.root, "tmp"))
        self.complain = complain or LimitedLog(log)
        self.key: Optional[bytes] = None
        self._session = 0
        self._xfers = 0

    @property
    def address(self) -> str:
        return self.server.address

    @property
    def curve_public(self) -> bytes:
        return self.server.curve_public

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
        if self.encrypted and not message["source_curve"]:
            session.send(protocol.encode("fetched", xfer=message["xfer"], digest=digest, unreachable=True,
                                         reason="refused: the source has no CURVE key, and this worker "
                                                "moves files in plain text to no one"))
            return
        self._xfers += 1
        tmp_path = os.path.join(self.fetcher.tmp_dir, f"peer-{self._xfers}-{digest}")
        self._queue(session, _Job(self._session, message["xfer"], digest, message["size"], message["mode"],
                                message["source"], message["keep"], self.key, tmp_path,
                                curve_key=message["source_curve"]))

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
        """Fetches done: into the cache, and the master told (with why, for one that failed). Called
        from the worker's loop: whatever goes wrong with one job fails that job, never the loop."""
        for job in self.fetcher.done():
            try:
                self._done(session, job)
            except Exception as error:
                self.complain("fetch-done-failed", logging.ERROR, "a finished transfer could not be taken in: %r",
                              error, exc_info=error)
                if job.incoming is not None:
                    job.incoming.abort()
                _unlink(job.tmp_path)
                session.send(protocol.encode("fetched", xfer=job.xfer, digest=job.digest,
                                             reason=f"could not be taken in: {error}"[:protocol.REASON_MAX]))

    def _done(self, session: Any, job: _Job) -> None:
        if job.session != self._session:
            if job.incoming is not None:
                job.incoming.abort()
            _unlink(job.tmp_path)
            return
        if job.url:
            self._url_done(session, job)
            return
        if job.unpack:
            self._unpacked(session, job)
            return
        if job.error is None:
            evicted = self.cache.admit(job.digest, job.incoming, job.mode, keep=job.keep)
            job.incoming = None  # in the cache now
            session.send(protocol.encode("fetched", xfer=job.xfer, digest=job.digest, ok=True))
            if evicted:
                session.send(protocol.encode("cache-update", removed=evicted))
            return
        self.complain("fetch-failed", logging.WARNING, "could not get %s from %s: %s", job.digest, job.source, job.error)
        session.send(protocol.encode("fetched", xfer=job.xfer, digest=job.digest,
                                     unreachable=isinstance(job.error, PeerUnreachable),
                                     gone=isinstance(job.error, PeerGone), reason=str(job.error)[:protocol.REASON_MAX]))

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
