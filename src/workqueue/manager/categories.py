"""Categories on the master: a task is sized when submitted and again when its category learns, runs
once more at the category max after RESOURCE_EXHAUSTION, and is stopped and run again when it is far
slower than its category (fast abort). The decisions are ``categories.Categories``' (pure); this room
applies them to the loop's tasks and workers."""
from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any, Dict

from ..data.outputs import abort_outputs
from ..scheduling.categories import Categories
from ..wire import protocol
from .inputs import input_megabytes
from .records import TaskRecord, WorkerConn

if TYPE_CHECKING:
    from .loop import ManagerLoop

log = logging.getLogger("workqueue.manager")

SLOW_STREAK_MAX = 2  # a worker whose tasks are fast-aborted this many times in a row is dropped


class CategoryKeeper:
    def __init__(self, loop: "ManagerLoop") -> None:
        self.loop = loop
        self.categories = Categories()
        self._slow_streak: Dict[bytes, int] = {}  # by worker: its tasks fast-aborted in a row

    def size(self, spec: Dict[str, Any]) -> None:
        """Keep what a submitted task declared and give it its category's first allocation."""
        spec["declared"] = spec["resources"]
        spec["resources"] = self.categories.first_allocation(spec["category"], spec["declared"])

    def learn(self, record: TaskRecord, conn: WorkerConn, measured: Dict[str, float]) -> None:
        """What a task that succeeded tells its category (peaks) and its worker (not slow)."""
        category = record.spec["category"]
        self._slow_streak.pop(conn.identity, None)
        if self.categories.record(category, measured):
            self._resize_waiting(category)

    def retry_at_max(self, record: TaskRecord, conn: WorkerConn) -> bool:
        """Run a task that went past its allocation once more, at its category's max (or on a whole
        worker), unless its category is FIXED or it has had that retry already."""
        spec = record.spec
        if spec.get("retried_at_max") or not self.categories.retries_exhausted_tasks(spec["category"]):
            return False
        loop = self.loop
        spec["retried_at_max"] = True
        abort_outputs(record)
        record.worker = None
        self._reshape(record, self.categories.retry_allocation(spec["category"], spec["resources"]))
        loop.counters["tasks_requeued"] += 1
        loop.requeue_reasons["resource exhaustion"] = loop.requeue_reasons.get("resource exhaustion", 0) + 1
        log.info("task %d ran out of its allocation on %s: retried with %s", record.task_id, conn.worker_id,
                 spec["resources"])
        loop.transactions.task(record.task_id, "WAITING", "retried at the category max")
        return True

    def fast_abort(self) -> None:
        """Stop and run again each task running longer than its category allows (categories.py),
        counted from its dispatch (input transfer included; tasks queued on a busy worker are left
        alone). A worker whose tasks are stopped twice in a row is dropped, as CCTools does (which
        also blocks its host for a while; here it may connect again)."""
        if not self.categories.fast_abort_active:
            return
        loop, now = self.loop, time.time()
        for conn in list(loop.workers.values()):
            for task_id in list(conn.tasks):
                record = loop.tasks.get(task_id)
                if record is None or record.worker != conn.identity or loop.scheduler.is_queued(task_id):
                    continue
                limit = self.categories.fast_abort_after(record.spec["category"])
                if limit is not None and now - record.dispatch_time > limit:
                    self._abort_slow(record, conn, now - record.dispatch_time, limit)
        for identity in [i for i in self._slow_streak if i not in loop.workers]:
            del self._slow_streak[identity]

    def _abort_slow(self, record: TaskRecord, conn: WorkerConn, ran: float, limit: float) -> None:
        loop = self.loop
        if conn.identity not in loop.workers:
            return  # dropped for an earlier task of this round: this one is requeued already
        loop.send_to(conn, protocol.encode("kill", task_id=record.task_id))
        loop.requeue(record, f"fast abort: ran {ran:.1f} s on {conn.worker_id}, over {limit:.1f} s", "fast abort")
        streak = self._slow_streak[conn.identity] = self._slow_streak.get(conn.identity, 0) + 1
        if streak >= SLOW_STREAK_MAX:
            loop.remove_worker(conn, "its tasks were fast-aborted twice in a row")

    def _resize_waiting(self, category: str) -> None:
        """The category's guess changed: its tasks not yet sent take the new size."""
        for record in list(self.loop.tasks.values()):
            spec = record.spec
            if spec["category"] != category or record.worker is not None or spec.get("retried_at_max"):
                continue
            if record.task_id in self.loop.data.parked:
                continue  # it waits for temporary files, outside the scheduler's queues
            resources = self.categories.first_allocation(category, spec["declared"])
            if resources != spec["resources"]:
                self._reshape(record, resources)

    def _reshape(self, record: TaskRecord, resources: Dict[str, Any]) -> None:
        spec = record.spec
        spec["resources"] = resources
        scheduler = self.loop.scheduler
        scheduler.finish(record.task_id)
        scheduler.submit(record.task_id, resources, spec["priority"], input_megabytes(spec["inputs"]))
