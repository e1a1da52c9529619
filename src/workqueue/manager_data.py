"""The master's data plane: temporary files, transfers between workers, and lineage, wired into the
loop (``ManagerLoop.data``).

- A task reading a temporary file waits here, outside the scheduler, until a copy exists somewhere.
- A task's inputs come from where they are: the worker itself, another worker holding a ready copy
  (``fetch``), or the master; a cached input being sent to several workers leaves the master at
  most ``MASTER_COPIES`` times at once, the others getting it from the workers that have it.
- A task whose inputs are on their way from peers is booked on its worker but held here; its
  ``task`` message leaves once every such input is there.
- A source that cannot be reached is marked, and the input comes from elsewhere: another holder,
  the master, or, for a temporary file, its producer run again (``lineage``).

The loop calls in at submit, dispatch (``stage``, ``hold``), results, completion, cancel, and when
workers come, go, or report on their caches.
"""
from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Set, Tuple

from . import fastio, protocol
from .constants import Result
from .files import File
from .lineage import Lineage
from .manager_inputs import input_megabytes
from .manager_records import TaskRecord, WorkerConn
from .peer_sources import Transfers
from .replicas import Replicas
from .temp_files import TempFile, TempFiles, temp_inputs

if TYPE_CHECKING:
    from .manager_loop import ManagerLoop

log = logging.getLogger("workqueue.manager")

MASTER_COPIES = 2  # copies of one cached input the master sends at once; other workers get it from peers
PEER_KEY_BYTES = 32


@dataclass
class Held:
    """A task booked on a worker, its ``task`` message waiting for inputs on their way from peers."""
    worker: bytes
    frames: Optional[List[Any]] = None  # the task message, once staging is done
    missing: Dict[str, Optional[File]] = field(default_factory=dict)  # digest -> the file (None: temporary)
    urls: Dict[str, str] = field(default_factory=dict)  # stand-in digest of a URL input -> its URL
    found: Dict[str, str] = field(default_factory=dict)  # stand-in digest -> the digest downloaded


class DataPlane:
    def __init__(self, loop: "ManagerLoop") -> None:
        self.loop = loop
        self.replicas = Replicas()
        self.transfers = Transfers()
        self.temps = TempFiles()
        self.lineage = Lineage()
        self.parked: Dict[int, Set[str]] = {}  # task id -> the temporary files it waits for
        self.held: Dict[int, Held] = {}
        self.master_sends: Dict[str, Set[bytes]] = {}  # digest -> workers it is being sent to by the master
        self.urls: Dict[str, Tuple[str, int]] = {}  # URL -> (digest, size) of what a worker downloaded
        self.downloads: Dict[int, Tuple[str, bytes]] = {}  # xfer -> (URL, the worker downloading it)
        self.peer_key = os.urandom(PEER_KEY_BYTES)
        self.xfers = 0
        loop.counters.update(bytes_peer=0, peer_transfers=0, peer_failures=0, tasks_recovered=0,
                             temps_lost=0, temps_removed=0)

    # -- workers ----------------------------------------------------------------------------------
    def welcome_key(self) -> bytes:
        """What the welcome tells workers to prove to each other with: nothing when the master has
        a password (they use it), else the master's own random key."""
        return b"" if self.loop.settings.password is not None else self.peer_key

    def worker_joined(self, conn: WorkerConn, hello: Dict[str, Any]) -> None:
        self.transfers.set_address(conn.identity, hello.get("peer", ""))
        for digest in conn.cached:
            self.replicas.add(digest, conn.identity)

    def worker_removed(self, conn: WorkerConn) -> None:
        """Its copies are gone; transfers from it are retried elsewhere; temporary files that now
        exist nowhere are made again if a pending task needs them."""
        lost = self.replicas.forget_worker(conn.identity)
        for digests in self.master_sends.values():
            digests.discard(conn.identity)
        for task_id in [t for t, h in self.held.items() if h.worker == conn.identity]:
            del self.held[task_id]  # the loop requeues the task
        for flight in self.transfers.forget_worker(conn.identity):
            if flight.destination != conn.identity:
                self._retry(flight.destination, flight.digest)
        self._lost(lost)

    def cache_update(self, conn: WorkerConn, added: List[str], removed: List[str]) -> None:
        for digest in removed:
            self.replicas.discard(digest, conn.identity)
        for digest in added:
            self.replicas.add(digest, conn.identity)
            self.master_sends.get(digest, set()).discard(conn.identity)
            self._arrived(conn.identity, digest)
        if removed:
            self._lost(set(removed))

    # -- submit, complete, cancel -------------------------------------------------------------------
    def admit_task(self, record: TaskRecord) -> bool:
        """A task submitted: True if it may go to the scheduler now; False if it waits here for
        temporary files, or failed at once (it reads one that can never exist)."""
        spec = record.spec
        try:
            reads = self.temps.read_by(record.task_id, spec)
        except ValueError as error:
            self._fail(record, str(error))
            return False
        self.temps.produced_by(record.task_id, spec)
        failed = next((t for t in reads if t.failed is not None), None)
        if failed is not None:
            self._fail(record, f"temporary file {failed.temp_id!r} was never made: {failed.failed}")
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
                self.loop.send_to(conn, protocol.encode("invalidate", digest=digest))
            return
        by_name = {f.remote: f.temp_id for f in record.spec["outputs"] if f.temp_id is not None}
        for name, digest, size in made:
            temp = self.temps.get(by_name.get(name, ""))
            if temp is None:
                continue
            temp.digest, temp.size = digest, size
            self.replicas.add(digest, conn.identity)
            self._arrived(conn.identity, digest)
            self._unpark(temp)

    def on_complete(self, record: TaskRecord, outcome: Dict[str, Any]) -> bool:
        """A task is done. Returns True for a recovery task (the user never sees it)."""
        task_id = record.task_id
        self.held.pop(task_id, None)
        self.parked.pop(task_id, None)
        succeeded = outcome["result"] == Result.SUCCESS and outcome["exit_code"] == 0
        for f in record.spec["inputs"]:
            temp = self.temps.get(f.temp_id) if f.temp_id else None
            if temp is not None and succeeded:
                temp.read = True
        self.temps.forget_task(task_id)
        if not succeeded:
            self._producer_failed(record, outcome)
        self._remove_unneeded()
        if self.lineage.is_recovery(task_id):
            self.lineage.done(task_id)
            return True
        return False

    def forget_task(self, task_id: int) -> None:
        """A canceled task: it reads nothing more, and what it was to write never comes."""
        self.held.pop(task_id, None)
        self.parked.pop(task_id, None)
        unmade = [t for t in self.temps if t.producer == task_id and t.digest is None]
        self.temps.forget_task(task_id)
        for temp in unmade:
            self._temp_failed(temp, f"its producer, task {task_id}, was canceled")
        self._remove_unneeded()

    # -- dispatch ---------------------------------------------------------------------------------
    def scorer(self, spec: Dict[str, Any], base: Optional[Callable[[bytes], float]]
               ) -> Optional[Callable[[bytes], float]]:
        """For the FILES algorithm: the bytes of the task's temporary inputs a worker holds, added
        to those of its cached inputs."""
        temps = [self.temps.get(f.temp_id) for f in temp_inputs(spec)]
        temps = [t for t in temps if t is not None and t.digest is not None]
        if not temps:
            return base
        holds = self.replicas.holds

        def score(worker: bytes) -> float:
            own = sum(t.size for t in temps if holds(worker, t.digest))
            return own + (base(worker) if base is not None else 0)
        return score

    def stage(self, record: TaskRecord, conn: WorkerConn, f: File) -> Optional[list]:
        """The input entry of ``f`` for a task going to ``conn`` if it comes from a peer, the worker
        itself (a temporary file), or later; None for the loop to stage it (from the master)."""
        if f.temp_id is not None:
            temp = self.temps.get(f.temp_id)
            if temp is None or temp.digest is None:
                raise OSError(f"temporary file {f.temp_id!r} is not made yet")
            entry = [temp.digest, f.remote, 0o644, True]
            if not self.replicas.holds(conn.identity, temp.digest):
                self._need(record, conn, temp.digest, temp.size, None)
            return entry
        if f.source_url is not None:
            return self._stage_url(record, conn, f)
        if not f.cache or f.data is not None or f.local is None or os.path.isdir(f.local):
            return None
        digest, size, mode = self.loop.digests.digest(f.local)
        if digest in conn.cached:
            return None  # a hit: the loop counts it
        sending = self.master_sends.setdefault(digest, set())
        if conn.identity in sending or self.transfers.flying_to(conn.identity, digest):
            self._need(record, conn, digest, size, f, start=False)
            return [digest, f.remote, mode, True]
        source = self.transfers.pick(self.replicas.holders(digest), conn.identity, time.monotonic())
        if source is None and self._master_sends(digest, conn.identity):
            sending.add(conn.identity)
            return None
        self._need(record, conn, digest, size, f)
        return [digest, f.remote, mode, True]

    def _master_sends(self, digest: str, destination: bytes) -> bool:
        """Whether the master sends a cached input itself: when no reachable worker holds it and fewer
        than MASTER_COPIES are on their way from the master, or when no copy is coming at all (peers
        that hold it but are busy serve it once their transfers end)."""
        now = time.monotonic()
        if any(self.transfers.reachable(w, now) for w in self.replicas.holders(digest) if w != destination):
            return False
        return len(self.master_sends.get(digest, ())) < MASTER_COPIES or not self._copies_coming(digest)

    def hold(self, record: TaskRecord, conn: WorkerConn, frames: List[Any]) -> bool:
        """True if the task's message waits for inputs from peers (it leaves once they are in)."""
        held = self.held.get(record.task_id)
        if held is None:
            return False
        held.frames = frames
        if not held.missing:
            del self.held[record.task_id]
            return False
        for digest in list(held.missing):
            if digest not in held.urls and not self._coming_to(held.worker, digest):
                self._retry(held.worker, digest)
        return True

    def forget_held(self, task_id: int) -> None:
        """A task sent back to the queue: its held message must never leave."""
        self.held.pop(task_id, None)

    def on_fetched(self, conn: WorkerConn, message: protocol.Message) -> None:
        if message["xfer"] in self.downloads:
            self._downloaded(conn, message)
            return
        flight = self.transfers.finish(message["xfer"])
        digest = message["digest"]
        if message["ok"]:
            if flight is not None:
                self.loop.counters["bytes_peer"] += flight.size
                self.loop.counters["peer_transfers"] += 1
            self.replicas.add(digest, conn.identity)
            if self._is_cached_input(digest):
                conn.cached.add(digest)
            self._arrived(conn.identity, digest)
            return
        if flight is None:
            return
        self.loop.counters["peer_failures"] += 1
        log.info("worker %s could not get %s from a peer: %s", conn.worker_id, digest, message["reason"])
        if message["unreachable"]:
            self.transfers.mark_unreachable(flight.source, time.monotonic())
        elif message["gone"]:
            self.replicas.discard(digest, flight.source)  # it does not have it (any more)
            self._lost({digest})
        self._retry(conn.identity, digest)
        self._retry_waiting()

    # -- user's requests ---------------------------------------------------------------------------
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
        addresses = [self.transfers.addresses[w] for w in holders if w in self.transfers.addresses]
        if not addresses:
            return {"error": f"no worker holds temporary file {temp_id!r} now"}
        key = self.loop.settings.password if self.loop.settings.password is not None else self.peer_key
        return {"digest": temp.digest, "size": temp.size, "sources": addresses, "key": key}

    def figures(self) -> Dict[str, Any]:
        return {"temps": len(self.temps), "tasks_waiting_for_temps": len(self.parked),
                "tasks_waiting_for_peers": len(self.held), "peer_transfers_now": len(self.transfers)}

    # -- inside -----------------------------------------------------------------------------------
    def _exists(self, temp: TempFile) -> bool:
        return temp.digest is not None and self.replicas.count(temp.digest) > 0

    def _copies_coming(self, digest: str) -> bool:
        return bool(self.master_sends.get(digest)) or self.transfers.flying(digest)

    def _is_cached_input(self, digest: str) -> bool:
        return not any(t.digest == digest for t in self.temps)

    def _need(self, record: TaskRecord, conn: WorkerConn, digest: str, size: int, f: Optional[File],
              start: bool = True) -> None:
        held = self.held.setdefault(record.task_id, Held(conn.identity))
        held.missing[digest] = f
        if start and not self.transfers.flying_to(conn.identity, digest):
            self._start(conn.identity, digest, size)

    def _start(self, destination: bytes, digest: str, size: int) -> bool:
        """A transfer of ``digest`` to ``destination`` from a peer, if one may serve it now."""
        source = self.transfers.pick(self.replicas.holders(digest), destination, time.monotonic())
        if source is None:
            return False
        self.xfers += 1
        self.transfers.start(self.xfers, digest, source, destination, size)
        self.loop.send_to(self.loop.workers[destination], protocol.encode(
            "fetch", xfer=self.xfers, digest=digest, size=size, mode=0o644,
            source=self.transfers.addresses[source], keep=True))
        return True

    def _arrived(self, worker: bytes, digest: str) -> None:
        """``digest`` is on ``worker``: held tasks there that waited for it may go; tasks elsewhere
        that waited for a source may get it from there."""
        for task_id, held in list(self.held.items()):
            if held.worker == worker and digest in held.missing:
                del held.missing[digest]
                self._release(task_id, held)
        self._retry_waiting()

    def _release(self, task_id: int, held: Held) -> None:
        """Send a held task whose inputs are all in, its URL inputs named by what was downloaded."""
        if held.missing or held.frames is None:
            return
        del self.held[task_id]
        frames = held.frames
        if held.found:
            message = protocol.decode(frames)
            for entry in message["inputs"]:
                entry[0] = held.found.get(entry[0], entry[0])
            frames = protocol.encode("task", [protocol.as_bytes(p) for p in message.payload], **message.fields)
        self.loop.send_to(self.loop.workers[held.worker], frames)

    # -- URL inputs -------------------------------------------------------------------------------
    def _stage_url(self, record: TaskRecord, conn: WorkerConn, f: File) -> list:
        """A URL already downloaded somewhere is named by its content: a hit, or from a peer; else
        the worker downloads it (the task is held until it has, under a stand-in digest)."""
        url = f.source_url
        known = self.urls.get(url)
        if known is not None:
            digest, size = known
            if digest in conn.cached:
                return [digest, f.remote, 0o644, f.cache]
            if self.transfers.pick(self.replicas.holders(digest), conn.identity, time.monotonic()) is not None:
                self._need(record, conn, digest, size, None)
                return [digest, f.remote, 0o644, f.cache]
        stand_in = fastio.hash_bytes(url.encode())
        held = self.held.setdefault(record.task_id, Held(conn.identity))
        held.missing[stand_in] = f
        held.urls[stand_in] = url
        if (url, conn.identity) not in self.downloads.values():
            self.xfers += 1
            self.downloads[self.xfers] = (url, conn.identity)
            self.loop.send_to(conn, protocol.encode("fetch-url", xfer=self.xfers, url=url, keep=f.cache))
        return [stand_in, f.remote, 0o644, f.cache]

    def _downloaded(self, conn: WorkerConn, message: protocol.Message) -> None:
        url, _ = self.downloads.pop(message["xfer"])
        stand_in = fastio.hash_bytes(url.encode())
        waiting = [(task_id, held) for task_id, held in self.held.items()
                   if held.worker == conn.identity and stand_in in held.missing]
        if message["ok"]:
            digest = message["digest"]
            self.urls[url] = (digest, message["size"])
            self.replicas.add(digest, conn.identity)
            conn.cached.add(digest)
            for task_id, held in waiting:
                del held.missing[stand_in]
                held.found[stand_in] = digest
                self._release(task_id, held)
            return
        for task_id, _ in waiting:
            self._fail_booked(task_id, f"input from a URL could not be downloaded: {message['reason']}")

    def _fail_booked(self, task_id: int, why: str) -> None:
        """A task booked on a worker that cannot run: it fails with INPUT_MISSING."""
        self.held.pop(task_id, None)
        record = self.loop.tasks.get(task_id)
        if record is None:
            return
        conn = self.loop.workers.get(record.worker) if record.worker else None
        if conn is not None:
            conn.tasks.discard(task_id)
        self._fail(record, why)

    def _coming_to(self, worker: bytes, digest: str) -> bool:
        return self.transfers.flying_to(worker, digest) or worker in self.master_sends.get(digest, ())

    def _retry_waiting(self) -> None:
        """Inputs that waited for a source (all busy): a transfer has ended, one may be free now."""
        for held in list(self.held.values()):
            for digest in list(held.missing):
                if digest not in held.urls and not self._coming_to(held.worker, digest):
                    self._retry(held.worker, digest)

    def _retry(self, destination: bytes, digest: str) -> None:
        """Get ``digest`` to ``destination`` for the tasks held there: from another peer, else from
        the master (a file of its own), else wait for a copy on its way; a temporary file with no
        reachable copy anywhere sends its tasks back to wait for it to be made again."""
        waiting = [(task_id, held) for task_id, held in self.held.items()
                   if held.worker == destination and digest in held.missing]
        if not waiting or destination not in self.loop.workers:
            return
        size = next((t.size for t in self.temps if t.digest == digest), None)
        if size is None:
            size = next((known[1] for known in self.urls.values() if known[0] == digest), None)
        f = waiting[0][1].missing[digest]
        if f is not None:
            size = self.loop.digests.digest(f.local)[1] if size is None else size
        if self._start(destination, digest, size or 0):
            return
        now = time.monotonic()
        if f is not None:
            if self._master_sends(digest, destination):
                self.master_sends.setdefault(digest, set()).add(destination)
                record = self.loop.tasks.get(waiting[0][0])
                self.loop._stage_input(record, self.loop.workers[destination], f)
            return
        if any(self.transfers.reachable(w, now) for w in self.replicas.holders(digest) if w != destination):
            return  # holders busy: their transfers end, and this is tried again
        for task_id, _ in waiting:
            self._repark(task_id)

    def _repark(self, task_id: int) -> None:
        """A booked task whose temporary input has no reachable copy: unbooked, it waits for the
        file to be made again."""
        self.held.pop(task_id, None)
        record = self.loop.tasks.get(task_id)
        if record is None:
            return
        conn = self.loop.workers.get(record.worker) if record.worker else None
        if conn is not None:
            conn.tasks.discard(task_id)
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
        spec = record.spec
        self.loop.scheduler.submit(record.task_id, spec["resources"], spec["priority"], input_megabytes(spec["inputs"]))

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

    def _lost(self, digests: Set[str]) -> None:
        """Copies gone: a temporary file that now exists nowhere while a task needs it is made again;
        tasks that wait in the scheduler for it go back to waiting for it here."""
        for temp in list(self.temps):
            if temp.digest not in digests or self.replicas.count(temp.digest) > 0 or not temp.readers:
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
                self._fail(record, f"temporary file {temp.temp_id!r} was never made: {why}")

    def _fail(self, record: TaskRecord, why: str) -> None:
        self.parked.pop(record.task_id, None)
        outcome = self.loop._outcome(record, None, Result.INPUT_MISSING, -1)
        outcome["stdout"] = why.encode()
        log.warning("task %d: %s", record.task_id, why)
        self.loop._complete(record, outcome)

    def _remove_unneeded(self) -> None:
        """Temporary files read and needed by no pending task: removed from the workers."""
        for temp in self.temps.unneeded():
            if any(other.digest == temp.digest and other is not temp for other in self.temps):
                temp.digest, temp.read = None, False  # another file has the same content: its copies stay
                continue
            for worker in self.replicas.holders(temp.digest):
                conn = self.loop.workers.get(worker)
                if conn is not None:
                    self.loop.send_to(conn, protocol.encode("invalidate", digest=temp.digest))
                self.replicas.discard(temp.digest, worker)
            self.loop.counters["temps_removed"] += 1
            temp.digest = None
            temp.read = False
