"""Taking prefetched tasks back from busy workers for idle ones.

A task is prefetched (queued on a busy worker) when its kind is known to be short. When that
guess is wrong, or a worker joins after the queue was handed out, a queued task could wait behind
a long one while another worker sits idle. So a task that has waited queued for longer than
REVOKE_AFTER_SECONDS (prefetching aims at about PREFETCH_QUEUE_SECONDS of work per core) is
taken back for a worker with room: the master sends ``revoke``; the worker answers ``revoked``,
saying whether it had not yet started the task (it then never will) or had. Until the answer the
task stays booked where it is, so exactly one worker runs it.
"""
from __future__ import annotations

import logging
import math
import time
from typing import TYPE_CHECKING

from ..wire import protocol
from .records import WorkerConn

if TYPE_CHECKING:
    from .loop import ManagerLoop

log = logging.getLogger("workqueue.manager")

REVOKE_AFTER_SECONDS = 0.1  # queued this long, a task may go to an idle worker instead
CHECK_INTERVAL = 0.02  # seconds between searches for tasks to take back


class Revocations:
    def __init__(self, loop: "ManagerLoop") -> None:
        self.loop = loop
        self._next_check = 0.0
        self.wake_at = math.inf  # when a queued task becomes old enough to take back (monotonic)

    def take_back(self, now: float) -> None:
        """Send a ``revoke`` for each queued task that an idle worker should run instead."""
        if now < self._next_check:
            return
        self._next_check = now + CHECK_INTERVAL
        loop = self.loop
        wall_now = time.time()
        youngest_wait = math.inf

        def waited_enough(task_id: int) -> bool:
            nonlocal youngest_wait
            left = REVOKE_AFTER_SECONDS - (wall_now - loop.tasks[task_id].dispatch_time)
            if left <= 0:
                return True
            youngest_wait = min(youngest_wait, left)
            return False

        for task_id, holder in loop.scheduler.revocations(waited_enough):
            record = loop.tasks[task_id]
            loop.send_to(loop.workers[holder], protocol.encode("revoke", task_id=task_id, attempt=record.attempts))
            log.debug("taking task %d back from worker %s", task_id, loop.workers[holder].worker_id)
            loop.counters["revocations_sent"] += 1
        self.wake_at = now + max(youngest_wait, CHECK_INTERVAL) if youngest_wait < math.inf else math.inf

    def answered(self, conn: WorkerConn, message: protocol.Message) -> None:
        """A worker's answer to a ``revoke``: a task it gave back returns to its place in line."""
        loop = self.loop
        record = loop.current(conn, message["task_id"], message["attempt"])
        if record is None:
            return
        revoked = message["revoked"]  # given back even if the worker it was promised to has left
        loop.scheduler.revoke_answered(record.task_id, revoked)
        if not revoked:
            log.debug("task %d had started on worker %s: it stays there", record.task_id, conn.worker_id)
            return
        conn.tasks.discard(record.task_id)
        record.worker = None
        record.revoked += 1
        loop.counters["tasks_revoked"] += 1
        log.debug("task %d taken back from worker %s", record.task_id, conn.worker_id)
        loop.transactions.task(record.task_id, "WAITING", f"taken back from {conn.worker_id}")
