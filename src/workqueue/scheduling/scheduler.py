"""Which task runs on which worker. Pure: no sockets, no clock, no files.

Ready tasks wait in one heap per *shape* (their resource request), ordered by priority, then by
arrival. A dispatch round looks at the head of each shape only, so its cost grows with the number of
distinct shapes and workers, never with the number of waiting tasks. A task that fits no worker
blocks nothing: the other shapes keep flowing.

*Prefetch*: when the caller says a task is short (``prefetch_depth``), a worker with no room left may
also hold a few booked-but-waiting tasks per core (``queued``), which it starts the moment a running task
ends, without waiting for a round trip to the master. Queued tasks hold no resources until they
are promoted, in arrival order, exactly as the worker itself promotes them.

*Revocation*: a queued task may be taken back for a worker with room that no ready task fits
(``revocations``). Only the worker knows whether it has started the task, so the task stays booked
where it is until the worker answers (``revoke_answered``): taken back, it returns to its place in
line; started, it runs there. Either way exactly one worker runs it.

*Placement*: a worker with room takes the best task that fits it (FCFS). Under another algorithm a
booked task may go instead to another worker with room that fits it: the one holding most bytes of
its cached inputs (FILES, scored by the caller's ``cached_bytes``; a task with no cached input is
placed as under FCFS, at no cost), the one whose finished tasks took least time on average (TIME, by
the caller's ``worker_seconds``; workers with no finished task only when none has one, as in
CCTools), the one with most free resources (WORST_FIT), or any (RANDOM). A task may name its own
algorithm; the queue's places the others.
Only workers with a free core are looked at, so the cost grows with idle workers, never with tasks.

*Task order*: among tasks of equal priority, FIFO (arrival order) or LIFO (the newest first), fixed
when a task is submitted. *Blocked* workers, like draining ones, get no new tasks.
"""
from __future__ import annotations

import heapq
import itertools
import math
import random
from dataclasses import dataclass, field
from typing import (
    Any,
    Callable,
    Dict,
    FrozenSet,
    Hashable,
    Iterable,
    Iterator,
    List,
    Optional,
    Set,
    Tuple,
)

from ..constants import RESOURCE_NAMES
from .shapes import (  # noqa: F401
    NO_FEATURES,
    NO_NEEDS,
    WHOLE,
    Needs,
    Resources,
    describe_shape,
    input_disk_floor,
    request_shape,
    shape_needs,
    shape_resources,
)

WorkerId = Hashable

FCFS, FILES, TIME, RANDOM, WORST_FIT = "fcfs", "files", "time", "random", "worst_fit"  # worker selection
ALGORITHMS = (FCFS, FILES, TIME, RANDOM, WORST_FIT)
FIFO, LIFO = "fifo", "lifo"  # order among tasks of equal priority
TASK_ORDERS = (FIFO, LIFO)

# Per task, how many bytes of its cached inputs a worker holds; None when it has no cached input.
CachedBytes = Callable[[int], Optional[Callable[[WorkerId], float]]]
# Per task, the workers holding one of its inputs: the only ones a prefetched FILES task is moved to.
InputHolders = Callable[[int], Iterable[WorkerId]]
# A worker's mean seconds per finished task; None before its first.
WorkerSeconds = Callable[[WorkerId], Optional[float]]


MEMO_MAX = 1024  # shapes remembered (bookings, fits) before the memo starts over: shapes may be countless
QUEUED_MAX = 256  # prefetched tasks per worker, whatever its cores: its books are scanned per event
REVOKE_SCAN_MAX = 4096  # queued tasks looked at, and (idle worker, task) pairs tried, per search for tasks to take back


@dataclass
class WorkerBooks:
    total: Resources
    free: Resources
    running: Set[int] = field(default_factory=set)
    queued: List[int] = field(default_factory=list)
    draining: bool = False
    blocked: bool = False  # its host is on the block list: no new tasks
    features: FrozenSet[str] = NO_FEATURES  # what it was started with (--feature)
    time_left: float = math.inf  # of its --wall-time, as of the loop's latest word (set_time_left)
    ever_fits: Dict[Tuple, bool] = field(default_factory=dict)  # by shape: the total never changes

    @property
    def prefetch_limit(self) -> int:
        """Queued tasks allowed per unit of prefetch depth."""
        return max(1, int(self.total["cores"]))

    @property
    def takes_tasks(self) -> bool:
        return not (self.draining or self.blocked)

    def fits(self, shape: Tuple) -> bool:
        if self.draining or self.blocked or self.queued:  # not takes_tasks: this runs per shape per worker
            return False  # queued tasks go first, as on the worker
        return self.fits_now(shape)

    def fits_now(self, shape: Tuple) -> bool:
        """Room for the shape now, and what it needs beyond amounts."""
        if shape[0] == WHOLE:
            return not self.running and (len(shape) == 1 or self.total["disk"] >= shape[1]) and \
                (len(shape) < 3 or self.meets(shape[2]))
        free = self.free  # RESOURCE_NAMES, unrolled: this runs per shape per worker looked at
        return free["cores"] >= shape[0] and free["memory"] >= shape[1] and free["disk"] >= shape[2] and \
            free["gpus"] >= shape[3] and (len(shape) == 4 or self.meets(shape[4]))

    def has_room(self, shape: Tuple) -> bool:
        """Room for the shape now, whatever else it needs: how the worker promotes its queue."""
        if shape[0] == WHOLE:
            return not self.running
        free = self.free
        return free["cores"] >= shape[0] and free["memory"] >= shape[1] and free["disk"] >= shape[2] and \
            free["gpus"] >= shape[3]

    def meets(self, needs: Needs) -> bool:
        return needs.features <= self.features and needs.min_time <= self.time_left

    def could_ever_fit(self, shape: Tuple) -> bool:
        """Whether the shape fits the worker when it is idle (now: its time left shrinks)."""
        if shape_needs(shape).min_time > self.time_left:
            return False
        fits = self.ever_fits.get(shape)
        if fits is None:
            if len(self.ever_fits) >= MEMO_MAX:
                self.ever_fits.clear()
            if shape[0] == WHOLE:
                fits = len(shape) == 1 or self.total["disk"] >= shape[1]
            else:
                fits = all(self.total[name] >= need for name, need in zip(RESOURCE_NAMES, shape))
            fits = fits and shape_needs(shape).features <= self.features
            self.ever_fits[shape] = fits
        return fits


@dataclass
class Assignment:
    task_id: int
    worker: WorkerId
    allocation: Resources  # shared with the scheduler's books and other tasks: read only
    queued: bool = False  # booked to wait on a busy worker (prefetched)


@dataclass
class _Entry:
    shape: Tuple
    priority: float
    order: int
    worker: Optional[WorkerId] = None
    allocation: Optional[Resources] = None
    queued: bool = False
    promised_to: Optional[WorkerId] = None  # being taken back for this worker (see revocations)
    algorithm: Optional[str] = None  # the task's own worker selection; None: the queue's


def _quickest(seconds: Optional[float]) -> Tuple[bool, float]:
    """TIME's score of a worker (higher is better): any history beats none, then less time."""
    return (False, 0.0) if seconds is None else (True, -seconds)


class Scheduler:
    """Books every task on at most one worker and never over-commits a worker."""

    def __init__(self, algorithm: str = FILES, task_order: str = FIFO, seed: Optional[int] = None,
                 worker_seconds: Optional[WorkerSeconds] = None) -> None:
        self.algorithm = algorithm
        self.worker_seconds = worker_seconds
        self._own_algorithms = False  # whether any task has named its own algorithm
        self.task_order = task_order
        self._random = random.Random(seed)
        self._workers: Dict[WorkerId, WorkerBooks] = {}
        self._tasks: Dict[int, _Entry] = {}
        self._ready: Dict[Tuple, List[Tuple[float, int, int]]] = {}
        self._ready_count = 0
        self._ready_declared_cores = 0.0
        self._ready_whole = 0
        self._arrivals = itertools.count()
        self._allocations: Dict[Tuple, Resources] = {}
        self._with_room: Set[WorkerId] = set()
        self._promised: Dict[WorkerId, List[int]] = {}  # per worker, tasks being taken back for it

    # -- workers --------------------------------------------------------------------------------
    def add_worker(self, worker: WorkerId, resources: Resources, features: FrozenSet[str] = NO_FEATURES) -> None:
        total = {name: float(resources.get(name, 0)) for name in RESOURCE_NAMES}
        books = self._workers[worker] = WorkerBooks(total=total, free=dict(total), features=features)
        self._note_room(worker, books)

    def remove_worker(self, worker: WorkerId) -> List[int]:
        """Forget a worker; its running tasks go back to the ready queues, keeping their place."""
        books = self._workers.pop(worker, None)
        self._with_room.discard(worker)
        for task_id in self._promised.pop(worker, ()):
            self._tasks[task_id].promised_to = None
        if books is None:
            return []
        returned = sorted(books.running) + books.queued
        for task_id in returned:
            entry = self._tasks[task_id]
            self._unpromise(task_id, entry)
            entry.worker = entry.allocation = None
            entry.queued = False
            self._push_ready(task_id, entry)
        return returned

    def set_time_left(self, worker: WorkerId, seconds: float) -> None:
        """How long the worker has yet to live (its --wall-time), for tasks with a running_time_min."""
        books = self._workers.get(worker)
        if books is not None:
            books.time_left = seconds

    def drain_worker(self, worker: WorkerId) -> None:
        if worker in self._workers:
            self._workers[worker].draining = True
            self._with_room.discard(worker)

    def block_worker(self, worker: WorkerId, blocked: bool = True) -> None:
        """A blocked worker keeps what it runs and holds queued, and gets nothing new."""
        books = self._workers.get(worker)
        if books is not None:
            books.blocked = blocked
            self._note_room(worker, books)

    @property
    def blocked_count(self) -> int:
        return sum(1 for books in self._workers.values() if books.blocked)

    def worker_books(self, worker: WorkerId) -> Optional[WorkerBooks]:
        return self._workers.get(worker)

    # -- tasks ----------------------------------------------------------------------------------
    def submit(self, task_id: int, declared: Dict[str, Optional[float]], priority: float = 0,
               input_mb: float = 0.0, algorithm: Optional[str] = None, needs: Needs = NO_NEEDS) -> None:
        if task_id in self._tasks:
            raise ValueError(f"task {task_id} is already known to the scheduler")
        arrival = next(self._arrivals)
        entry = _Entry(request_shape(declared, input_mb, needs), priority,
                       -arrival if self.task_order == LIFO else arrival)
        if algorithm is not None:
            entry.algorithm = algorithm
            self._own_algorithms = True
        self._tasks[task_id] = entry
        self._push_ready(task_id, entry)

    def requeue(self, task_id: int) -> None:
        """Put a running task back in line (its worker failed it for a reason not its own)."""
        entry = self._tasks.get(task_id)
        if entry is not None and entry.worker is not None:
            self._release(task_id, entry)
            self._push_ready(task_id, entry)

    def finish(self, task_id: int) -> None:
        """The task is done (or cancelled): free what it held and forget it."""
        entry = self._tasks.pop(task_id, None)
        if entry is None:
            return
        self._unpromise(task_id, entry)
        if entry.worker is not None:
            self._release(task_id, entry)
        else:
            self._count_ready(entry.shape, -1)

    def is_queued(self, task_id: int) -> bool:
        entry = self._tasks.get(task_id)
        return entry is not None and entry.queued

    def worker_of(self, task_id: int) -> Optional[WorkerId]:
        entry = self._tasks.get(task_id)
        return None if entry is None else entry.worker

    def is_ready(self, task_id: int) -> bool:
        entry = self._tasks.get(task_id)
        return entry is not None and entry.worker is None

    # -- dispatch -------------------------------------------------------------------------------
    def schedule(self, prefetch_depth: Optional[Callable[[int], int]] = None,
                 only: Optional[WorkerId] = None, cached_bytes: Optional[CachedBytes] = None,
                 input_holders: Optional[InputHolders] = None) -> List[Assignment]:
        """Book as many ready tasks as fit, best priority first, on the workers with room; then
        queue tasks on full workers, up to ``prefetch_depth(task_id)`` per core (0: none).
        ``only``: look at that one worker (the one that has just freed room) and at those with a free
        core, not at them all; ``only`` gets prefetched tasks once no other worker has a free core.
        ``cached_bytes``: what the FILES algorithm scores workers by (see CachedBytes);
        ``input_holders``: where a prefetched FILES task may wait instead (see InputHolders)."""
        assignments: List[Assignment] = []
        if not self._ready_count:
            return assignments
        if only is None:
            workers = list(self._workers.items())
        elif only in self._workers:  # and the workers with a free core, which go first
            workers = [(w, self._workers[w]) for w in self._with_room if w != only] + [(only, self._workers[only])]
        else:
            return assignments
        for worker, books in workers:
            while self._ready_count:
                shape = self._best_fitting_shape(books)
                if shape is None:
                    break
                algorithm = self._tasks[self._ready[shape][0][2]].algorithm or self.algorithm \
                    if self._own_algorithms else self.algorithm  # the live head: _best_shape just checked it
                if algorithm == FCFS or (algorithm == FILES and cached_bytes is None):
                    assignments.append(self._book(shape, worker, books))
                else:
                    worker_now, books_now = self._place(shape, worker, books, algorithm, cached_bytes)
                    assignments.append(self._book(shape, worker_now, books_now))
        if prefetch_depth is None:
            return assignments
        if only is None:
            self._prefetch(prefetch_depth, assignments, workers, cached_bytes, input_holders)
        elif not any(w != only for w in self._with_room):
            self._prefetch(prefetch_depth, assignments, [(only, self._workers[only])], cached_bytes, input_holders)
        return assignments

    def _prefetch(self, prefetch_depth: Callable[[int], int], assignments: List[Assignment],
                  workers: List[Tuple[WorkerId, WorkerBooks]], cached_bytes: Optional[CachedBytes],
                  input_holders: Optional[InputHolders]) -> None:
        """One task per worker per pass, so that a short queue spreads over every worker; a FILES
        task waits instead on the worker caching most of its inputs (see _prefetch_target)."""
        candidates = [(worker, books) for worker, books in workers if books.takes_tasks]
        while candidates and self._ready_count:
            more = []
            for worker, books in candidates:
                shape = self._best_shape(books.could_ever_fit) if self._ready_count else None
                if shape is None:
                    continue
                depth = prefetch_depth(self._head(shape)[2])
                if not self._may_queue(books, depth):
                    continue
                target, target_books = self._prefetch_target(shape, worker, books, depth, cached_bytes, input_holders)
                assignments.append(self._book(shape, target, target_books, queued=True))
                more.append((worker, books))
            candidates = more

    @staticmethod
    def _may_queue(books: WorkerBooks, depth: int) -> bool:
        return len(books.queued) < min(QUEUED_MAX, books.prefetch_limit * depth)

    def _prefetch_target(self, shape: Tuple, worker: WorkerId, books: WorkerBooks, depth: int,
                         cached_bytes: Optional[CachedBytes],
                         input_holders: Optional[InputHolders]) -> Tuple[WorkerId, WorkerBooks]:
        """Where the head task of ``shape`` waits: ``worker``, unless it is a FILES task and one of
        the workers holding its inputs (the only ones looked at) may queue it and holds more."""
        task_id = self._head(shape)[2]
        if cached_bytes is None or input_holders is None or (self._tasks[task_id].algorithm or self.algorithm) != FILES:
            return worker, books
        candidates = [(worker, books)] + [
            (other, self._workers[other]) for other in input_holders(task_id)
            if other != worker and other in self._workers and self._workers[other].takes_tasks
            and self._workers[other].could_ever_fit(shape) and self._may_queue(self._workers[other], depth)]
        score = cached_bytes(task_id) if len(candidates) > 1 else None
        if score is None:
            return worker, books
        return max(candidates, key=lambda pair: score(pair[0]))

    # -- taking queued tasks back ---------------------------------------------------------------
    def revocations(self, may_revoke: Callable[[int], bool]) -> List[Tuple[int, WorkerId]]:
        """Queued tasks to take back from busy workers for the workers with room that no ready task
        fits, as (task, the worker holding it) pairs; each is promised to one worker with room, so no
        worker is promised more than it can hold. Of the tasks that waited long enough (``may_revoke``:
        the caller owns the clock), the last queued go first (they would start last). A worker's
        queue is in the order its tasks were sent, so only its head is looked at while it is young:
        the search costs one look per busy worker, not one per queued task."""
        idle = [(w, self._workers[w]) for w in self._with_room if not self._workers[w].queued]
        if not idle:
            return []
        candidates = self._waited_long_enough(may_revoke)
        taken: List[Tuple[int, WorkerId]] = []
        checks = 0
        for worker, books in idle:
            for task_id, holder in candidates:
                checks += 1
                if checks > REVOKE_SCAN_MAX:
                    return taken
                entry = self._tasks[task_id]
                if holder != worker and entry.promised_to is None and self._has_room_for(worker, books, entry.shape):
                    entry.promised_to = worker
                    self._promised.setdefault(worker, []).append(task_id)
                    taken.append((task_id, holder))
        return taken

    def _waited_long_enough(self, may_revoke: Callable[[int], bool]) -> List[Tuple[int, WorkerId]]:
        """(task, holder) for the queued tasks that have waited long enough, latest first per holder."""
        found: List[Tuple[int, WorkerId]] = []
        looked = 0
        for holder, held in self._workers.items():
            old = []
            for task_id in held.queued:
                looked += 1
                if looked > REVOKE_SCAN_MAX or not may_revoke(task_id):
                    break
                old.append(task_id)
            found += [(task_id, holder) for task_id in reversed(old)]
        return found

    def revoke_answered(self, task_id: int, revoked: bool) -> None:
        """The holding worker's answer: ``revoked``, the task never started there and goes back to
        its place in line; otherwise it runs where it is."""
        entry = self._tasks.get(task_id)
        if entry is None:
            return
        self._unpromise(task_id, entry)  # the worker it was promised to may have left meanwhile
        if revoked and entry.worker is not None:
            self._release(task_id, entry)
            self._push_ready(task_id, entry)

    def is_being_revoked(self, task_id: int) -> bool:
        entry = self._tasks.get(task_id)
        return entry is not None and entry.promised_to is not None

    def _has_room_for(self, worker: WorkerId, books: WorkerBooks, shape: Tuple) -> bool:
        """Whether ``books`` fits ``shape`` beside what it has been promised already."""
        promised = [self._tasks[t].shape for t in self._promised.get(worker, ())]
        if not books.could_ever_fit(shape):
            return False
        if shape[0] == WHOLE or any(p[0] == WHOLE for p in promised):
            return not promised and books.fits_now(shape)
        return all(books.free[name] - sum(p[i] for p in promised) >= need - 1e-9
                   for i, (name, need) in enumerate(zip(RESOURCE_NAMES, shape)))

    def _unpromise(self, task_id: int, entry: _Entry) -> None:
        worker, entry.promised_to = entry.promised_to, None
        promised = self._promised.get(worker) if worker is not None else None
        if promised is not None:
            promised.remove(task_id)
            if not promised:
                del self._promised[worker]

    def unfit_shapes(self) -> List[Tuple[Tuple, int]]:
        """Shapes with waiting tasks that no connected worker could ever hold, with their counts."""
        if not self._workers:
            return []
        return [
            (shape, len(heap)) for shape, heap in self._ready.items()
            if heap and not any(b.could_ever_fit(shape) for b in self._workers.values())
        ]

    # -- figures --------------------------------------------------------------------------------
    @property
    def ready_count(self) -> int:
        return self._ready_count

    @property
    def running_count(self) -> int:
        return len(self._tasks) - self._ready_count

    def capacity(self) -> Tuple[Resources, Resources]:
        """(total, free) summed over the workers."""
        total = {name: 0.0 for name in RESOURCE_NAMES}
        free = dict(total)
        for books in self._workers.values():
            for name in RESOURCE_NAMES:
                total[name] += books.total[name]
                free[name] += books.free[name]
        return total, free

    def hungry(self, minimum: int = 10) -> bool:
        """True while more tasks would keep the workers busy: few are waiting, or the waiting
        ones would not fill the free cores."""
        if self._ready_count < minimum:
            return True
        _, free = self.capacity()
        widest = max((b.total["cores"] for b in self._workers.values()), default=1.0)
        return self._ready_declared_cores + self._ready_whole * widest < free["cores"]

    def workers(self) -> Iterator[Tuple[WorkerId, WorkerBooks]]:
        return iter(self._workers.items())

    # -- internals ------------------------------------------------------------------------------
    def _push_ready(self, task_id: int, entry: _Entry) -> None:
        heapq.heappush(self._ready.setdefault(entry.shape, []), (-entry.priority, entry.order, task_id))
        self._count_ready(entry.shape, +1)

    def _count_ready(self, shape: Tuple, sign: int) -> None:
        self._ready_count += sign
        if shape[0] == WHOLE:
            self._ready_whole += sign
        else:
            self._ready_declared_cores += sign * shape[0]

    def _head(self, shape: Tuple) -> Optional[Tuple[float, int, int]]:
        """The best live entry of a shape's heap, dropping entries of finished or booked tasks."""
        heap = self._ready[shape]
        while heap:
            _, order, task_id = heap[0]
            entry = self._tasks.get(task_id)
            if entry is not None and entry.worker is None and entry.order == order:
                return heap[0]
            heapq.heappop(heap)
        return None

    def _best_fitting_shape(self, books: WorkerBooks) -> Optional[Tuple]:
        return self._best_shape(books.fits)

    def _best_shape(self, acceptable: Callable[[Tuple], bool]) -> Optional[Tuple]:
        best = None
        for shape in list(self._ready):
            head = self._head(shape)
            if head is None:
                del self._ready[shape]
                continue
            if acceptable(shape) and (best is None or head < best[0]):
                best = (head, shape)
        return None if best is None else best[1]

    def _place(self, shape: Tuple, worker: WorkerId, books: WorkerBooks, algorithm: str,
               cached_bytes: Optional[CachedBytes]) -> Tuple[WorkerId, WorkerBooks]:
        """The worker that gets the head task of ``shape``: ``worker`` (which fits it) unless the
        algorithm prefers another worker with room that fits it too."""
        if algorithm == FILES:
            score = cached_bytes(self._ready[shape][0][2])  # the live head: _best_shape just checked it
            if score is None:
                return worker, books
            key: Callable[[Tuple[WorkerId, WorkerBooks]], Any] = lambda pair: score(pair[0])
        elif algorithm == TIME:
            seconds = self.worker_seconds or (lambda w: None)
            key = lambda pair: _quickest(seconds(pair[0]))
        elif algorithm == WORST_FIT:
            key = lambda pair: (pair[1].free["cores"], pair[1].free["memory"], pair[1].free["disk"])
        else:
            key = lambda pair: self._random.random()
        candidates = [(worker, books)] + [
            (other, self._workers[other]) for other in self._with_room
            if other != worker and self._workers[other].fits(shape)]
        return max(candidates, key=key) if len(candidates) > 1 else (worker, books)

    def _book(self, shape: Tuple, worker: WorkerId, books: WorkerBooks, queued: bool = False) -> Assignment:
        _, _, task_id = heapq.heappop(self._ready[shape])
        entry = self._tasks[task_id]
        allocation = dict(books.total) if shape[0] == WHOLE else self._allocation(shape)
        entry.worker, entry.allocation, entry.queued = worker, allocation, queued
        if queued:
            books.queued.append(task_id)
        else:
            self._hold(books, task_id, allocation)
            self._note_room(worker, books)
        self._count_ready(shape, -1)
        return Assignment(task_id, worker, allocation, queued)

    def _allocation(self, shape: Tuple) -> Resources:
        """The booking of a shape, one dict shared by the tasks of that shape: read only."""
        allocation = self._allocations.get(shape)
        if allocation is None:
            if len(self._allocations) >= MEMO_MAX:
                self._allocations.clear()
            allocation = self._allocations[shape] = shape_resources(shape)
        return allocation

    def _note_room(self, worker: WorkerId, books: WorkerBooks) -> None:
        """Keep ``_with_room``: the workers that have a free core and take new tasks."""
        if books.free["cores"] > 1e-9 and books.takes_tasks:
            self._with_room.add(worker)
        else:
            self._with_room.discard(worker)

    @staticmethod
    def _hold(books: WorkerBooks, task_id: int, allocation: Resources) -> None:
        for name in RESOURCE_NAMES:
            books.free[name] -= allocation[name]
        books.running.add(task_id)

    def _release(self, task_id: int, entry: _Entry) -> None:
        self._unpromise(task_id, entry)
        books = self._workers.get(entry.worker)
        if books is not None:
            if entry.queued:
                books.queued.remove(task_id)
                self._promote(books)  # as the worker does after a queued task leaves its queue
                self._note_room(entry.worker, books)
            else:
                books.running.discard(task_id)
                for name in RESOURCE_NAMES:
                    books.free[name] += entry.allocation[name]
                self._promote(books)
                self._note_room(entry.worker, books)
        entry.worker = entry.allocation = None
        entry.queued = False

    def _promote(self, books: WorkerBooks) -> None:
        """Start queued tasks in arrival order while they fit: what the worker does on its side."""
        while books.queued:
            task_id = books.queued[0]
            entry = self._tasks[task_id]
            if not books.has_room(entry.shape):
                return
            books.queued.pop(0)
            entry.queued = False
            self._hold(books, task_id, entry.allocation)
