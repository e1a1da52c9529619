"""What a task of each category is given to run with: CCTools' allocation modes. Pure: no clock, no sockets.

Each category has a *mode* (CCTools' ``WORK_QUEUE_ALLOCATION_MODE_*`` values), optional *min* and *max*
resources, an optional *first allocation guess*, and the measured peaks (cores, memory, disk) of its
finished tasks, counted only once monitoring is on (``enable_monitoring``; workers always measure, so
monitoring is only this flag).

**First allocation** of a task (``Categories.first_allocation``), resource by resource:

1. A value the task declared is kept, in every mode (a task's own spec beats its category).
2. FIXED (the default): a task that declared nothing gets the category max if one is set, else a whole
   worker. A task that declared some resources keeps the rest unset (the scheduler counts unset
   memory, disk and gpus as 0, and cores as 1).
3. MAX, MIN_WASTE, MAX_THROUGHPUT, before the category has ``steady_n_tasks`` samples (``tune
   ("category-steady-n-tasks", n)``, default 25 as in CCTools): the first allocation guess where set,
   else the category max where set; a task that then still has nothing set takes a whole worker.
4. The same modes once there are ``steady_n_tasks`` samples: each unset resource among cores, memory
   and disk gets a value computed from the peaks (rounded up to buckets of 1 core, 250 MB memory, 250 MB
   disk, as CCTools' histograms do), then raised to the category min and capped at the category max:

   - MAX: the largest peak seen.
   - MIN_WASTE: the candidate ``a`` (one of the bucketed peaks) that minimises the waste, summed over
     the samples and weighted by each task's wall time: ``a - peak`` for a task that fits, ``a + top -
     peak`` for one that does not (its first attempt is lost and it runs again at ``top``, the category
     max or else the largest peak).
   - MAX_THROUGHPUT: the candidate ``a`` that maximises ``fits(a) / (n * a + misses(a) * top)`` over the
     ``n`` samples: tasks that succeed per unit of resource booked, counting the retry at ``top`` of those
     that do not fit.

   gpus are never guessed: unset gpus stay 0 (or the first guess or max, before steady state). Nor is
   a resource whose labeling is turned off (``specify_category_autolabel_resource(cat, res, False)``):
   it keeps the category max where set, else stays unset.

**Retry after RESOURCE_EXHAUSTION** (``Categories.retry_allocation``): in any mode but FIXED, a task
whose worker stopped it for going past its allocation runs once more, at the category max (the max
overrides what the task declared; resources without a max are left unset); if no max is set at all,
on a whole worker with no limits. In FIXED mode, or a second time, the task fails with
RESOURCE_EXHAUSTION as before.

**Fast abort** (``Categories.fast_abort_after``): once a category has ``FAST_ABORT_MIN_SAMPLES`` tasks
that succeeded, a task of it that has run longer than the multiplier x their mean wall time is stopped
and run again (the master does that; this room only says after how long). The multiplier is the
category's own (``activate_fast_abort_category``; a negative one means the queue's), else the
queue's (``activate_fast_abort``); one below 1 turns fast abort off, as in CCTools. The mean does not need monitoring.

**What differs from CCTools**: CCTools keeps histograms per resource and also counts wall time in the
throughput mode, recomputes its guess every so many tasks, and with the watchdog off never measures;
here peaks are kept in a bounded window of the latest ``SAMPLES_KEPT`` tasks, the guess is computed
when the ``steady_n_tasks``-th sample comes in and again every ``steady_n_tasks`` samples after (at
least every ``RECOMPUTE_EVERY``), and a
retried task goes back in line (CCTools puts it at the head). CCTools sizes a task when it is
dispatched; here a task is sized when submitted, and the tasks of a category still waiting are sized
again whenever its guess changes (``record`` returns True). CCTools also adds
each task's count of fast aborts to the multiplier; here the multiplier is the same for every task.
"""
from __future__ import annotations

import enum
import math
from collections import deque
from dataclasses import dataclass, field
from typing import Deque, Dict, List, Optional, Set, Tuple

from ..constants import RESOURCE_NAMES

Resources = Dict[str, Optional[float]]

SAMPLES_KEPT = 1000  # latest finished tasks remembered per category
DEFAULT_STEADY_N_TASKS = 25
WALL_TIME_WINDOW = 100  # tasks the running mean of wall times mostly reflects
PROGRAMS_MAX = 4096
PROGRAM_NAME_MAX = 256  # (category, program) pairs whose wall times are kept for prefetching
FAST_ABORT_MIN_SAMPLES = 10  # tasks that succeeded before a category's mean wall time is trusted
RECOMPUTE_EVERY = 25  # at least this many new samples before a guess is computed again (it costs O(samples))
BUCKETS = {"cores": 1.0, "memory": 250.0, "disk": 250.0}  # the resources that are guessed, and their rounding


def task_program(command: str) -> str:
    """What a task runs, for guessing how long it takes: the first word of its command (a
    function task's command is its function's name). One category often mixes a quick ``cp`` or
    ``echo`` with the long ``sleep`` or simulation, and only tasks of one kind predict each other."""
    words = command.split(None, 1)
    return words[0][:PROGRAM_NAME_MAX] if words else ""


class Mode(enum.IntEnum):
    FIXED = 0
    MAX = 1
    MIN_WASTE = 2
    MAX_THROUGHPUT = 3


@dataclass
class WallTimes:
    """A running mean of a category's wall times, over about the latest WALL_TIME_WINDOW tasks."""

    count: int = 0
    mean: float = 0.0

    def add(self, seconds: float) -> None:
        self.count += 1
        self.mean += (seconds - self.mean) / min(self.count, WALL_TIME_WINDOW)


@dataclass(frozen=True)
class Sample:
    peaks: Dict[str, float]
    wall_time: float


@dataclass
class Category:
    mode: Mode = Mode.FIXED
    min: Dict[str, float] = field(default_factory=dict)
    max: Dict[str, float] = field(default_factory=dict)
    first_guess: Dict[str, float] = field(default_factory=dict)
    samples: Deque[Sample] = field(default_factory=lambda: deque(maxlen=SAMPLES_KEPT))
    recorded: int = 0  # samples ever recorded
    guess: Optional[Dict[str, float]] = None  # learned from the samples, once steady
    guessed_at: int = 0  # ``recorded`` when ``guess`` was computed
    fast_abort_multiplier: Optional[float] = None  # None: the queue's
    wall_times: "WallTimes" = field(default_factory=lambda: WallTimes())
    not_labeled: Set[str] = field(default_factory=set)  # resources never guessed (autolabel off)


class Categories:
    def __init__(self) -> None:
        self._categories: Dict[str, Category] = {}
        self.monitoring = False
        self.steady_n_tasks = DEFAULT_STEADY_N_TASKS
        self.fast_abort_multiplier = 0.0  # the queue's; below 1: off
        self._program_times: Dict[Tuple[str, str], WallTimes] = {}

    def get(self, name: str) -> Category:
        category = self._categories.get(name)
        if category is None:
            category = self._categories[name] = Category()
        return category

    # -- settings -------------------------------------------------------------------------------
    def set_mode(self, name: str, mode: int) -> None:
        self.get(name).mode = Mode(mode)

    def set_max(self, name: str, resources: Resources) -> None:
        self.get(name).max = _set_values(resources)

    def set_min(self, name: str, resources: Resources) -> None:
        self.get(name).min = _set_values(resources)

    def set_first_guess(self, name: str, resources: Resources) -> None:
        self.get(name).first_guess = _set_values(resources)

    def set_fast_abort(self, name: Optional[str], multiplier: float) -> None:
        """The fast abort multiplier of one category, or of the queue (``name`` None). Below 1: off;
        for a category, a negative one means "the queue's", as in CCTools."""
        if name is None:
            self.fast_abort_multiplier = float(multiplier)
        else:
            self.get(name).fast_abort_multiplier = None if multiplier < 0 else float(multiplier)

    @property
    def fast_abort_active(self) -> bool:
        return self.fast_abort_multiplier >= 1 or any(
            (c.fast_abort_multiplier or 0) >= 1 for c in self._categories.values())

    # -- what tasks report ----------------------------------------------------------------------
    def record(self, name: str, measured: Dict[str, float]) -> bool:
        """Note a finished task's peaks (ignored until monitoring is on); True if the category's guess
        changed, so that tasks still waiting may be sized again."""
        if not self.monitoring:
            return False
        category = self.get(name)
        peaks = {r: float(measured[r]) for r in BUCKETS if measured.get(r) is not None}
        category.samples.append(Sample(peaks, float(measured.get("wall_time") or 0.0)))
        category.recorded += 1
        return category.mode != Mode.FIXED and self._update_guess(category)

    def _update_guess(self, category: Category) -> bool:
        """Compute the guess once ``steady_n_tasks`` samples are in, then again every as many more
        (at least ``RECOMPUTE_EVERY``)."""
        if category.recorded < self.steady_n_tasks:
            return False
        if category.guess is not None and category.recorded - category.guessed_at < max(self.steady_n_tasks, RECOMPUTE_EVERY):
            return False
        previous, category.guess, category.guessed_at = category.guess, self._learned(category), category.recorded
        return category.guess != previous

    def record_wall_time(self, name: str, seconds: float, program: str = "") -> None:
        """Note how long a finished task ran (monitoring or not): the category's mean, that fast
        abort rests on, and the mean of its tasks running ``program`` (see ``task_program``), that
        the master's prefetching rests on."""
        self.get(name).wall_times.add(seconds)
        key = (name, program)
        times = self._program_times.get(key)
        if times is None:
            if len(self._program_times) >= PROGRAMS_MAX:
                del self._program_times[next(iter(self._program_times))]  # the longest known
            times = self._program_times[key] = WallTimes()
        times.add(seconds)

    def program_wall_times(self, name: str, program: str) -> "Optional[WallTimes]":
        return self._program_times.get((name, program))

    def wall_times(self, name: str) -> "Optional[WallTimes]":
        category = self._categories.get(name)
        return None if category is None else category.wall_times

    # -- decisions ------------------------------------------------------------------------------
    def fast_abort_after(self, name: str) -> Optional[float]:
        """Seconds after which a running task of ``name`` is stopped and run again; None: never."""
        category = self._categories.get(name)
        if category is None or category.wall_times.count < FAST_ABORT_MIN_SAMPLES:
            return None
        multiplier = category.fast_abort_multiplier
        if multiplier is None:
            multiplier = self.fast_abort_multiplier
        return multiplier * category.wall_times.mean if multiplier >= 1 else None

    def first_allocation(self, name: str, declared: Resources) -> Resources:
        """What a task of category ``name`` that declared ``declared`` gets for its first attempt
        (None: unset; all None: a whole worker)."""
        category = self._categories.get(name)
        if category is None:
            return dict(declared)
        if category.mode == Mode.FIXED:
            return _fixed_allocation(category, declared)
        if category.guess is None:
            return _fill(declared, {**category.max, **category.first_guess})
        return _fill(declared, {**category.max, **category.guess})

    def retries_exhausted_tasks(self, name: str) -> bool:
        category = self._categories.get(name)
        return category is not None and category.mode != Mode.FIXED

    def retry_allocation(self, name: str, declared: Resources) -> Resources:
        """What a task that ran out of its allocation gets for its retry: the category max over what it
        declared, or a whole worker when the category has no max."""
        category = self.get(name)
        if not category.max:
            return {r: None for r in declared}
        return {r: category.max.get(r) for r in declared}

    def set_autolabel(self, name: str, resource: str, autolabel: bool) -> None:
        """Whether ``resource`` of the category's tasks is guessed from their peaks (CCTools'
        ``specify_category_autolabel_resource``; on by default). Off, a task's unset value of it stays
        what it would be in FIXED mode: the category max, else unset."""
        (self.get(name).not_labeled.discard if autolabel else self.get(name).not_labeled.add)(resource)
        category = self.get(name)
        if category.guess is not None:
            category.guess = self._learned(category)

    def _learned(self, category: Category) -> Dict[str, float]:
        learned = {}
        for resource, bucket in BUCKETS.items():
            if resource in category.not_labeled:
                continue
            value = choose(category.mode, _pairs(category.samples, resource), bucket, category.max.get(resource))
            if value is None:
                continue
            value = max(value, category.min.get(resource, 0.0))
            learned[resource] = min(value, category.max.get(resource, math.inf))
        return learned


def choose(mode: Mode, samples: List[tuple], bucket: float, maximum: Optional[float]) -> Optional[float]:
    """The allocation for one resource from (peak, wall time) samples, rounded up to ``bucket``."""
    if not samples:
        return None
    peaks = [(round_up(peak, bucket), time) for peak, time in samples]
    candidates = sorted({peak for peak, _ in peaks})
    top = maximum if maximum is not None else candidates[-1]
    if mode == Mode.MAX:
        return candidates[-1]
    if mode == Mode.MIN_WASTE:
        return min(candidates, key=lambda a: waste(a, top, peaks))
    return max(candidates, key=lambda a: throughput(a, top, peaks))


def waste(allocation: float, top: float, peaks: List[tuple]) -> float:
    """Resource x seconds booked and not used, if every task first got ``allocation``."""
    total = 0.0
    for peak, seconds in peaks:
        booked = allocation if peak <= allocation else allocation + top
        total += (booked - peak) * max(seconds, 1e-3)
    return total


def throughput(allocation: float, top: float, peaks: List[tuple]) -> float:
    """Tasks that succeed per unit booked, if every task first got ``allocation``."""
    fits = sum(1 for peak, _ in peaks if peak <= allocation)
    misses = len(peaks) - fits
    return fits / (len(peaks) * allocation + misses * top)


def round_up(value: float, bucket: float) -> float:
    """``value`` rounded up to a whole number of buckets, at least one."""
    return max(1, math.ceil(value / bucket - 1e-9)) * bucket


def _pairs(samples: Deque[Sample], resource: str) -> List[tuple]:
    return [(s.peaks[resource], s.wall_time) for s in samples if resource in s.peaks]


def _fixed_allocation(category: Category, declared: Resources) -> Resources:
    if category.max and all(v is None for v in declared.values()):
        return {r: category.max.get(r) for r in declared}
    return dict(declared)


def _fill(declared: Resources, defaults: Dict[str, float]) -> Resources:
    """The declared values, with the unset ones taken from ``defaults`` where it has them."""
    return {r: v if v is not None else defaults.get(r) for r, v in declared.items()}


def _set_values(resources: Resources) -> Dict[str, float]:
    return {r: float(v) for r, v in resources.items() if r in RESOURCE_NAMES and v is not None and v >= 0}
