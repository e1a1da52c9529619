"""``get(dsk, keys, manager=None, **options)``: a Dask scheduler that runs each task on workqueue's
workers, as a function task, with the dependencies resolved on the master.

Ready tasks are sent in batches (one function task runs several Dask tasks in turn) when there
are more of them than cores to run them: a Dask task is often a millisecond of work, less than a
function task's round trip. Inner results stay on the workers as temporary files, the tasks that
need them reading them there (fetched from peers), and are pruned once every task that needs them
has finished; only the requested keys come back (DaskVine's ``worker_transfers``). Small results
come back too, and go out again inside the calls that need them: see ``results``.
"""
from __future__ import annotations

import logging
import math
import os
from contextlib import ExitStack
from typing import Any, Callable, Dict, Hashable, List, Mapping, Optional, Tuple, Union

import cloudpickle
from dask.core import flatten

from ..files import File
from ..local import local_workers
from ..manager.api import Manager
from ..pytask import FunctionTaskFailed, PythonTask
from . import remote
from .graph import Alias, Plan, pack, runs_on_master
from .results import INLINE_MAX, Results

log = logging.getLogger(__name__)

Key = Hashable
Resources = Union[Mapping[str, float], Callable[[Key], Mapping[str, float]]]

BATCH_MAX = 64  # Dask tasks in one function task at most
SPREAD = 4  # batches per core that the ready tasks are cut into, before BATCH_MAX caps them
IN_FLIGHT_PER_CORE = 8  # function tasks queued or running per core (the rest wait as ready keys)
PROBE_BATCH = 4  # Dask tasks in one function task at most while their group's result sizes are unknown
WAIT = 1.0
CATEGORY = "dask"
DEFAULT_RESOURCES = {"cores": 1}


def get(dsk: Any, keys: Any, manager: Optional[Manager] = None, *, retries: int = 0,
        resources: Optional[Resources] = None, progress: Optional[Callable[[int, int], Any]] = None,
        batch_size: Optional[int] = None, workers: Optional[int] = None, worker_transfers: Optional[bool] = None,
        inline_max: int = INLINE_MAX, **unknown: Any) -> Any:
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
    - ``worker_transfers`` (default True; ``lazy_transfers`` is DaskVine's older name for it):
      results of inner keys stay on the workers as temporary files, pruned when no task needs them
      any more, and only the requested keys come back. False: every result comes back to the master
      and goes out again to the tasks that need it (one of more than 64 MiB cannot).
    - ``inline_max``: with worker transfers, a result that pickles to at most this many bytes
      (default 64 KiB) comes back with its task all the same, and reaches the tasks that need it in
      their calls: cheaper than a file for a small value. 0: every result stays on the workers.

    A task that raises makes ``get`` raise that exception, with a note naming the task's key.
    """
    worker_transfers = _transfers(worker_transfers, unknown)
    if unknown:
        raise TypeError(f"workqueue.dask.get got unknown option(s) {', '.join(sorted(unknown))}")
    options = _Options(retries, resources, progress, batch_size)
    inline_max = _count("inline_max", inline_max, INLINE_MAX)
    flat = list(flatten([keys]))
    plan = Plan(dsk, flat)
    with ExitStack() as stack:
        manager = _manager(stack, manager, workers)
        stored = _Runner(manager, plan, options, Results(manager, worker_transfers, inline_max)).run()
    return pack(keys, {key: cloudpickle.loads(stored[key]) for key in plan.outputs})


def _transfers(worker_transfers: Optional[bool], unknown: Dict[str, Any]) -> bool:
    """``worker_transfers``, or DaskVine's older ``lazy_transfers``; True unless one says otherwise."""
    lazy = unknown.pop("lazy_transfers", None)
    if worker_transfers is not None and lazy is not None and bool(lazy) != bool(worker_transfers):
        raise TypeError("workqueue.dask.get: worker_transfers and lazy_transfers (its older name) disagree")
    chosen = worker_transfers if worker_transfers is not None else lazy
    return True if chosen is None else bool(chosen)


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
    """Dask tasks sent together as one function task, its temporary inputs and outputs, and how often
    it was sent."""

    __slots__ = ("keys", "call", "resources", "inputs", "outputs", "attempts")

    def __init__(self, keys: List[Key], resources: Tuple[Tuple[str, float], ...]) -> None:
        self.keys = keys
        self.resources = resources
        self.call: Tuple[Any, ...] = ()
        self.inputs: List[File] = []
        self.outputs: Dict[Key, File] = {}
        self.attempts = 0


class _Runner:
    def __init__(self, manager: Manager, plan: Plan, options: _Options, results: Results) -> None:
        if not manager.empty():
            raise ValueError("workqueue.dask.get: the manager has tasks of its own in flight; get() waits on "
                             "the manager and needs it to itself while it runs")
        self.manager = manager
        self.plan = plan
        self.options = options
        self.results = results
        self.in_flight: Dict[int, _Batch] = {}

    def run(self) -> Dict[Key, bytes]:
        """The requested keys' pickled results."""
        try:
            while True:
                self._submit_ready()
                if self.plan.complete:
                    return {key: self.results.pickled(key) for key in self.plan.outputs}
                task = self.manager.wait(WAIT)
                if task is not None:
                    self._collect(task)
        finally:
            for task_id in list(self.in_flight):
                self.manager.cancel(task_id)
            self.results.close()

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
                self._send_batches(keys, declared)

    def _send_batches(self, keys: List[Key], declared: Tuple[Tuple[str, float], ...]) -> None:
        """Keys whose group has had a result too large to come back go one per task; keys of a group
        none of whose results has come back yet, PROBE_BATCH per task (each needs a file until one
        has, and a file costs more than a tiny task: the first tasks in flight stay few); the rest
        together."""
        together, unknown = [], []
        for key in keys:
            if self.results.is_large(key):
                self._send(self._batch([key], declared))
            elif self.results.size_known(key):
                together.append(key)
            else:
                unknown.append(key)
        for start in range(0, len(unknown), PROBE_BATCH):
            self._send(self._batch(unknown[start:start + PROBE_BATCH], declared))
        if together:
            self._send(self._batch(together, declared))

    def _evaluate_here(self, key: Key) -> None:
        node = self.plan.nodes[key]
        if isinstance(node, Alias):
            self.results.alias(key, node.target)
        else:
            self.results.finished(key, _pickled(key, node()))
        self._finish(key)
        self._report()

    def _batch(self, keys: List[Key], declared: Tuple[Tuple[str, float], ...]) -> _Batch:
        batch = _Batch(keys, declared)
        tasks = [(key, self.plan.nodes[key]) for key in keys]
        dependencies = {dependency: None for key in keys for dependency in self.plan.nodes[key].dependencies}
        inline, names, batch.inputs = self.results.inputs_for(dependencies)
        outputs = self.results.outputs_for(keys)
        if outputs is None:
            batch.call = (remote.run, tasks, inline)
            return batch
        batch.outputs = outputs
        batch.call = (remote.run, tasks, inline, names, {key: f.remote for key, f in outputs.items()},
                      self.results.inline_max)
        return batch

    def _send(self, batch: _Batch) -> None:
        try:
            task = PythonTask(*batch.call)
        except Exception as error:
            raise _unpicklable_task(batch.call[1], error) from error
        for f in batch.inputs:
            task.add_input(f)
        for f in batch.outputs.values():
            task.add_output(f)
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
                self.results.finished(key, data)
                if data is None and key in self.plan.outputs:
                    self.results.pickled(key)  # fetched while its worker is sure to be there
                self._finish(key)
            self._report()
            return
        if isinstance(outcome, remote.TooLargeToReturn):
            log.info("workqueue.dask.get: the result of %r is %d bytes, too large to come back: its group's "
                     "tasks go one at a time, with files if they can", outcome.key, outcome.size)
            self.results.too_large(outcome.key)
            self._send_batches(batch.keys, batch.resources)
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

    def _finish(self, key: Key) -> None:
        self.results.drop(self.plan.finish(key))

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
