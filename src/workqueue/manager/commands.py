"""The commands the user's thread sends the master's loop (``Manager._send``), carried out in the
loop's thread: ``("submit", task_id, spec, time)`` runs ``do_submit``, and so on. A command that fails
is logged; a task whose submission failed is handed back failed. Nothing here may end the loop."""
from __future__ import annotations

import logging
import queue
import time
from typing import TYPE_CHECKING, Any, Dict, List, Optional

from ..constants import Result
from ..data.outputs import abort_outputs
from ..scheduling.capacity import Capacity
from ..scheduling.categories import task_program
from ..wire import protocol
from .records import TaskRecord
from .status import status
from .transactions import TransactionsLog

if TYPE_CHECKING:
    from .loop import ManagerLoop

log = logging.getLogger("workqueue.manager")


class Commands:
    def __init__(self, loop: "ManagerLoop") -> None:
        self.loop = loop

    def run(self) -> None:
        while True:
            try:
                command = self.loop.commands.get_nowait()
            except queue.Empty:
                return
            try:
                getattr(self, "do_" + command[0])(*command[1:])
            except Exception as error:  # the API checks arguments; this is the loop's last defence
                self._failed(command, error)

    def _failed(self, command: tuple, error: Exception) -> None:
        """Log a command that failed; a task whose submission failed is handed back failed."""
        log.error("the %r command failed: %r", command[0], error, exc_info=error)
        if command[0] != "submit":
            return
        task_id, spec, submit_time = command[1:]
        record = self.loop.tasks.get(task_id) or TaskRecord(task_id, spec, submit_time)
        outcome = self.loop.make_outcome(record, None, Result.UNKNOWN, -1)
        outcome["stdout"] = f"the manager could not queue this task: {error!r}".encode()
        self.loop.complete(record, outcome)

    def do_submit(self, task_id: int, spec: Dict[str, Any], submit_time: float) -> None:
        loop = self.loop
        loop.history.submitted(spec["category"])
        loop.category_keeper.size(spec)
        record = loop.tasks[task_id] = TaskRecord(task_id, spec, submit_time, program=task_program(spec["command"]))
        loop.counters["tasks_submitted"] += 1
        loop.transactions.task(task_id, "WAITING", spec["category"])
        if loop.data.admit_task(record):  # else it waits for temporary files, or failed
            loop.placement.queue_task(record)

    def do_cancel(self, task_id: int) -> None:
        record = self.loop.tasks.pop(task_id, None)
        if record is None:
            return
        self.loop.history.canceled(record.spec["category"])
        if record.worker is not None:
            conn = self.loop.workers.get(record.worker)
            if conn is not None:
                conn.tasks.discard(task_id)
                self.loop.send_to(conn, protocol.encode("kill", task_id=task_id))
        abort_outputs(record)
        self.loop.scheduler.finish(task_id)
        self.loop.data.forget_task(record)
        self.loop.counters["tasks_canceled"] += 1
        self.loop.transactions.task(task_id, "CANCELED")

    def do_invalidate(self, local_path: str) -> None:
        try:
            digest, _, _ = self.loop.digests.digest(local_path)
        except OSError:
            return
        for conn in self.loop.workers.values():
            if digest in conn.cached:
                conn.cached.discard(digest)
                self.loop.data.cache_update(conn, [], [digest])
                self.loop.send_to(conn, protocol.encode("invalidate", digest=digest))

    def do_shutdown_workers(self, count: int) -> None:
        idle = [c for c in self.loop.workers.values() if not c.tasks]
        for conn in idle[:count or len(idle)]:
            self.loop.send_to(conn, protocol.encode("shutdown", reason="asked by the manager"))
            self.loop.pump(conn)
            self.loop.remove_worker(conn, "shut down by the manager")

    def do_tune(self, name: str, value: float) -> None:
        key = name.replace("-", "_")
        if key in ("keepalive_interval", "keepalive_timeout", "hungry_minimum", "hungry_minimum_factor",
                   "wait_for_workers", "prefetch"):
            setattr(self.loop.settings, key, type(getattr(self.loop.settings, key))(value))
            if key == "wait_for_workers":
                self.loop.workers_awaited = False  # counted from now
        elif key == "category_steady_n_tasks":
            self.loop.categories.steady_n_tasks = int(value)
        elif key == "fast_abort_multiplier":
            self.loop.categories.set_fast_abort(None, value)
        elif key == "temp_replica_count":
            self.loop.data.replica_count = max(1, int(value))
        else:
            log.info("tune(%r) has no effect in workqueue", name)

    def do_category_max(self, category: str, resources: Dict[str, float]) -> None:
        """Tasks of this category that declare nothing get these resources instead of a whole worker."""
        self.loop.categories.set_max(category, resources)

    def do_category(self, setting: str, category: str, *values: Any) -> None:
        """A category's mode, min, first allocation guess or autolabel (see categories.py)."""
        getattr(self.loop.categories, "set_" + setting)(category, *values)

    def do_fast_abort(self, category: Optional[str], multiplier: float) -> None:
        self.loop.categories.set_fast_abort(category, multiplier)

    def do_monitoring(self, enabled: bool) -> None:
        self.loop.categories.monitoring = enabled

    def do_estimate_capacity(self) -> None:
        self.loop.capacity = self.loop.capacity or Capacity()

    def do_advertiser(self, advertiser: Any) -> None:
        self.loop.advertiser = advertiser

    def do_configure(self, key: str, value: Any) -> None:
        setattr(self.loop.settings, key, value)
        if key == "transactions_log":
            self.loop.transactions.close()
            self.loop.transactions = TransactionsLog(value)

    def do_locate(self, temp_id: str, reply: "queue.SimpleQueue[Any]") -> None:
        reply.put(self.loop.data.locate(temp_id))

    def do_prune(self, temp_ids: List[str], forget: bool) -> None:
        self.loop.data.prune(temp_ids, forget)

    def do_status(self, what: str, reply: "queue.SimpleQueue[Any]") -> None:
        reply.put(status(self.loop, what))

    def do_scheduling(self, key: str, value: str) -> None:
        """``algorithm`` (worker selection) or ``task_order`` (for tasks submitted from now on)."""
        setattr(self.loop.scheduler, key, value)

    def do_block_host(self, host: str, timeout: Optional[float]) -> None:
        self.loop.blocks.block(host, timeout, time.monotonic())
        self.loop.apply_blocks()

    def do_unblock_host(self, host: Optional[str]) -> None:
        self.loop.blocks.unblock(host)
        self.loop.apply_blocks()
