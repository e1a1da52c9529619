"""Keep a pool of workers alive on a batch system, sized to what a master has to do.

Each cycle (``step``) asks the master for its waiting and running tasks, forgets jobs that ended,
submits workers up to ``min(max_workers, max(min_workers, tasks / tasks per worker))`` (at most
``workers_per_cycle`` at a time) and cancels the surplus when the queue drains: pending jobs first,
then at most as many running jobs as the master has idle workers, so a busy worker is not taken from
under its task. ``stop`` cancels everything it submitted.

A factory never sticks: a job whose state cannot be learned keeps its last known state, a failed
query or submission is logged once when things go wrong and once when they recover, and while the
master does not answer, submissions back off (``interval`` doubling up to ``BACKOFF_LONGEST``)
instead of replacing the minimum every cycle.
"""
from __future__ import annotations

import logging
import math
import threading
import time
from typing import Any, Dict, List, Optional, Tuple

from . import batch, status
from .factory_config import ConfigFile
from .wire.auth import read_password_file

logger = logging.getLogger(__name__)

BACKOFF_LONGEST = 300.0  # seconds between submissions while the master stays unreachable


def _host_port(text: Optional[str]) -> Tuple[Optional[str], Optional[int]]:
    if not text:
        return None, None
    host, _, port = text.rpartition(":")
    return (host or "localhost"), int(port)


class Backoff:
    """Delays that double from ``first`` to ``longest`` while something keeps failing. Pure: the
    caller passes the time."""

    def __init__(self, first: float, longest: float = BACKOFF_LONGEST) -> None:
        self.first, self.longest = first, longest
        self.delay = first
        self.until = 0.0

    def ready(self, now: float) -> bool:
        return now >= self.until

    def wait(self, now: float) -> float:
        """Hold off from ``now`` for the current delay, and double the next; returns the delay."""
        delay = self.delay
        self.until = now + delay
        self.delay = min(self.longest, max(self.first, delay * 2))
        return delay

    def reset(self) -> None:
        self.delay, self.until = self.first, 0.0


class Conditions:
    """What is wrong, by topic; logs a line only when a topic goes wrong or comes right again."""

    def __init__(self) -> None:
        self.problems: Dict[str, str] = {}

    def wrong(self, topic: str, why: str) -> None:
        if topic not in self.problems:
            logger.warning("factory: %s", why)
        self.problems[topic] = why

    def right(self, topic: str, news: str) -> None:
        if self.problems.pop(topic, None) is not None:
            logger.warning("factory: %s", news)


class Factory:
    """Workers of ``batch_type`` for the master at ``manager_host_port`` (or the one named ``manager_name``).

    Attributes ``min_workers``, ``max_workers``, ``workers_per_cycle``, ``tasks_per_worker``,
    ``cores``, ``memory``, ``disk``, ``gpus``, ``timeout``, ``password_file``, ``extra_worker_options``,
    ``extra_batch_options``, ``env``, ``interval`` and ``factory_timeout`` may be set after
    construction (CCTools style); a ``config_file`` (CCTools' JSON keys) is read again whenever it changes.
    """

    def __init__(self, batch_type: str = "local", manager_host_port: Optional[str] = "localhost:9123",
                 manager_name: Optional[str] = None, *, min_workers: int = 1, max_workers: int = 10,
                 workers_per_cycle: int = 5, tasks_per_worker: Optional[float] = None,
                 cores: Optional[float] = batch.base.DEFAULT_CORES, memory: Optional[int] = None,
                 disk: Optional[int] = None, gpus: Optional[int] = None, timeout: float = 900,
                 password_file: Optional[str] = None, extra_worker_options: str = "", extra_batch_options: str = "",
                 interval: float = 5.0, query_timeout: float = 2.0, catalog: Optional[str] = None,
                 factory_timeout: Optional[float] = None, config_file: Optional[str] = None, use_capacity: bool = False,
                 batch_options: Optional[Dict[str, Any]] = None, **spec_fields: Any) -> None:
        self.batch_type = batch_type
        self.manager_name = manager_name
        self.host, self.port = (None, None) if manager_name else _host_port(manager_host_port)
        self.min_workers, self.max_workers = min_workers, max_workers
        self.workers_per_cycle, self.tasks_per_worker = workers_per_cycle, tasks_per_worker
        self.cores, self.memory, self.disk, self.gpus, self.timeout = cores, memory, disk, gpus, timeout
        self.password_file = password_file
        self.extra_worker_options, self.extra_batch_options = extra_worker_options, extra_batch_options
        self.interval, self.query_timeout = interval, query_timeout
        self.catalog, self.factory_timeout = catalog, factory_timeout
        self.use_capacity = use_capacity  # cap the pool at the master's capacity_weighted (CCTools' -c)
        self.spec_fields = spec_fields  # more WorkerSpec fields: env, workdir, worker_binary, wrapper, worker_flags
        self.config = ConfigFile(config_file) if config_file else None
        self.system = batch.get(batch_type, **(batch_options or {}))
        self.jobs: Dict[str, str] = {}  # job id -> last known state
        self.conditions = Conditions()
        self.backoff = Backoff(interval)
        self.unreachable_since: Optional[float] = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    # -- what the workers are started with --------------------------------------------------------
    def spec(self) -> batch.WorkerSpec:
        return batch.WorkerSpec(
            host=self.host, port=self.port, manager_name=self.manager_name, timeout=self.timeout,
            cores=self.cores, memory=self.memory, disk=self.disk, gpus=self.gpus, password_file=self.password_file,
            extra_worker_options=self.extra_worker_options, extra_batch_options=self.extra_batch_options,
            **self.spec_fields)

    def _address(self) -> Optional[Tuple[str, int]]:
        if self.host is not None and self.port is not None:
            return self.host, self.port
        if self.manager_name:
            from . import catalog
            found = catalog.lookup(self.manager_name, self.catalog)
            if found:
                return found[0][1], found[0][2]
        return None

    def _queue(self) -> Tuple[Optional[Dict[str, Any]], str]:
        """The master's queue figures, or None and why not."""
        address = self._address()
        if address is None:
            return None, f"no master named {self.manager_name!r} in the catalog"
        try:
            password = read_password_file(self.password_file) if self.password_file else None
            return status.query(address[0], address[1], "queue", self.query_timeout, password), ""
        except (TimeoutError, ConnectionError, PermissionError, OSError) as error:
            return None, str(error)

    # -- one cycle ------------------------------------------------------------------------------
    def target(self, queue: Optional[Dict[str, Any]]) -> int:
        """How many workers to keep: enough for the tasks to do, within [min_workers, max_workers].
        Without word from the master: what it has, or the minimum."""
        if queue is None:
            return max(self.min_workers, 0) if not self.jobs else len(self.jobs)
        tasks = int(queue.get("tasks_waiting") or 0) + int(queue.get("tasks_running") or 0)
        per_worker = self.tasks_per_worker or max(1.0, float(self.cores or 1))
        wanted = math.ceil(tasks / per_worker)
        if self.use_capacity:
            wanted = min(wanted, self._capacity_workers(queue, per_worker))
        return max(self.min_workers, min(self.max_workers, wanted))

    def _capacity_workers(self, queue: Dict[str, Any], per_worker: float) -> float:
        """The workers the master estimates it could keep busy (``estimate_capacity``); no cap while
        it makes no estimate."""
        capacity = float(queue.get("capacity_weighted") or 0)
        if capacity <= 0:
            self.conditions.wrong("capacity", "the master makes no capacity estimate (it has not called "
                                              "estimate_capacity, or no task has finished yet): --capacity does not cap the pool")
            return math.inf
        self.conditions.right("capacity", "the master's capacity estimate caps the pool")
        return math.ceil(capacity / per_worker)

    def step(self) -> int:
        """One cycle: refresh job states, then submit or cancel toward the target. Returns the target."""
        with self._lock:
            self.backoff.first = self.interval
            if self.config is not None:
                self.config.apply(self)
            self._refresh()
            queue, why = self._queue()
            self._note_master(queue, why)
            want = self.target(queue)
            have = len(self.jobs)
            if have < want:
                self._grow(want - have, master_answers=queue is not None)
            elif have > want and queue is not None:
                self._shrink(have - want, int(queue.get("workers_idle") or 0))
            return want

    def _note_master(self, queue: Optional[Dict[str, Any]], why: str) -> None:
        where = self.manager_name or f"{self.host}:{self.port}"
        if queue is not None:
            self.unreachable_since = None
            self.backoff.reset()
            self.conditions.right("master", f"the master {where} answers again")
            return
        if self.unreachable_since is None:
            self.unreachable_since = time.monotonic()
        self.conditions.wrong("master", f"the master {where} does not answer ({why}); submissions back off "
                                        f"from {self.interval:g} s to {self.backoff.longest:g} s apart")

    def _grow(self, missing: int, master_answers: bool) -> None:
        now = time.monotonic()
        if not self.backoff.ready(now):
            return
        count = min(missing, self.workers_per_cycle) if self.workers_per_cycle > 0 else missing
        try:
            ids = self.system.submit(count, self.spec())
        except (batch.BatchError, OSError, RuntimeError) as error:
            self.conditions.wrong("submit", f"submitting workers failed: {error}; trying again later")
            self.backoff.wait(now)
            return
        self.conditions.right("submit", "submitting workers works again")
        self.jobs.update((job_id, "pending") for job_id in ids)
        logger.info("factory: submitted %d worker(s) (%d -> %d)", len(ids), len(self.jobs) - len(ids), len(self.jobs))
        if not master_answers:
            self.backoff.wait(now)  # the master is away: do not replace these every cycle

    def _refresh(self) -> None:
        if not self.jobs:
            return
        try:
            states = self.system.states(list(self.jobs))
        except Exception as error:  # a back end's bug or a dead daemon must not stop the cycle
            self.conditions.wrong("states", f"cannot learn the state of its jobs ({error}); keeping what it knew")
            return
        self.conditions.right("states", "learns the state of its jobs again")
        for job_id, state in states.items():
            if state == "done":
                self.jobs.pop(job_id, None)
            elif job_id in self.jobs:
                self.jobs[job_id] = state

    def _shrink(self, surplus: int, idle: int) -> None:
        pending = [j for j, s in self.jobs.items() if s == "pending"][:surplus]
        running = [j for j, s in self.jobs.items() if s != "pending"][:max(0, min(surplus - len(pending), idle))]
        doomed = pending + running
        if doomed:
            try:
                self.system.cancel(doomed)
            except batch.BatchError as error:
                logger.warning("factory: cancelling surplus workers failed: %s", error)
                return
            for job_id in doomed:
                self.jobs.pop(job_id, None)
            logger.info("factory: canceled %d surplus worker(s)", len(doomed))

    def timed_out(self) -> bool:
        """True once the master has been unreachable for ``factory_timeout`` seconds (if set)."""
        return bool(self.factory_timeout) and self.unreachable_since is not None and \
            time.monotonic() - self.unreachable_since >= self.factory_timeout

    # -- running it ------------------------------------------------------------------------------
    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.step()
            except Exception:
                logger.exception("factory cycle failed")
            if self.timed_out():
                logger.warning("factory: no master for %g s (--factory-timeout): stopping", self.factory_timeout)
                return
            self._stop.wait(self.interval)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> "Factory":
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name="workqueue-factory", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop cycling and cancel every job this factory submitted."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        with self._lock:
            ids: List[str] = list(self.jobs)
            if ids:
                self.system.cancel(ids)
            self.jobs.clear()

    def __enter__(self) -> "Factory":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
