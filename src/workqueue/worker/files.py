"""Files a master puts into a worker's cache: ``put`` opens a transfer, ``chunk``s fill and verify
it, ``invalidate`` drops a cached file; and why a task's input is not there when the task arrives."""
from __future__ import annotations

import errno
import logging
from typing import Dict, Optional, Set, Tuple

from ..constants import Result
from ..data.cache import Cache
from ..data.transfer import TransferError
from ..ratelimit import LimitedLog
from ..wire import protocol
from .sandbox import Sandbox
from .session import Session

log = logging.getLogger("workqueue.worker")

# Transfers open at once on one session. A master streams one file at a time to a worker (its
# outbox sends a stream whole before the next item), so more than a few is a broken master; each
# open transfer holds a file descriptor.
INCOMING_MAX = 16
FAILURES_REMEMBERED = 1024


class InputTooLarge(Exception):
    """A file larger than the whole cache budget: it could never be kept, however long we wait."""

    def __init__(self, size: int, budget: int) -> None:
        super().__init__(f"{size} bytes, more than this worker's disk budget of {budget} bytes (--disk)")
        self.size = size
        self.budget = budget


class FileReceiver:
    def __init__(self, cache: Cache, worker_name: str, complain: Optional[LimitedLog] = None) -> None:
        self.cache = cache
        self.worker_name = worker_name  # for messages a user reads: "worker-... (host)"
        self.complain = complain or LimitedLog(log)
        self.failed: Dict[str, Exception] = {}  # digest -> why its last transfer failed
        self.keep_on_arrival: Set[int] = set()  # transfers of cached files: the master hears when they are in

    def on_put(self, session: Session, message: protocol.Message) -> None:
        xfer, digest, size = message["xfer"], message["digest"], message["size"]
        budget = self.cache.budget
        if budget is not None and type(size) is int and size > budget:
            self._failed(digest, InputTooLarge(size, budget))
            session.send(protocol.encode("cache-update", removed=[digest]))
            return
        if xfer not in session.incoming and len(session.incoming) >= INCOMING_MAX:
            self.complain("put-refused", logging.WARNING, "refused a file from the manager: already %d "
                          "transfers open", len(session.incoming))
            return
        try:
            incoming = self.cache.receive(digest, size, xfer)
        except ValueError as error:
            self.complain("put-refused", logging.WARNING, "refused a file from the manager: %s", error)
            return
        previous = session.incoming.pop(xfer, None)
        if previous is not None:
            previous[0].abort()
        session.incoming[xfer] = (incoming, digest, message["mode"])
        if message.fields.get("keep"):
            self.keep_on_arrival.add(xfer)
        else:
            self.keep_on_arrival.discard(xfer)

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
            self.complain("receive-failed", logging.WARNING, "receiving %s failed: %s", digest, error)
            incoming.abort()
            session.incoming.pop(message["xfer"], None)
            self.keep_on_arrival.discard(message["xfer"])
            self._failed(digest, error)
            session.send(protocol.encode("cache-update", removed=[digest]))
            return
        if done:
            session.incoming.pop(message["xfer"])
            self.failed.pop(digest, None)
            keep = message["xfer"] in self.keep_on_arrival
            self.keep_on_arrival.discard(message["xfer"])
            evicted = self.cache.admit(digest, incoming, mode, keep=keep)
            if evicted or keep:
                session.send(protocol.encode("cache-update", added=[digest] if keep and digest not in evicted else [],
                                             removed=evicted))

    def on_invalidate(self, session: Session, message: protocol.Message) -> None:
        self.cache.remove(message["digest"])

    def _failed(self, digest: str, error: Exception) -> None:
        if len(self.failed) >= FAILURES_REMEMBERED:
            del self.failed[next(iter(self.failed))]
        self.failed[digest] = error

    def why_missing(self, sandbox: Sandbox, digest: str) -> Tuple[Result, str]:
        """A file that cannot fit, or a full disk, fails the task clearly (running it again would
        not help); a damaged transfer sends it back to run again."""
        name = next((n for d, n, _, _ in sandbox.task["inputs"] if d == digest), digest)
        error = self.failed.get(digest)
        if isinstance(error, InputTooLarge):
            message = f"input {name!r} is {error} on worker {self.worker_name}"
        elif isinstance(error, OSError) and error.errno == errno.ENOSPC:
            message = f"no space left on worker {self.worker_name} to receive input {name!r}"
        else:
            self.complain("input-damaged", logging.WARNING, "task %d: input %r did not arrive intact (%s)",
                          sandbox.task_id, name, error)
            return Result.FORSAKEN, f"input {name} did not arrive intact"
        self.complain("input-unfit", logging.WARNING, "task %d: %s", sandbox.task_id, message)
        return Result.DISK_ALLOC_FULL, message
