"""Keep a pool of workers alive on a batch system, sized to what a master has to do.

Each cycle (``step``) asks the master for its waiting and running tasks, forgets jobs that ended,
submits workers up to ``min(max_workers, max(min_workers, tasks))`` and cancels the surplus when the
queue drains: pending jobs first, then at most as many running jobs as the master has idle workers,
so a busy worker is not taken from under its task. ``stop`` cancels everything it submitted.
"""
from __future__ import annotations

import logging
import threading
from typing import Any, Dict, List, Optional, Tuple

from . import batch, status
from .auth import read_password_file

logger = logging.getLogger(__name__)


def _host_port(text: Optional[str]) -> Tuple[Optional[str], Optional[int]]:
    if not text:
        return None, None
    host, _, port = text.rpartition(":")
    return (host or "localhost"), int(port)


class Factory:
    """Workers of ``batch_type`` for the master at ``manager_host_port`` (or the one named ``manager_name``).

    Attributes ``min_workers``, ``max_workers``, ``cores``, ``memory``, ``disk``, ``timeout``,
    ``password_file``, ``extra_worker_options``, ``extra_batch_options`` and ``interval`` may be set
    after construction (CCTools style), before ``start()`` / ``with factory:``.
    """

    def __init__(self, batch_type: str = "local", manager_host_port: Optional[str] = "localhost:9123",
                 manager_name: Optional[str] = None, *, min_workers: int = 1, max_workers: int = 10,
                 cores: Optional[float] = None, memory: Optional[int] = None, disk: Optional[int] = None,
                 timeout: float = 900, password_file: Optional[str] = None, extra_worker_options: str = "",
                 extra_batch_options: str = "", interval: float = 5.0, query_timeout: float = 2.0,
                 batch_options: Optional[Dict[str, Any]] = None) -> None:
        self.batch_type = batch_type
        self.manager_name = manager_name
        self.host, self.port = (None, None) if manager_name else _host_port(manager_host_port)
        self.min_workers, self.max_workers = min_workers, max_workers
        self.cores, self.memory, self.disk, self.timeout = cores, memory, disk, timeout
        self.password_file = password_file
        self.extra_worker_options, self.extra_batch_options = extra_worker_options, extra_batch_options
        self.interval, self.query_timeout = interval, query_timeout
        self.system = batch.get(batch_type, **(batch_options or {}))
        self.jobs: Dict[str, str] = {}  # job id -> last known state
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    # -- what the workers are started with --------------------------------------------------------
    def spec(self) -> batch.WorkerSpec:
        return batch.WorkerSpec(
            host=self.host, port=self.port, manager_name=self.manager_name, timeout=self.timeout,
            cores=self.cores, memory=self.memory, disk=self.disk, password_file=self.password_file,
            extra_worker_options=self.extra_worker_options, extra_batch_options=self.extra_batch_options)

    def _address(self) -> Optional[Tuple[str, int]]:
        if self.host is not None and self.port is not None:
            return self.host, self.port
        if self.manager_name:
            from . import catalog
            found = catalog.lookup(self.manager_name)
            if found:
                return found[0][1], found[0][2]
        return None

    def _queue(self) -> Optional[Dict[str, Any]]:
        address = self._address()
        if address is None:
            logger.warning("no master named %r in the catalog", self.manager_name)
            return None
        try:
            password = read_password_file(self.password_file) if self.password_file else None
            return status.query(address[0], address[1], "queue", self.query_timeout, password)
        except (TimeoutError, ConnectionError, PermissionError) as error:
            logger.warning("factory: %s", error)
            return None

    # -- one cycle ------------------------------------------------------------------------------
    def target(self, queue: Optional[Dict[str, Any]]) -> int:
        """How many workers to keep: the tasks to do, within [min_workers, max_workers]."""
        if queue is None:
            return max(self.min_workers, 0) if not self.jobs else len(self.jobs)
        tasks = int(queue.get("tasks_waiting") or 0) + int(queue.get("tasks_running") or 0)
        return max(self.min_workers, min(self.max_workers, tasks))

    def step(self) -> int:
        """One cycle: refresh job states, then submit or cancel toward the target. Returns the target."""
        with self._lock:
            self._refresh()
            queue = self._queue()
            want = self.target(queue)
            have = len(self.jobs)
            if have < want:
                ids = self.system.submit(want - have, self.spec())
                self.jobs.update((job_id, "pending") for job_id in ids)
                logger.info("factory: submitted %d worker(s) (%d -> %d)", len(ids), have, want)
            elif have > want and queue is not None:
                self._shrink(have - want, int(queue.get("workers_idle") or 0))
            return want

    def _refresh(self) -> None:
        if not self.jobs:
            return
        states = self.system.states(list(self.jobs))
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
            self.system.cancel(doomed)
            for job_id in doomed:
                self.jobs.pop(job_id, None)
            logger.info("factory: canceled %d surplus worker(s)", len(doomed))

    # -- running it ------------------------------------------------------------------------------
    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.step()
            except Exception:
                logger.exception("factory cycle failed")
            self._stop.wait(self.interval)

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
