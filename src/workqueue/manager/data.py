"""The master's data plane: temporary files and lineage, wired into the loop (``ManagerLoop.data``);
where each input comes from is ``manager.staging``'s.

- A task reading a temporary file waits here, outside the scheduler, until a copy exists somewhere.
- A temporary file that exists nowhere while a pending task needs it is made again by its producer,
  recursively (``lineage``); one whose producer failed fails its readers with INPUT_MISSING.
- A temporary file read and needed by no pending task is removed from the workers.

The loop calls in at submit, dispatch, results, completion, cancel, and when workers come, go, or
report on their caches.
"""
from __future__ import annotations

import logging
import os
import time
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterable, List, Optional, Set

from ..constants import Result
from ..data.lineage import Lineage
from ..data.peer_sources import Transfers
from ..data.replicas import Replicas
from ..data.temp_files import TempFile, TempFiles, temp_inputs, temp_outputs
from ..files import File
from ..wire import protocol
from .records import TaskRecord, WorkerConn
from .staging import Staging

if TYPE_CHECKING:
    from .loop import ManagerLoop

log = logging.getLogger("workqueue.manager")

PEER_KEY_BYTES = 32


class DataPlane:

    def __init__(self, loop: "ManagerLoop") -> None:
        self.loop = loop
        self.replicas = Replicas()
        self.transfers = Transfers()
        self.temps = TempFiles()
        self.lineage = Lineage()
        self.parked: Dict[int, Set[str]] = {}  # task id -> the temporary files it waits for
        self.replica_count = 1  # copies of each temporary file to keep (tune "temp-replica-count")
        self.staging = Staging(loop, self)
        self.peer_key = os.urandom(PEER_KEY_BYTES)
        loop.counters.update(bytes_peer=0, peer_transfers=0, peer_failures=0, tasks_recovered=0,
                             temps_lost=0, temps_removed=0, archives_unpacked=0)

    def welcome_key(self) -> bytes:
        """What the welcome tells workers to prove to each other with: nothing when the master has
        a password (they use it), else the master's own random key."""
        return b"" if self.loop.settings.password is not None else self.peer_key

    def worker_joined(self, conn: WorkerConn, hello: Dict[str, Any]) -> None:
        """A master that uses CURVE takes as a source only a worker that serves its peers with CURVE
        too: its files never cross the network in plain text, worker to worker."""
        curve_key = hello.get("peer_curve", b"")
        if not self.loop.settings.encrypted or curve_key:
            self.transfers.set_address(conn.identity, hello.get("peer", ""), curve_key)
        elif hello.get("peer"):
            log.info("worker %s serves its peers without CURVE: not a source of peer transfers", conn.worker_id)
        for digest in conn.cached:
            self.replicas.add(digest, conn.identity)

    def worker_removed(self, conn: WorkerConn) -> None:
        """Its copies are gone; transfers from it are retried elsewhere; temporary files that now
        exist nowhere are made again if a pending task needs them."""
        lost = self.replicas.forget_worker(conn.identity)
        self.staging.forget_worker(conn)
        self.lost(lost)

    def cache_update(self, conn: WorkerConn, added: List[str], removed: List[str]) -> None:
        for digest in removed:
            self.replicas.discard(digest, conn.identity)
        for digest in added:
            self.replicas.add(digest, conn.identity)
            self.staging.master_sends.get(digest, set()).discard(conn.identity)
            self.staging.arrived(conn.identity, digest)
        if removed:
            self.lost(set(removed))

    def admit_task(self, record: TaskRecord) -> bool:
        """A task submitted: True if it may go to the scheduler now; False if it waits here for
        temporary files, or failed at once (it reads one that can never exist)."""
        spec = record.spec
        try:
            reads = self.temps.read_by(record.task_id, spec)
        except ValueError as error:
            self.fail(record, str(error))
            return False
        self.temps.produced_by(record.task_id, spec)
        failed = next((t for t in reads if t.failed is not None), None)
        if failed is not None:
            self.fail(record, f"temporary file {failed.temp_id!r} was never made: {failed.failed}")
            return False
        waiting = {t.temp_id for t in reads if not self._exists(t)}
        if not waiting:
            return True
        self.parked[record.task_id] = waiting
        for temp_id in waiting:
            self._recover(self.temps.get(temp_id))
        return False

    def on_result(self, conn: WorkerConn, record: TaskRecord, fields: Dict[str, Any]) -> None:
        """The temporary files a task made: kept if it succeeded, else removed from its worker."""
        made = fields["temps"]
        if not made:
            return
        if fields["result"] != Result.SUCCESS or fields["exit_code"] != 0:
            for _, digest, _ in made:
                if not self.replicas.holds(conn.identity, digest):  # not a copy another file counts on
                    self.loop.send_to(conn, protocol.encode("invalidate", digest=digest))
            return
        by_name = {f.remote: f.temp_id for f in record.spec["outputs"] if f.temp_id is not None}
        for name, digest, size in made:
            temp = self.temps.get(by_name.get(name, ""))
            if temp is None:
                continue
            self.temps.made(temp, digest, size)
            self.replicas.add(digest, conn.identity)
            self.staging.arrived(conn.identity, digest)
            self._unpark(temp)
            if self.replica_count > 1:
                self.staging.replicate(digest, size, self.replica_count)

    def on_complete(self, record: TaskRecord, outcome: Dict[str, Any]) -> bool:
        """A task is done. Returns True for a recovery task (the user never sees it)."""
        task_id = record.task_id
        self.staging.held.pop(task_id, None)
        self.parked.pop(task_id, None)
        succeeded = outcome["result"] == Result.SUCCESS and outcome["exit_code"] == 0
        for f in record.spec["inputs"]:
            temp = self.temps.get(f.temp_id) if f.temp_id else None
            if temp is not None and succeeded:
                temp.read = True
        self.temps.forget_task(task_id, record.spec)
        if not succeeded:
            self._producer_failed(record, outcome)
        self._remove_unneeded(record.spec)
        if self.lineage.is_recovery(task_id):
            self.lineage.done(task_id)
            return True
        return False

    def forget_task(self, record: TaskRecord) -> None:
        """A canceled task: it reads nothing more, and what it was to write never comes."""
        task_id = record.task_id
        self.staging.held.pop(task_id, None)
        self.parked.pop(task_id, None)
        unmade = [t for t in map(self.temps.get, (f.temp_id for f in temp_outputs(record.spec)))
                  if t is not None and t.producer == task_id and t.digest is None]
        self.temps.forget_task(task_id, record.spec)
        for temp in unmade:
            self._temp_failed(temp, f"its producer, task {task_id}, was canceled")
        self._remove_unneeded(record.spec)

    def stage(self, record: TaskRecord, conn: WorkerConn, f: File) -> Optional[list]:
        return self.staging.stage(record, conn, f)

    def hold(self, record: TaskRecord, conn: WorkerConn, frames: List[Any]) -> bool:
        return self.staging.hold(record, conn, frames)

    def forget_held(self, task_id: int) -> None:
        self.staging.forget_held(task_id)

    def on_fetched(self, conn: WorkerConn, message: protocol.Message) -> None:
        self.staging.on_fetched(conn, message)

    def scorer(self, spec: Dict[str, Any], base: Optional[Callable[[bytes], float]]
               ) -> Optional[Callable[[bytes], float]]:
        """For the FILES algorithm: the bytes of the task's temporary inputs a worker holds, added
        to those of its cached inputs."""
        temps = self._made_temps(spec)
        if not temps:
            return base
        holds = self.replicas.holds

        def score(worker: bytes) -> float:
            own = sum(t.size for t in temps if holds(worker, t.digest))
            return own + (base(worker) if base is not None else 0)
        return score

    def holders(self, spec: Dict[str, Any], cached: Iterable[str]) -> Set[bytes]:
        """The workers holding a ready copy of any of these cached inputs' digests or of the task's
        temporary inputs: where a prefetched FILES task may wait (see Scheduler._prefetch_target)."""
        digests = set(cached) | {t.digest for t in self._made_temps(spec)}
        found: Set[bytes] = set()
        for digest in digests:
            found |= self.replicas.holders(digest)
        return found

    def _made_temps(self, spec: Dict[str, Any]) -> list:
        temps = [self.temps.get(f.temp_id) for f in temp_inputs(spec)]
        return [t for t in temps if t is not None and t.digest is not None]

    def locate(self, temp_id: str) -> Dict[str, Any]:
        """Where a temporary file can be fetched from: its digest, size and holders' addresses."""
        temp = self.temps.get(temp_id)
        if temp is None:
            return {"error": f"no task writes the temporary file {temp_id!r}"}
        if temp.failed is not None:
            return {"error": f"temporary file {temp_id!r} was never made: {temp.failed}"}
        if temp.digest is None:
            return {"error": f"temporary file {temp_id!r} is not made yet"}
        now = time.monotonic()
        holders = sorted(self.replicas.holders(temp.digest), key=lambda w: not self.transfers.reachable(w, now))
        serving = [w for w in holders if w in self.transfers.addresses]
        if not serving:
            return {"error": f"no worker holds temporary file {temp_id!r} now"}
        key = self.loop.settings.password if self.loop.settings.password is not None else self.peer_key
        return {"digest": temp.digest, "size": temp.size, "sources": [self.transfers.addresses[w] for w in serving],
                "curve_keys": [self.transfers.curve_keys.get(w, b"") for w in serving], "key": key}

    def figures(self) -> Dict[str, Any]:
        return {"temps": len(self.temps), "tasks_waiting_for_temps": len(self.parked),
                "tasks_waiting_for_peers": len(self.staging.held), "peer_transfers_now": len(self.transfers)}

    def _exists(self, temp: TempFile) -> bool:
        return temp.digest is not None and self.replicas.count(temp.digest) > 0

    def repark(self, task_id: int) -> None:
        """A booked task whose temporary input has no reachable copy: unbooked, it waits for the
        file to be made again."""
        record = self.staging.unbook(task_id)
        if record is None:
            return
        record.worker = None
        self.loop.scheduler.finish(task_id)
        self._park(record)

    def _park(self, record: TaskRecord) -> None:
        missing = {f.temp_id for f in temp_inputs(record.spec)
                   if not self._exists(self.temps.get(f.temp_id)) or
                   not self._reachable_copy(self.temps.get(f.temp_id))}
        if not missing:
            self._submit(record)
            return
        self.parked[record.task_id] = missing
        for temp_id in missing:
            self._recover(self.temps.get(temp_id), force=True)

    def _reachable_copy(self, temp: TempFile) -> bool:
        now = time.monotonic()
        return any(self.transfers.reachable(w, now) for w in self.replicas.holders(temp.digest))

    def _submit(self, record: TaskRecord) -> None:
        self.loop.placement.queue_task(record)

    def _unpark(self, temp: TempFile) -> None:
        for task_id in sorted(temp.readers):
            waiting = self.parked.get(task_id)
            if waiting is None:
                continue
            waiting.discard(temp.temp_id)
            if not waiting:
                del self.parked[task_id]
                record = self.loop.tasks.get(task_id)
                if record is not None:
                    self._submit(record)

    def lost(self, digests: Set[str]) -> None:
        """Copies gone: a temporary file that now exists nowhere while a task needs it is made again;
        tasks that wait in the scheduler for it go back to waiting for it here."""
        for temp in [t for digest in digests for t in self.temps.with_digest(digest)]:
            if self.replicas.count(temp.digest) > 0 or not temp.readers:
                continue
            self.loop.counters["temps_lost"] += 1
            for task_id in sorted(temp.readers):
                if self.loop.scheduler.is_ready(task_id):  # in the scheduler's queue: it waits here instead
                    self.loop.scheduler.finish(task_id)
                    self.parked.setdefault(task_id, set()).add(temp.temp_id)
                elif task_id in self.parked:
                    self.parked[task_id].add(temp.temp_id)
            self._recover(temp)

    def _recover(self, temp: Optional[TempFile], force: bool = False) -> None:
        if temp is None or (not force and self._exists(temp)):
            return
        recovery = self.lineage.recovery(temp, self.loop.tasks)
        if recovery is None:
            return
        task_id, spec = recovery
        log.info("temporary file %s exists nowhere: its producer runs again as task %d", temp.temp_id, task_id)
        self.loop.counters["tasks_recovered"] += 1
        record = TaskRecord(task_id, spec, time.time())
        self.loop.tasks[task_id] = record
        if self.admit_task(record):
            self._submit(record)

    def _producer_failed(self, record: TaskRecord, outcome: Dict[str, Any]) -> None:
        for f in record.spec["outputs"]:
            temp = self.temps.get(f.temp_id) if f.temp_id else None
            if temp is not None and not self._exists(temp) and temp.producer is None:
                why = f"task {record.task_id} that writes it ended with {Result(outcome['result']).name}" \
                      f" (exit code {outcome['exit_code']})"
                self._temp_failed(temp, why)

    def _temp_failed(self, temp: TempFile, why: str) -> None:
        """A temporary file that will never be made: the tasks waiting for it fail."""
        temp.failed = why
        for task_id in sorted(temp.readers):
            record = self.loop.tasks.get(task_id)
            if record is not None and task_id in self.parked:
                self.fail(record, f"temporary file {temp.temp_id!r} was never made: {why}")

    def fail(self, record: TaskRecord, why: str) -> None:
        self.parked.pop(record.task_id, None)
        outcome = self.loop.make_outcome(record, None, Result.INPUT_MISSING, -1)
        outcome["stdout"] = why.encode()
        log.warning("task %d: %s", record.task_id, why)
        self.loop.complete(record, outcome)

    def prune(self, temp_ids: List[str], forget: bool) -> None:
        """``Manager.prune``: each file's copies are removed now, or once the pending tasks reading it
        are done; with ``forget``, the master forgets a file no pending task writes or reads."""
        for temp_id in temp_ids:
            temp = self.temps.get(temp_id)
            if temp is None:
                continue
            temp.until_pruned = False
            if temp.readers:
                temp.read = True  # the last of them to finish removes it (_remove_unneeded)
                continue
            if temp.digest is not None:
                self._remove(temp)
            if forget and temp.producer is None:
                self.temps.forget(temp)

    def _remove_unneeded(self, spec: Dict[str, Any]) -> None:
        """Temporary inputs of a task done that were read and are needed by no pending task: removed
        from the workers."""
        for temp in self.temps.unneeded(spec):
            self._remove(temp)

    def _remove(self, temp: TempFile) -> None:
        """The file's copies go from the workers; the master keeps what lineage needs to make it again."""
        if self.temps.count_with_digest(temp.digest) > 1:
            self.temps.made(temp, None)  # another file has the same content: its copies stay
            temp.read = False
            return
        for worker in self.replicas.holders(temp.digest):
            conn = self.loop.workers.get(worker)
            if conn is not None and temp.digest in conn.cached:
                continue  # the same bytes are a cached input there too: they stay
            if conn is not None:
                self.loop.send_to(conn, protocol.encode("invalidate", digest=temp.digest))
            self.replicas.discard(temp.digest, worker)
        self.loop.counters["temps_removed"] += 1
        self.temps.made(temp, None)
        temp.read = False
