"""Where each input of a task going to a worker comes from: the worker itself, a peer holding a
ready copy (``fetch``), the master, a URL the worker downloads (``fetch-url``), and archives the
worker unpacks once (``unpack``).

A cached input being sent to several workers leaves the master at most ``MASTER_COPIES`` times at
once, and only while no reachable worker holds it: the others get it from the workers that have it.
A task whose inputs are on their way from peers, URLs or unpacking is booked on its worker but held
here; its ``task`` message leaves once every such input is there. A source that cannot be reached
is marked (``peer_sources``), and the input comes from elsewhere: another holder, the master, or,
for a temporary file, its producer run again (the data plane's ``repark``).
"""
from __future__ import annotations

import dataclasses
import logging
import os
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Set, Tuple

from ..data import fastio
from ..files import File
from ..wire import protocol
from .records import TaskRecord, WorkerConn

if TYPE_CHECKING:
    from .data import DataPlane
    from .loop import ManagerLoop

log = logging.getLogger("workqueue.manager")

UNPACK_STEP = "unpack:"  # in a held task's missing inputs: an archive being unpacked
MASTER_COPIES = 2  # copies of one cached input the master sends at once; other workers get it from peers


@dataclass
class Held:
    """A task booked on a worker, its ``task`` message waiting for inputs on their way from peers."""
    worker: bytes
    frames: Optional[List[Any]] = None  # the task message, once staging is done
    missing: Dict[str, Optional[File]] = field(default_factory=dict)  # digest -> the file (None: temporary)
    urls: Dict[str, str] = field(default_factory=dict)  # stand-in digest of a URL input -> its URL
    steps: Set[str] = field(default_factory=set)  # missing entries that are not transfers: downloads, unpacking
    found: Dict[str, str] = field(default_factory=dict)  # stand-in digest -> the digest downloaded


class Staging:
    def __init__(self, loop: "ManagerLoop", data: "DataPlane") -> None:
        self.loop = loop
        self.data = data
        self.replicas = data.replicas
        self.transfers = data.transfers
        self.held: Dict[int, Held] = {}
        self.master_sends: Dict[str, Set[bytes]] = {}  # digest -> workers it is being sent to by the master
        self.urls: Dict[str, Tuple[str, int]] = {}  # URL -> (digest, size) of what a worker downloaded
        self.downloads: Dict[int, Tuple[str, bytes, bool]] = {}  # xfer -> (URL, the worker downloading it, keep)
        self.unpacked: Set[Tuple[bytes, str]] = set()  # (worker, archive digest) unpacked there
        self.unpacking: Dict[int, Tuple[bytes, str]] = {}  # xfer -> (worker, archive digest)
        self.unpack_later: Set[Tuple[bytes, str]] = set()  # to unpack once the archive arrives
        self.xfers = 0

    def replicate(self, digest: str, size: int, count: int) -> None:
        """Copies of a file to other workers until ``count`` workers hold it (or are getting it),
        as far as sources and destinations have free transfer slots now."""
        have = self.replicas.holders(digest)
        coming = [w for w in self.loop.workers if self.transfers.flying_to(w, digest)]
        for worker in self.loop.workers:
            if len(have) + len(coming) >= count:
                return
            if worker not in have and worker not in coming and worker in self.transfers.addresses:
                if self._start(worker, digest, size):
                    coming.append(worker)

    def forget_worker(self, conn: WorkerConn) -> None:
        """The worker is gone: what it unpacked and was sent with it; transfers from it go elsewhere."""
        self.unpacked = {pair for pair in self.unpacked if pair[0] != conn.identity}
        self.unpack_later = {pair for pair in self.unpack_later if pair[0] != conn.identity}
        for xfer in [x for x, pair in self.unpacking.items() if pair[0] == conn.identity]:
            del self.unpacking[xfer]
        for digests in self.master_sends.values():
            digests.discard(conn.identity)
        for task_id in [t for t, h in self.held.items() if h.worker == conn.identity]:
            del self.held[task_id]  # the loop requeues the task
        for flight in self.transfers.forget_worker(conn.identity):
            if flight.destination != conn.identity:
                self.retry(flight.destination, flight.digest)

    def stage(self, record: TaskRecord, conn: WorkerConn, f: File) -> Optional[list]:
        """The input entry of ``f`` for a task going to ``conn`` if it comes from a peer, the worker
        itself (a temporary file), or later; None for the loop to stage it (from the master)."""
        if f.unpack:
            return self._stage_archive(record, conn, f)
        if f.temp_id is not None:
            temp = self.data.temps.get(f.temp_id)
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
            if digest not in held.steps and not self._coming_to(held.worker, digest):
                self.retry(held.worker, digest)
        return True

    def forget_held(self, task_id: int) -> None:
        """A task sent back to the queue: its held message must never leave."""
        self.held.pop(task_id, None)

    def on_fetched(self, conn: WorkerConn, message: protocol.Message) -> None:
        """A worker's word on a transfer, download or unpacking it was asked for: one it was not
        asked for (or not this file) is ignored."""
        xfer = message["xfer"]
        if self.downloads.get(xfer, (None, None, False))[1] == conn.identity:
            self._downloaded(conn, message)
            return
        if self.unpacking.get(xfer, (None, ""))[0] == conn.identity:
            self._unpacked(conn, message)
            return
        flight = self.transfers.flight(xfer)
        if flight is None or flight.destination != conn.identity or flight.digest != message["digest"]:
            return
        self.transfers.finish(xfer)
        digest = flight.digest
        if message["ok"]:
            self.loop.counters["bytes_peer"] += flight.size
            self.loop.counters["peer_transfers"] += 1
            self.replicas.add(digest, conn.identity)
            if self._is_cached_input(digest):
                conn.cached.add(digest)
            self.arrived(conn.identity, digest)
            return
        self.loop.counters["peer_failures"] += 1
        log.info("worker %s could not get %s from a peer: %s", conn.worker_id, digest, message["reason"])
        if message["unreachable"]:
            self.transfers.mark_unreachable(flight.source, time.monotonic())
        elif message["gone"]:
            self.replicas.discard(digest, flight.source)  # it does not have it (any more)
            self.data.lost({digest})
        self.retry(conn.identity, digest)
        self._retry_waiting()

    def _copies_coming(self, digest: str) -> bool:
        return bool(self.master_sends.get(digest)) or self.transfers.flying(digest)

    def _is_cached_input(self, digest: str) -> bool:
        return not self.data.temps.count_with_digest(digest)

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
            source=self.transfers.addresses[source], source_curve=self.transfers.curve_keys.get(source, b""),
            keep=True))
        return True

    def arrived(self, worker: bytes, digest: str) -> None:
        """``digest`` is on ``worker``: held tasks there that waited for it may go; tasks elsewhere
        that waited for a source may get it from there."""
        if (worker, digest) in self.unpack_later:
            self.unpack_later.discard((worker, digest))
            self._unpack(worker, digest)
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
        held.steps.add(stand_in)
        if not any(d[:2] == (url, conn.identity) for d in self.downloads.values()):
            self.xfers += 1
            self.downloads[self.xfers] = (url, conn.identity, f.cache)
            self.loop.send_to(conn, protocol.encode("fetch-url", xfer=self.xfers, url=url, keep=f.cache))
        return [stand_in, f.remote, 0o644, f.cache]

    def _downloaded(self, conn: WorkerConn, message: protocol.Message) -> None:
        url, _, keep = self.downloads.pop(message["xfer"])
        stand_in = fastio.hash_bytes(url.encode())
        waiting = [(task_id, held) for task_id, held in self.held.items()
                   if held.worker == conn.identity and stand_in in held.missing]
        if message["ok"]:
            digest = message["digest"]
            self.urls[url] = (digest, message["size"])
            if keep:  # else the worker drops it after the task: not a copy to count on
                self.replicas.add(digest, conn.identity)
                conn.cached.add(digest)
            for task_id, held in waiting:
                del held.missing[stand_in]
                held.found[stand_in] = digest
                self._release(task_id, held)
            return
        for task_id, _ in waiting:
            self._fail_booked(task_id, f"input from a URL could not be downloaded: {message['reason']}")

    def _stage_archive(self, record: TaskRecord, conn: WorkerConn, f: File) -> list:
        """The archive goes to the worker as any input; the worker unpacks it once (``unpack``,
        after the archive has arrived), and the task is held until it has."""
        archive = dataclasses.replace(f, unpack=False)
        entry = self.stage(record, conn, archive) or self.loop.sender.stage_input(record, conn, archive)
        digest = entry[0]
        if (conn.identity, digest) in self.unpacked:
            return entry
        step = UNPACK_STEP + digest
        held = self.held.setdefault(record.task_id, Held(conn.identity))
        held.missing[step] = None
        held.steps.add(step)
        if (conn.identity, digest) in self.unpacking.values() or (conn.identity, digest) in self.unpack_later:
            return entry
        if (digest in conn.cached or self.replicas.holds(conn.identity, digest)) and \
                not self.transfers.flying_to(conn.identity, digest):
            self._unpack(conn.identity, digest)  # there, or on its way from the master ahead of this message
        else:
            self.unpack_later.add((conn.identity, digest))
        return entry

    def _unpack(self, worker: bytes, digest: str) -> None:
        self.xfers += 1
        self.unpacking[self.xfers] = (worker, digest)
        self.loop.send_to(self.loop.workers[worker], protocol.encode("unpack", xfer=self.xfers, digest=digest))

    def _unpacked(self, conn: WorkerConn, message: protocol.Message) -> None:
        worker, digest = self.unpacking.pop(message["xfer"])
        step = UNPACK_STEP + digest
        waiting = [(task_id, held) for task_id, held in self.held.items()
                   if held.worker == worker and step in held.missing]
        if message["ok"] and message["digest"] == digest:
            self.unpacked.add((worker, digest))
            self.loop.counters["archives_unpacked"] += 1
            for task_id, held in waiting:
                del held.missing[step]
                self._release(task_id, held)
            return
        for task_id, _ in waiting:
            self._fail_booked(task_id, f"an input archive could not be unpacked: {message['reason']}")

    def _fail_booked(self, task_id: int, why: str) -> None:
        """A task booked on a worker that cannot run: it fails with INPUT_MISSING."""
        record = self.unbook(task_id)
        if record is not None:
            self.data.fail(record, why)

    def unbook(self, task_id: int) -> Optional[TaskRecord]:
        """Forget a held task's booking on its worker; its record, or None if it is gone."""
        self.held.pop(task_id, None)
        record = self.loop.tasks.get(task_id)
        if record is None:
            return None
        conn = self.loop.workers.get(record.worker) if record.worker else None
        if conn is not None:
            conn.tasks.discard(task_id)
        return record

    def _coming_to(self, worker: bytes, digest: str) -> bool:
        return self.transfers.flying_to(worker, digest) or worker in self.master_sends.get(digest, ())

    def _retry_waiting(self) -> None:
        """Inputs that waited for a source (all busy): a transfer has ended, one may be free now."""
        for held in list(self.held.values()):
            for digest in list(held.missing):
                if digest not in held.steps and not self._coming_to(held.worker, digest):
                    self.retry(held.worker, digest)

    def retry(self, destination: bytes, digest: str) -> None:
        """Get ``digest`` to ``destination`` for the tasks held there: from another peer, else from
        the master (a file of its own), else wait for a copy on its way; a temporary file with no
        reachable copy anywhere sends its tasks back to wait for it to be made again."""
        waiting = [(task_id, held) for task_id, held in self.held.items()
                   if held.worker == destination and digest in held.missing]
        if not waiting or destination not in self.loop.workers:
            return
        size = next((t.size for t in self.data.temps.with_digest(digest)), None)
        if size is None:
            size = next((known[1] for known in self.urls.values() if known[0] == digest), None)
        f = waiting[0][1].missing[digest]
        try:
            if f is not None and size is None:
                size = self.loop.digests.digest(f.local)[1]
            if self._start(destination, digest, size or 0):
                return
            if f is not None:
                if self._master_sends(digest, destination):
                    self.master_sends.setdefault(digest, set()).add(destination)
                    record = self.loop.tasks.get(waiting[0][0])
                    self.loop.sender.stage_input(record, self.loop.workers[destination], f)
                return
        except OSError as error:  # the master's own file is gone, or changed while being sent
            for task_id, _ in waiting:
                self._fail_booked(task_id, f"input missing: {error}")
            return
        now = time.monotonic()
        if any(self.transfers.reachable(w, now) for w in self.replicas.holders(digest) if w != destination):
            return  # holders busy: their transfers end, and this is tried again
        for task_id, _ in waiting:
            self.data.repark(task_id)
