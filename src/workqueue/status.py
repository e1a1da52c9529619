"""Ask a running master how it is doing, over its own port (the answer comes from its loop thread,
between two events, so a busy master still answers promptly)."""
from __future__ import annotations

from typing import Any

import zmq

from . import protocol

WHAT = ("queue", "workers", "tasks")


def query(host: str, port: int, what: str = "queue", timeout: float = 5.0) -> Any:
    """The master's status: a dict for 'queue', a list of dicts for 'workers' and 'tasks'.

    Raises TimeoutError if nothing answers at ``host:port`` within ``timeout`` seconds.
    """
    if what not in WHAT:
        raise ValueError(f"unknown status {what!r}: choose one of {', '.join(WHAT)}")
    ctx = zmq.Context.instance()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    try:
        sock.connect(f"tcp://{host}:{port}")
        sock.send_multipart(protocol.encode("status", what=what))
        if not sock.poll(int(timeout * 1000)):
            raise TimeoutError(f"no workqueue manager answered at {host}:{port} within {timeout:g} s")
        reply = protocol.decode(sock.recv_multipart())
        if reply.type != "status-reply":
            raise ConnectionError(f"unexpected {reply.type!r} from {host}:{port}")
        return reply["data"]
    finally:
        sock.close(0)
