"""Files a master puts into a worker's cache: ``put`` opens a transfer, ``chunk``s fill and verify
it, ``invalidate`` drops a cached file; and why a task's input is not there when the task arrives."""
from __future__ import annotations

import errno
import logging
from typing import Dict, Tuple

from . import protocol
from .cache import Cache
from .constants import Result
from .sandbox import Sandbox
from .transfer import TransferError
from .worker_session import Session

log = logging.getLogger("workqueue.worker")


class FileReceiver:
    def __init__(self, cache: Cache, worker_name: str) -> None:
        self.cache = cache
        self.worker_name = worker_name  # for messages a user reads: "worker-... (host)"
        self.failed: Dict[str, Exception] = {}  # digest -> why its last transfer failed

    def on_put(self, session: Session, message: protocol.Message) -> None:
        incoming = self.cache.receive(message["digest"], message["size"], message["xfer"])
        session.incoming[message["xfer"]] = (incoming, message["digest"], message["mode"])

    def on_chunk(self, session: Session, message: protocol.Message) -> None:
        session.send_now(protocol.encode("ack", xfer=message["xfer"], seq=message["seq"]))
        entry = session.incoming.get(message["xfer"])
        if entry is None:
            return
        incoming, digest, mode = entry
        try:
            done = incoming.add(message["seq"], protocol.as_buffer(message.payload[0]), message["last"],
                                message["digest"])
        except (TransferError, OSError) as error:
            log.warning("receiving %s failed: %s", digest, error)
            incoming.abort()
            session.incoming.pop(message["xfer"], None)
            self.failed[digest] = error
            session.send(protocol.encode("cache-update", removed=[digest]))
            return
        if done:
            session.incoming.pop(message["xfer"])
            self.failed.pop(digest, None)
            evicted = self.cache.admit(digest, incoming, mode)
            if evicted:
                session.send(protocol.encode("cache-update", removed=evicted))

    def on_invalidate(self, session: Session, message: protocol.Message) -> None:
        self.cache.remove(message["digest"])

    def why_missing(self, sandbox: Sandbox, digest: str) -> Tuple[Result, str]:
        """A full disk fails the task clearly; a damaged transfer sends it back to run again."""
        name = next((n for d, n, _, _ in sandbox.task["inputs"] if d == digest), digest)
        error = self.failed.get(digest)
        if isinstance(error, OSError) and error.errno == errno.ENOSPC:
            message = f"no space left on worker {self.worker_name} to receive input {name!r}"
            log.warning("task %d: %s", sandbox.task_id, message)
            return Result.DISK_ALLOC_FULL, message
        log.warning("task %d: input %r did not arrive intact (%s)", sandbox.task_id, name, error)
        return Result.FORSAKEN, f"input {name} did not arrive intact"
