"""Ask a running master how it is doing, over its own port (the answer comes from its loop thread,
between two events, so a busy master still answers promptly)."""
from __future__ import annotations

from typing import Any, Optional

import zmq

from .wire import auth, protocol

WHAT = ("queue", "workers", "tasks", "dashboard")


def query(host: str, port: int, what: str = "queue", timeout: float = 5.0,
          password: Optional[bytes] = None) -> Any:
    """The master's status: a dict for 'queue' and 'dashboard', a list of dicts for 'workers' and 'tasks'.

    A master with a password answers only a client that proves it knows it (``password``).
    Raises TimeoutError if nothing answers at ``host:port`` within ``timeout`` seconds, and
    PermissionError if the master wants a password that was not given or is wrong.
    """
    if what not in WHAT:
        raise ValueError(f"unknown status {what!r}: choose one of {', '.join(WHAT)}")
    ctx = zmq.Context.instance()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    try:
        sock.connect(f"tcp://{host}:{port}")
        sock.send_multipart(protocol.encode("status", what=what))
        reply = _receive(sock, host, port, timeout)
        if reply.type == "challenge":
            if password is None:
                raise PermissionError(f"the manager at {host}:{port} requires a password (give it with -P FILE)")
            nonce = auth.new_nonce()
            sock.send_multipart(protocol.encode(
                "status", what=what, nonce=nonce, proof=auth.status_proof(password, nonce, reply["nonce"])))
            reply = _receive(sock, host, port, timeout)
        if reply.type == "reject":
            raise PermissionError(f"the manager at {host}:{port} refused: {reply['reason']}")
        if reply.type != "status-reply":
            raise ConnectionError(f"unexpected {reply.type!r} from {host}:{port}")
        return reply["data"]
    finally:
        sock.close(0)


def _receive(sock: zmq.Socket, host: str, port: int, timeout: float) -> protocol.Message:
    if not sock.poll(int(timeout * 1000)):
        raise TimeoutError(f"no workqueue manager answered at {host}:{port} within {timeout:g} s")
    return protocol.decode(sock.recv_multipart())
