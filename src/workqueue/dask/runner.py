"""``get(dsk, keys, manager=None, **options)``: a Dask scheduler that runs each task on workqueue's
workers, as a function task, with the dependencies resolved on the master.

Ready tasks are sent in batches (one function task runs several Dask tasks in turn) when there
are more of them than cores to run them: a Dask task is often a millisecond of work, less than a
function task's round trip. Inner results come back to the master, as pickled bytes it never
unpickles, and go out again inside the calls of the tasks that need them; each is dropped once
every task that needs it has finished. (Leaving them on the workers needs temporary files, which
workqueue does not have yet.)
"""
from __future__ import annotations

import logging
import math
import os
from contextlib import ExitStack
from typing import Any, Callable, Dict, Hashable, List, Mapping, Optional, Tuple, Union

import cloudpickle
from dask.core import flatten

from ..local import local_workers
from ..manager.api import Manager
from ..pytask import FunctionTaskFailed, PythonTask
from . import remote
from .graph import Alias, Plan, pack, runs_on_master

log = logging.getLogger(__name__)

Key = Hashable
Resources = Union[Mapping[str, float], Callable[[Key], Mapping[str, float]]]

BATCH_MAX = 64  # Dask tasks in one function task at most
SPREAD = 4  # batches per core that the ready tasks are cut into, before BATCH_MAX caps them
IN_FLIGHT_PER_CORE = 8  # function tasks queued or running per core (the rest wait as ready keys)
WAIT = 1.0
CATEGORY = "dask"
DEFAULT_RESOURCES = {"cores": 1}


def get(dsk: Any, keys: Any, manager: Optional[Manager] = None, *, retries: int = 0,
        resources: Optional[Resources] = None, progress: Optional[Callable[[int, int], Any]] = None,
        batch_size: Optional[int] = None, workers: Optional[int] = None, **unknown: Any) -> Any:
    """Compute ``keys`` of the Dask graph ``dsk``: ``dask.compute(x, scheduler=workqueue.dask.get)``.

    - ``manager``: a running ``Manager`` whose workers run the tasks (bind it with
      ``functools.partial(get, manager=m)``); it must have no tasks of its own in flight while
      this runs, since this waits on it. Without one, ``get`` makes a manager on a free port and
      starts ``workers`` local one-core workers (default: one per CPU) for this call only.
    - ``retries``: run a task that raised (or whose worker process died) again, this many times.
    - ``resources``: what each task declares, e.g. ``{"cores": 1, "memory": 500}`` (the default is
      one core), or a function of the task's key returning such a dict.
    - ``progress``: called as ``progress(finished, total)`` each time tasks finish.
    - ``batch_size``: at most this many ready tasks per function task (default 64; 1 sends each
      task on its own).

    A task that raises makes ``get`` raise that exception, with a note naming the task's key.
    """
    if unknown:
        raise TypeError(f"workqueue.dask.get got unknown option(s) {', '.join(sorted(unknown))}")
    options = _Options(retries, resources, progress, batch_size)
    flat = list(flatten([keys]))
    plan = Plan(dsk, flat)
    with ExitStack() as stack:
        manager = _manager(stack, manager, workers)
        stored = _Runner(manager, plan, options).run()
    return pack(keys, {key: cloudpickle.loads(stored[key]) for key in plan.outputs})


def _manager(stack: ExitStack, manager: Optional[Manager], workers: Optional[int]) -> Manager:
    """The manager given, or one made for this call with its local workers (closed with ``stack``)."""
    if manager is not None:
        if not isinstance(manager, Manager):
            raise TypeError(f"workqueue.dask.get: manager must be a workqueue Manager, not {type(manager).__name__}")
        if workers is not None:
            raise TypeError("workqueue.dask.get: workers= starts local workers only for a call without a manager")
        return manager
    count = _count("workers", workers, os.cpu_count() or 1)
    if count < 1:
        raise ValueError("workqueue.dask.get: workers must be at least 1")
    manager = stack.enter_context(Manager(port=0, host="127.0.0.1"))
    stack.enter_context(local_workers(count, manager, cores=1))
    return manager


class _Options:
    def __init__(self, retries: int, resources: Optional[Resources], progress: Optional[Callable[[int, int], Any]],
                 batch_size: Optional[int]) -> None:
        self.retries = _count("retries", retries, 0)
        if resources is None:
            resources = DEFAULT_RESOURCES
        if not (callable(resources) or isinstance(resources, Mapping)):
            raise TypeError(f"workqueue.dask.get: resources must be a dict or a function of the key, "
                            f"not {type(resources).__name__}")
        self.resources = resources
        if progress is not None and not callable(progress):
            raise TypeError(f"workqueue.dask.get: progress must be callable, not {type(progress).__name__}")
        self.progress = progress
        self.batch_max = _count("batch_size", batch_size, BATCH_MAX)
        if self.batch_max < 1:
            raise ValueError("workqueue.dask.get: batch_size must be at least 1")

    def resources_of(self, key: Key) -> Tuple[Tuple[str, float], ...]:
        declared = self.resources(key) if callable(self.resources) else self.resources
        if not isinstance(declared, Mapping):
            raise TypeError(f"workqueue.dask.get: resources({key!r}) returned {type(declared).__name__}, not a dict")
        return tuple(sorted(declared.items()))


def _count(name: str, value: Optional[int], default: int) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"workqueue.dask.get: {name} must be a whole number >= 0, not {value!r}")
    return value


class _Batch:
    """Dask tasks sent together as one function task, and how often they were sent."""

    __slots__ = ("keys", "call", "resources", "attempts")

    def __init__(self, keys: List[Key], call: Tuple[Any, ...], resources: Tuple[Tuple[str, float], ...]) -> None:
        self.keys = keys
        self.call = call
        self.resources = resources
        self.attempts = 0


class _Runner:
    def __init__(self, manager: Manager, plan: Plan, options: _Options) -> None:
        if not manager.empty():
            raise ValueError("workqueue.dask.get: the manager has tasks of its own in flight; get() waits on "
                             "the manager and needs it to itself while it runs")
        self.manager = manager
        self.plan = plan
        self.options = options
        self.stored: Dict[Key, bytes] = {}
        self.in_flight: Dict[int, _Batch] = {}

    def run(self) -> Dict[Key, bytes]:
        try:
            while True:
                self._submit_ready()
                if self.plan.complete:
                    return self.stored
                task = self.manager.wait(WAIT)
                if task is not None:
                    self._collect(task)
        finally:
            for task_id in list(self.in_flight):
                self.manager.cancel(task_id)

    def _submit_ready(self) -> None:
        cores = max(1, int(self.manager.stats.get("total_cores") or 0))
        while self.plan.ready and len(self.in_flight) < cores * IN_FLIGHT_PER_CORE:
            size = min(self.options.batch_max, max(1, math.ceil(len(self.plan.ready) / (cores * SPREAD))))
            groups: Dict[Tuple[Tuple[str, float], ...], List[Key]] = {}
            for key in self.plan.take(size):
                if runs_on_master(self.plan.nodes[key]):
                    self._evaluate_here(key)
                else:
                    groups.setdefault(self.options.resources_of(key), []).append(key)
            for declared, keys in groups.items():
                self._send(_Batch(keys, self._call(keys), declared))

    def _evaluate_here(self, key: Key) -> None:
        node = self.plan.nodes[key]
        if isinstance(node, Alias):
            self._store(key, self.stored[node.target])
        else:
            self._store(key, _pickled(key, node()))
        self._report()

    def _call(self, keys: List[Key]) -> Tuple[Any, ...]:
        tasks = [(key, self.plan.nodes[key]) for key in keys]
        inputs = {dependency: self.stored[dependency]
                  for key in keys for dependency in self.plan.nodes[key].dependencies}
        return (remote.run, tasks, inputs)

    def _send(self, batch: _Batch) -> None:
        try:
            task = PythonTask(*batch.call)
        except Exception as error:
            raise _unpicklable_task(batch.call[1], error) from error
        task.set_resources(**dict(batch.resources))
        task.set_category(CATEGORY)
        batch.attempts += 1
        self.in_flight[self.manager.submit(task)] = batch

    def _collect(self, task: PythonTask) -> None:
        batch = self.in_flight.pop(task.id, None)
        if batch is None:
            log.warning("workqueue.dask.get: task %s is not one of this graph's; it is dropped", task.id)
            return
        outcome = task.output
        if task.succeeded:
            for key, data in outcome.items():
                self._store(key, data)
            self._report()
            return
        if not isinstance(outcome, BaseException):
            outcome = FunctionTaskFailed(f"function task {task.id} failed: {task.result.name}")
        if batch.attempts <= self.options.retries:
            log.info("workqueue.dask.get: retrying %s after %r", batch.keys, outcome)
            self._send(batch)
            return
        if isinstance(outcome, FunctionTaskFailed):
            remote.name(outcome, f"while running Dask task(s) {_some(batch.keys)}")
        raise outcome

    def _store(self, key: Key, data: bytes) -> None:
        self.stored[key] = data
        for unneeded in self.plan.finish(key):
            del self.stored[unneeded]

    def _report(self) -> None:
        if self.options.progress is not None:
            self.options.progress(self.plan.finished, self.plan.total)


def _pickled(key: Key, value: Any) -> bytes:
    try:
        return cloudpickle.dumps(value)
    except Exception as error:
        raise remote.UnpicklableResult(f"the value of Dask key {key!r} cannot be pickled to go to a worker: "
                                       f"{type(error).__name__}: {error}") from error


def _unpicklable_task(tasks: List[Tuple[Key, Any]], error: Exception) -> TypeError:
    """Which of the batch's tasks could not be pickled, named."""
    for key, node in tasks:
        try:
            cloudpickle.dumps(node)
        except Exception as culprit:
            return TypeError(f"Dask task {key!r} cannot be pickled to go to a worker: "
                             f"{type(culprit).__name__}: {culprit}")
    return TypeError(f"the inputs of Dask task(s) {_some([key for key, _ in tasks])} cannot be pickled: "
                     f"{type(error).__name__}: {error}")


def _some(keys: List[Key], shown: int = 5) -> str:
    named = ", ".join(map(repr, keys[:shown]))
    return named + (f" and {len(keys) - shown} more" if len(keys) > shown else "")
