"""A task on its way to a worker: its message, and its inputs, each inline, already there, coming
from a peer, or streamed from the master."""
from __future__ import annotations

import os
import time
from typing import Any, List

from ..data.inline_files import Budget, read_input
from ..data.transfer import BytesSource, FileSource
from ..files import File
from ..scheduling.scheduler import Assignment
from ..wire import protocol
from .inputs import expand_directories
from .records import TaskRecord, WorkerConn


class TaskSender:
    """Builds and queues the ``task`` message of the loop it belongs to."""

    def __init__(self, loop: Any) -> None:
        self.loop = loop

    def send(self, record: TaskRecord, conn: WorkerConn, assignment: Assignment) -> None:
        loop, spec = self.loop, record.spec
        inputs: List[list] = []
        files: List[list] = []
        budget = Budget()
        for f in expand_directories(spec["inputs"]):
            small = read_input(f, budget)
            if small is not None:
                files.append(small)
                record.bytes_sent += len(small[2])
                loop.counters["bytes_sent"] += len(small[2])
                continue
            inputs.append(loop.data.stage(record, conn, f) or self.stage_input(record, conn, f))
        record.attempts += 1
        record.worker = conn.identity
        record.allocation = assignment.allocation
        record.dispatch_time = time.time()
        conn.tasks.add(record.task_id)
        record.prefetched = assignment.queued
        if assignment.queued:
            loop.counters["tasks_prefetched"] += 1
        limits = {}
        if spec["max_run_time"]:
            limits["wall_time"] = float(spec["max_run_time"])
        if spec["end_time"]:
            limits["end_time"] = float(spec["end_time"])
        frames = protocol.encode(
            "task", [spec.get("call_payload", b"")], task_id=record.task_id, attempt=record.attempts, command=spec["command"],
            kind=spec.get("kind", "command"), env=spec["env"], resources=assignment.allocation,
            declared={k: v for k, v in spec["resources"].items() if v is not None},
            inputs=inputs, outputs=[f.remote for f in spec["outputs"]], limits=limits,
            call=spec.get("call", {}), temps=[f.remote for f in spec["outputs"] if f.temp_id is not None],
            unpack=[f.remote for f in spec["inputs"] if f.unpack], files=files)
        if not loop.data.hold(record, conn, frames):  # held: it leaves once its inputs from peers are in
            conn.outbox.message(frames)
        loop.transactions.task(record.task_id, "RUNNING", conn.worker_id)

    def stage_input(self, record: TaskRecord, conn: WorkerConn, f: File) -> list:
        """Queue the bytes of one input for a worker unless it holds them already."""
        loop = self.loop
        if f.local is not None and f.data is None and os.path.isdir(f.local):
            return ["", f.remote, 0o755, False]  # an empty directory: the worker makes it
        if f.data is not None:
            digest, size, mode = None, len(f.data), 0o644
            source = BytesSource(f.data)
            digest = source.hexdigest()
        else:
            digest, size, mode = loop.digests.digest(f.local)
            source = None
        if f.cache and digest in conn.cached:
            record.cache_hits += 1
            loop.counters["cache_hits"] += 1
            return [digest, f.remote, mode, f.cache]
        if source is None:
            source = FileSource(f.local, digest=digest)
            if source.size != size:
                source.close()
                raise OSError(f"input file {f.local!r} changed while being sent")
        loop.xfer_ids += 1
        header = protocol.encode("put", xfer=loop.xfer_ids, digest=digest, size=size, mode=mode, keep=f.cache)
        conn.outbox.stream(loop.xfer_ids, header, source)
        record.bytes_sent += size
        loop.counters["bytes_sent"] += size
        if f.cache:
            conn.cached.add(digest)
        return [digest, f.remote, mode, f.cache]
