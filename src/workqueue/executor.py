"""``concurrent.futures`` over a queue: ``Executor().submit(fn, *args)`` returns a Future."""
from __future__ import annotations

import concurrent.futures
import threading
from typing import Any, Callable, Dict, Optional

from .local import LocalWorkers
from .manager.api import Manager, ManagerLoopStopped
from .pytask import PythonTask
from .task import Task


class TaskFuture(concurrent.futures.Future):
    """A Future whose ``cancel()`` also removes (or kills) its task."""

    def __init__(self, executor: "Executor", task: Task) -> None:
        super().__init__()
        self.task = task
        self._executor = executor

    def cancel(self) -> bool:
        if self.done():
            return False
        self._executor._cancel(self)
        return super().cancel()


class Executor(concurrent.futures.Executor):
    """Runs functions (or ready-made Tasks) on workers; results arrive in the background.

    ``Executor()`` makes its own manager on a free port and, with ``workers=N``, starts N local
    workers; ``Executor(manager)`` uses yours. Usable from a notebook while other cells run.
    """

    def __init__(self, manager: Optional[Manager] = None, *, workers: int = 0, cores: float = 1,
                 worker_options: Optional[Dict[str, Any]] = None, **manager_options: Any) -> None:
        self._owns_manager = manager is None
        self.manager = manager or Manager(manager_options.pop("port", 0), **manager_options)
        self._cores = cores
        self._workers: Optional[LocalWorkers] = None
        if workers:
            self._workers = LocalWorkers(workers, self.manager.port, cores=cores, **(worker_options or {})).start()
        self._futures: Dict[int, TaskFuture] = {}
        self._lock = threading.Lock()
        self._shutdown = False
        self._thread = threading.Thread(target=self._collect, name="workqueue-executor", daemon=True)
        self._thread.start()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> TaskFuture:
        if self._shutdown:
            raise RuntimeError("cannot submit after shutdown")
        task = fn if isinstance(fn, Task) else PythonTask(fn, *args, **kwargs)
        if isinstance(task, PythonTask) and all(v is None for v in task.resources.values()):
            task.set_resources(cores=self._cores)
        future = TaskFuture(self, task)
        with self._lock:
            task_id = self.manager.submit(task)
            self._futures[task_id] = future
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._shutdown = True
        if cancel_futures:
            for future in list(self._futures.values()):
                future.cancel()
        if wait:
            concurrent.futures.wait(list(self._futures.values()))
        self._stop()

    def _repr_html_(self) -> str:
        from .web.notebook import executor_html
        return executor_html(self)

    def _collect(self) -> None:
        while not (self._shutdown and not self._futures):
            try:
                task = self.manager.wait(0.1)
            except ManagerLoopStopped as stopped:
                self._fail_all(stopped)
                return
            if task is None:
                continue
            with self._lock:
                future = self._futures.pop(task.id, None)
            if future is not None and not future.cancelled():
                _resolve(future, task)

    def _fail_all(self, error: BaseException) -> None:
        """The manager can run nothing more (its submit raises too): every pending future gets ``error``."""
        with self._lock:
            pending, self._futures = list(self._futures.values()), {}
        for future in pending:
            if not future.cancelled():
                future.set_exception(error)

    def _cancel(self, future: TaskFuture) -> None:
        with self._lock:
            self._futures.pop(future.task.id, None)
        self.manager.cancel(future.task.id)

    def _stop(self) -> None:
        self._thread.join(timeout=5)
        if self._workers is not None:
            self._workers.stop()
        if self._owns_manager:
            self.manager.close()


def _resolve(future: concurrent.futures.Future, task: Task) -> None:
    if isinstance(task, PythonTask):
        value = task.output
        if isinstance(value, BaseException):
            future.set_exception(value)
        else:
            future.set_result(value)
    else:
        future.set_result(task)
