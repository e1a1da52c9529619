"""A worker's peer server: its cache, served to other workers from a ROUTER socket on an ephemeral
port, in a thread of its own (so that no peer ever holds up the worker's loop).

A client says ``peer-hello`` with its nonce, gets a ``challenge``, and asks for one file with
``peer-get`` and its proof (HMAC over both nonces with the key its master gave: the password, or
the master's peer key); it gets a ``put`` and the file's ``chunk``s, which it acknowledges, or a
``reject``. A client that does not prove, or asks for a file this worker does not hold, gets a
``reject`` and nothing else. At most CLIENTS_MAX peers at once, each forgotten once its file is
acknowledged or after CLIENT_IDLE seconds of silence; frames past PEER_MESSAGE_MAX end the connection.

A worker whose master uses CURVE serves with CURVE too (``encrypted``), with a key pair made for
this server alone: the master hands its public key to the peers it sends here (``fetch``'s
``source_curve``), so a client knows it talks to this server, and no byte crosses in plain text.
The proof still says who the client is; any client key may start the handshake.
"""
from __future__ import annotations

import collections
import logging
import os
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any, List, Optional

import zmq

from ..data.cache import is_digest
from ..data.transfer import Credits, FileSource, Outbox
from ..ratelimit import LimitedLog
from ..wire import auth, protocol

log = logging.getLogger("workqueue.worker")

CLIENTS_MAX = 64  # peers the server talks to at once; more are refused
CLIENT_IDLE = 60.0  # seconds a peer's state is kept without a word from it
SERVER_CREDITS = 64  # chunks in flight from the server to all its peers together (64 MiB)
PEER_MESSAGE_MAX = 64 << 10  # what a peer may send the server in one frame: small messages only
NOT_HERE = "not here: "  # how a reject begins when the server does not hold the file


@dataclass
class _Client:
    nonce: bytes  # ours, in the challenge
    client_nonce: bytes
    last_heard: float
    outbox: Outbox = field(default_factory=Outbox)


class PeerServer:
    """This worker's cache, served to its peers from a ROUTER socket on an ephemeral port."""

    def __init__(self, ctx: zmq.Context, cache_root: str, contact_host: Optional[str] = None,
                 bind_host: str = "*", encrypted: bool = False) -> None:
        self.cache_root = cache_root
        self.curve_public = b""  # what peers must be told to reach this server, when it is encrypted
        self.key: Optional[bytes] = None  # set by the worker's loop once a master has welcomed it
        self.served_bytes = 0
        self.refused = 0
        self._socket = ctx.socket(zmq.ROUTER)
        self._socket.setsockopt(zmq.LINGER, 0)
        self._socket.setsockopt(zmq.ROUTER_MANDATORY, 1)
        self._socket.setsockopt(zmq.MAXMSGSIZE, PEER_MESSAGE_MAX)
        self._socket.setsockopt(zmq.SNDHWM, 1000)
        if encrypted:
            self.curve_public, secret = zmq.curve_keypair()
            self._socket.curve_secretkey = secret
            self._socket.curve_publickey = self.curve_public
            self._socket.curve_server = True
        port = self._socket.bind_to_random_port(f"tcp://{bind_host}")
        self.address = f"tcp://{contact_host or socket.gethostname()}:{port}"
        self._clients: "collections.OrderedDict[bytes, _Client]" = collections.OrderedDict()
        self._credits = Credits(SERVER_CREDITS)
        self._stop = threading.Event()
        # close() writes here: the thread wakes at once instead of at the end of its poll (up to a
        # fifth of a second of every worker's exit, waited for by whoever stops it)
        self._wake_read, self._wake_write = os.pipe()
        self._poller = zmq.Poller()
        self._poller.register(self._socket, zmq.POLLIN)
        self._poller.register(self._wake_read, zmq.POLLIN)
        self._complain = LimitedLog(log)
        self._thread = threading.Thread(target=self._run, name="workqueue-peer-server", daemon=True)
        self._thread.start()

    def close(self) -> None:
        if self._stop.is_set():
            return
        self._stop.set()
        os.write(self._wake_write, b"x")
        self._thread.join(timeout=5)
        if not self._thread.is_alive():  # else it may yet poll the pipe: it stays open
            os.close(self._wake_read)
            os.close(self._wake_write)

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                pending = any(c.outbox.pending for c in self._clients.values())
                events = dict(self._poller.poll(20 if pending else 200))
                if self._socket in events:
                    self._receive()
                self._pump()
                self._expire(time.monotonic())
        except Exception as error:  # the server stops; the worker goes on, and peers find it unreachable
            if not self._socket.closed:  # else the worker, stopped while starting, destroyed its context
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
            if not client.nonce and client.outbox.settled:  # its one file is all there: its place is free
                self._drop(identity)
        else:
            self._drop(identity)
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
            source = FileSource(path, digest=digest) if path else None
            mode = os.stat(path).st_mode & 0o777 if path else 0
        except OSError:
            source = None
        if source is None:
            self._drop(identity)  # its one question is answered: its place is free again
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
