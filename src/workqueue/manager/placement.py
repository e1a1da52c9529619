"""What the loop tells the pure scheduler about placing tasks: a task's needs when it is handed over,
how deep it may be prefetched, how quick each worker is (TIME), and how much of a task's input
each worker caches (FILES). Read from the loop's records; no sockets."""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Optional, Set

from ..scheduling.scheduler import NO_NEEDS, Needs
from .inputs import cached_input_scorer, cached_input_sizes, input_megabytes
from .records import PREFETCH_MAX_SECONDS, PREFETCH_MIN_SAMPLES, TaskRecord

if TYPE_CHECKING:
    from .loop import ManagerLoop

PREFETCH_QUEUE_SECONDS = 0.02  # work queued ahead on a busy worker, per core
PREFETCH_MAX_DEPTH = 64  # per core; each wake-up of a worker then serves more tasks (see FunctionPool)


class Placement:
    def __init__(self, loop: "ManagerLoop") -> None:
        self.loop = loop

    def queue_task(self, record: TaskRecord) -> None:
        """Hand a task to the scheduler (at submit, or once the temporary files it reads exist)."""
        spec = record.spec
        features, min_time = spec.get("features"), spec.get("min_running_time")
        needs = Needs(frozenset(features or ()), min_time or 0.0) if features or min_time else NO_NEEDS
        inputs = spec["inputs"]
        self.loop.scheduler.submit(record.task_id, spec["resources"], spec["priority"],
                                   input_megabytes(inputs) if inputs else 0.0, spec.get("algorithm"), needs)

    def prefetch_depth(self, task_id: int) -> int:
        """How many tasks like this one may wait on a busy worker, per core: enough to keep it
        busy for about PREFETCH_QUEUE_SECONDS, none for tasks not known to be short (by the tasks
        of its category that ran the same program; a wrong guess is taken back, see Revocations)."""
        record = self.loop.tasks[task_id]
        times = self.loop.categories.program_wall_times(record.spec["category"], record.program)
        if times is None or times.count < PREFETCH_MIN_SAMPLES or times.mean >= PREFETCH_MAX_SECONDS:
            return 0
        return max(1, min(PREFETCH_MAX_DEPTH, int(PREFETCH_QUEUE_SECONDS / max(times.mean, 1e-6))))

    def worker_seconds(self, identity: bytes) -> Optional[float]:
        """For the TIME algorithm: the worker's mean wall time per finished task."""
        conn = self.loop.workers.get(identity)
        return conn.task_seconds / conn.timed if conn is not None and conn.timed else None

    def cached_bytes(self, task_id: int) -> Optional[Callable[[bytes], float]]:
        """For the FILES algorithm: see manager.inputs.cached_input_scorer."""
        loop = self.loop
        spec = loop.tasks[task_id].spec
        if not spec["inputs"]:
            return None
        return loop.data.scorer(spec, cached_input_scorer(spec["inputs"], loop.digests, loop.workers))

    def input_holders(self, task_id: int) -> Set[bytes]:
        """For a prefetched FILES task: the workers holding a ready copy of one of its inputs."""
        loop = self.loop
        spec = loop.tasks[task_id].spec
        if not spec["inputs"]:
            return set()
        return loop.data.holders(spec, cached_input_sizes(spec["inputs"], loop.digests))
