"""The tasks on a worker: queued (inputs staged, waiting for resources), running (a process of their
own, or a call in a pooled process), and reported; what they hold of the worker's resources; their
limits; their outputs and results on their way back to the master."""
from __future__ import annotations

import contextlib
import logging
import math
import os
import time
from typing import (
    Any,
    Callable,
    ContextManager,
    Dict,
    List,
    Optional,
    Set,
    Tuple,
    Union,
)

import cloudpickle
import msgpack

from ..constants import Result
from ..data.cache import Cache
from ..data.inline_files import Budget, read_output
from ..data.transfer import FileSource
from ..pytask import FunctionTaskFailed
from ..ratelimit import LimitedLog
from ..wire import protocol
from .coprocess import CoprocessPool
from .gpus import GpuAllocator, worker_device_ids
from .pyfunc import FunctionPool
from .sandbox import Sandbox, SandboxDirs
from .session import Session
from .temps import keep_temps

log = logging.getLogger("workqueue.worker")

Pool = Union[FunctionPool, CoprocessPool]
ALLOCATIONS_REMEMBERED = 1024
# Tasks waiting here at most; each holds a directory. A master queues at most 256 ahead on a worker
# (scheduler.QUEUED_MAX) beyond the ones that fit, so this is reached only by a broken master.
QUEUED_MAX = 4096
WhyMissing = Callable[[Sandbox, str], Tuple[Result, str]]


class TaskRunner:
    """Starts tasks in arrival order while they fit the worker's resources (the master's scheduler
    books them the same way), and reports each one once it has ended."""

    def __init__(self, workspace: str, resources: Dict[str, float], cache: Cache,
                 coprocesses: Optional[CoprocessPool] = None, complain: Optional[LimitedLog] = None) -> None:
        self.workspace = workspace
        self.complain = complain or LimitedLog(log)
        self.resources = resources
        self.cache = cache
        self.dirs = SandboxDirs(workspace)
        self.base_env = dict(os.environ)  # copied once: reading os.environ decodes every variable
        self.running: Dict[int, Sandbox] = {}
        self.queued: List[Sandbox] = []  # prefetched: inputs staged, waiting for resources
        self.free: Dict[str, float] = dict(resources)
        self.by_pidfd: Dict[int, Sandbox] = {}
        self.functions: Optional[FunctionPool] = None
        self.coprocesses = coprocesses
        self.last_activity = time.monotonic()
        self.tasks_done = 0
        self.reported: List[Sandbox] = []  # finished and reported: emptied once the results have gone
        self._allocations_seen: Set[Tuple] = set()  # allocations already found bookable here
        self.gpus = GpuAllocator(worker_device_ids(self.base_env.get("CUDA_VISIBLE_DEVICES"),
                                                   int(resources.get("gpus", 0))))

    def pools(self) -> Tuple[Optional[Pool], Optional[Pool]]:
        return self.functions, self.coprocesses

    def calls_batched(self) -> ContextManager[None]:
        """Function calls started while handling one round of events reach each pooled process
        in one write (see :meth:`FunctionPool.batch`)."""
        return self.functions.batch() if self.functions is not None else contextlib.nullcontext()

    def accept(self, session: Session, task: Dict[str, Any], call_payload: bytes, why_missing: WhyMissing) -> None:
        """A task from the master: staged and queued, or reported at once if it cannot run here
        (an input missing, or something in the task itself this worker refuses)."""
        self.last_activity = time.monotonic()
        sandbox: Optional[Sandbox] = None
        staged: List[str] = []
        try:
            if len(self.queued) >= QUEUED_MAX:
                self._refuse(session, task, ValueError(f"{len(self.queued)} tasks are waiting here already"))
                return
            try:
                sandbox = Sandbox(self.dirs, task, call_payload, self.cache)
            except Exception as error:
                self._refuse(session, task, error)
                return
            try:
                problem = self._booking_problem(sandbox.allocation)
            except TypeError as error:  # an amount that cannot even be hashed
                problem = f"its resources: {error}"
            if problem is not None:
                self.fail(session, sandbox, problem)
                return
            try:
                missing = sandbox.stage(self.cache)
            except Exception as error:
                staged = list(sandbox.linked)
                self.fail(session, sandbox, f"could not stage its inputs: {error}")
                return
            staged = list(sandbox.linked)
            if missing is None:
                self.queued.append(sandbox)
                return
            result, why = why_missing(sandbox, missing)
            self.report(session, sandbox, result, -1, {}, why.encode())
        finally:
            if sandbox is None or sandbox not in self.queued:
                self._unawait(task, staged)

    def _unawait(self, task: Dict[str, Any], staged: List[str]) -> None:
        """The files sent for a task that will not run here, and that it did not stage, may go."""
        inputs = task.get("inputs")
        for item in inputs if type(inputs) is list else ():
            digest = item[0] if type(item) is list and item and type(item[0]) is str else ""
            if digest in staged:
                staged.remove(digest)
            elif digest and self.cache.has(digest):
                self.cache.not_awaited(digest, keep=item[3] is True if len(item) > 3 else False)

    def refuse_undecodable(self, session: Session, frames: List[Any], error: Exception) -> None:
        """A message that did not decode but says it is a task, and which: report that task failed,
        so that its master does not wait for it for ever."""
        header = _header_fields(frames)
        if header.get("t") == "task":
            self._refuse(session, {"task_id": header.get("task_id"), "attempt": header.get("attempt", 1)}, error)

    def _refuse(self, session: Session, task: Dict[str, Any], error: Exception) -> None:
        """A task too broken for a sandbox: reported if it says which task it is, else dropped."""
        task_id, attempt = task.get("task_id"), task.get("attempt")
        self.complain("task-refused", logging.WARNING, "refused task %r: %s", task_id, error)
        if type(task_id) is int and type(attempt) is int:
            session.hold_result(_result(task_id, attempt, Result.UNKNOWN, -1, {}, f"refused: {error}".encode()))

    def fail(self, session: Session, sandbox: Sandbox, why: str) -> None:
        """Report a task that is not running (queued, or never started) as failed."""
        self.complain("task-failed", logging.WARNING, "task %d: %s", sandbox.task_id, why)
        self.report(session, sandbox, Result.UNKNOWN, -1, {}, why.encode())

    def start_queued(self, session: Session) -> None:
        """Start waiting tasks in arrival order while they fit (the master's scheduler does the same).
        A task that cannot start, for a reason in its content or a failure here, is reported failed."""
        while self.queued and self._fits(self.queued[0].task["resources"]):
            sandbox = self.queued[0]
            try:
                if sandbox.task_id in self.running:
                    raise ValueError(f"task {sandbox.task_id} is already running here")
                if sandbox.in_pool:
                    sandbox.mark_started()  # its process started it when the call before it ended
                elif not self._start_holding_devices(sandbox):
                    break  # every pooled process is busy: wait for one to finish
            except Exception as error:
                self.queued.pop(0)
                self.fail(session, sandbox, f"could not start: {error}")
                continue
            self.queued.pop(0)
            self._hold(sandbox.task["resources"], -1)
            self.running[sandbox.task_id] = sandbox
        self._queue_calls(session)

    def _queue_calls(self, session: Session) -> None:
        """Put waiting function calls in the pipes of busy pooled processes, which start them the
        moment their current call ends, without a round trip through this loop.

        Only a prefix of the queue, and only calls with the same allocation as every running call:
        then each call that ends frees exactly what the next one takes, and these books, which
        promote the head of the queue when a call ends, stay true.
        """
        if self.functions is None or not self.functions.has_room(0, queued=True):
            return
        allocations = {s.allocation for s in self.running.values() if s.task["kind"] == "function"}
        if len(allocations) != 1 or _holds_gpus(next(iter(allocations))):
            return  # a call that needs GPUs gets its devices when it starts, not while it waits
        for sandbox in self.queued:
            if sandbox.in_pool:
                continue
            if sandbox.task["kind"] != "function" or sandbox.allocation not in allocations:
                return
            try:
                if not self._submit_call(sandbox, queued=True):
                    return
            except Exception as error:
                self.queued.remove(sandbox)
                self.fail(session, sandbox, f"could not start: {error}")
                return
            sandbox.in_pool = True

    def _start_holding_devices(self, sandbox: Sandbox) -> bool:
        """Start a task with the GPUs it declared (named in its environment), which go back
        if it could not start."""
        sandbox.devices = self.gpus.take(sandbox.task_id, sandbox.task["resources"].get("gpus", 0))
        try:
            started = self._start(sandbox)
        except BaseException:
            self._release_devices(sandbox)
            raise
        if not started:
            self._release_devices(sandbox)
        return started

    def _release_devices(self, sandbox: Sandbox) -> None:
        self.gpus.release(sandbox.task_id)
        sandbox.devices = ()

    def _release(self, sandbox: Sandbox) -> None:
        """A task no longer runs (exited, killed, over a limit, canceled): what it held is free."""
        self._hold(sandbox.task["resources"], +1)
        self._release_devices(sandbox)

    def _start(self, sandbox: Sandbox) -> bool:
        """Start a command in a process of its own, or a call in a pooled process."""
        kind = sandbox.task["kind"]
        if kind == "command":
            self.by_pidfd[sandbox.start(self.base_env)] = sandbox
            return True
        if kind == "function":
            started = self._submit_call(sandbox)
        elif kind == "remote":
            if self.coprocesses is None:
                raise ValueError("this worker runs no coprocess (start it with --coprocess)")
            call = sandbox.task["call"]
            started = self.coprocesses.submit(str(sandbox.task_id), call["fn_name"], call["payload"])
        else:
            raise ValueError(f"unknown task kind {kind!r}")
        if started:
            sandbox.mark_started()
        return started

    def _submit_call(self, sandbox: Sandbox, queued: bool = False) -> bool:
        call = sandbox.call()
        pool = self._function_pool()
        return pool.submit(str(sandbox.task_id), call, cwd=sandbox.dir, queued=queued, env=sandbox.task_env())

    def _function_pool(self) -> FunctionPool:
        """Persistent Python processes, one per core, started with the first function task."""
        if self.functions is None:
            self.functions = FunctionPool(max(1, int(self.resources["cores"])), self.workspace)
        return self.functions

    def calls_finished(self, session: Session) -> None:
        self.last_activity = time.monotonic()
        for pool in (self.functions, self.coprocesses):
            if pool is None:
                continue
            for task_id, status, payload, times in pool.collect():
                sandbox = self._take_finished(int(task_id))
                if sandbox is None:
                    continue
                measured = sandbox.finish_call(times)
                result = Result.SUCCESS if status != "died" else Result.SIGNAL
                exit_code = 0 if status == "ok" else 1
                if isinstance(payload, str):
                    payload = payload.encode()
                if len(payload) > protocol.RESULT_PAYLOAD_MAX:
                    result, exit_code, payload = Result.UNKNOWN, 1, _outcome_too_large(sandbox, len(payload))
                self._finish(session, sandbox, result, exit_code, measured, payload)
        self.start_queued(session)

    def _take_finished(self, task_id: int) -> Optional[Sandbox]:
        """The finished call's sandbox, its resources released (None: it was killed).

        These books promote queued calls in arrival order, but each pooled process starts the
        call queued in its own pipe, so a call may finish while the books still list it as queued.
        It then ran in the place of a promoted call with the same allocation, which goes back to
        waiting: the counts, which are what fitting depends on, stay true.
        """
        sandbox = self.running.pop(task_id, None)
        if sandbox is not None:
            self._release(sandbox)
            return sandbox
        sandbox = next((s for s in self.queued if s.task_id == task_id and s.in_pool), None)
        if sandbox is None:
            return None
        self.queued.remove(sandbox)
        stand_in = next((s for s in self.running.values() if s.in_pool), None)
        if stand_in is not None:
            del self.running[stand_in.task_id]
            self.queued.insert(0, stand_in)
            self._release(stand_in)
        return sandbox

    def _booking_problem(self, allocation: Tuple) -> Optional[str]:
        """Why a task's resources cannot be booked here, or None. Tasks of one category share
        their resources, so each shape is checked once."""
        if allocation in self._allocations_seen:
            return None
        problem = self._allocation_problem(allocation)
        if problem is None:
            if len(self._allocations_seen) >= ALLOCATIONS_REMEMBERED:
                self._allocations_seen.clear()
            self._allocations_seen.add(allocation)
        return problem

    def _allocation_problem(self, allocation: Tuple) -> Optional[str]:
        """Each amount must be a finite number >= 0 (a NaN never fits, a negative one would free
        what no task released) and at most what this worker has (a task that could never fit
        would wait at the head of the queue for ever, and every task behind it with it)."""
        for name, amount in allocation:
            if type(amount) not in (int, float) or not 0 <= amount < math.inf:
                return f"resource {str(name)[:64]!r} of {str(amount)[:64]}: not a finite non-negative number"
            if amount > self.resources.get(name, 0) + 1e-9:
                return f"it asks for {amount} {str(name)[:64]}, more than this worker has ({self.resources.get(name, 0)})"
        return None

    def _fits(self, allocation: Dict[str, float]) -> bool:
        return all(self.free.get(name, 0) >= need - 1e-9 for name, need in allocation.items())

    def _hold(self, allocation: Dict[str, float], sign: int) -> None:
        for name, amount in allocation.items():
            self.free[name] = self.free.get(name, 0) + sign * amount

    def kill(self, session: Session, task_id: int) -> None:
        """The master no longer wants this task: drop it, queued or running, without a result."""
        for sandbox in [s for s in self.queued if s.task_id == task_id]:
            self.queued.remove(sandbox)
            self._drop_queued(sandbox)
        sandbox = self.running.pop(task_id, None)
        if sandbox is not None:
            self._stop(sandbox)
            self._release(sandbox)
            self._throw_away(sandbox)
            self.start_queued(session)

    def revoke(self, task_id: int, attempt: int) -> bool:
        """The master takes a queued task back for another worker: True if it had not started here
        (and now never will), False if it has started, has ended, or was never here. A call
        already written to a pooled process's pipe counts as started: that process may run it."""
        for sandbox in self.queued:
            if sandbox.task_id == task_id and sandbox.task["attempt"] == attempt and not sandbox.in_pool:
                self.queued.remove(sandbox)
                self._throw_away(sandbox)
                return True
        return False

    def _stop(self, sandbox: Sandbox) -> None:
        """Kill a running task: its process group, or its pooled process (which the pool replaces)."""
        kind = sandbox.task["kind"]
        if kind == "command":
            self.by_pidfd.pop(sandbox.pidfd, None)
            sandbox.kill()
            try:
                sandbox.reap()
            except ChildProcessError:
                pass
        else:
            pool = self.functions if kind == "function" else self.coprocesses
            if pool is not None:
                pool.kill(str(sandbox.task_id))

    def task_exited(self, session: Session, sandbox: Sandbox) -> None:
        exit_code, measured = sandbox.reap()
        self.running.pop(sandbox.task_id, None)
        self._release(sandbox)
        self.start_queued(session)
        self.last_activity = time.monotonic()
        result, limits = Result.SUCCESS, {}
        if sandbox.killed_for is not None:
            result, limits = sandbox.killed_for
        elif exit_code < 0:
            result = Result.SIGNAL
        self._finish(session, sandbox, result, exit_code, measured, sandbox.stdout(), limits)

    def _finish(self, session: Session, sandbox: Sandbox, result: Result, exit_code: int,
                measured: Dict[str, float], stdout: bytes, limits: Optional[Dict[str, float]] = None) -> None:
        """Send an ended task's outputs, then its result."""
        try:
            present, missing = sandbox.outputs()
        except Exception as error:  # output names this worker cannot use
            self.complain("outputs", logging.WARNING, "task %d: its outputs: %s", sandbox.task_id, error)
            result, present, missing = Result.UNKNOWN, [], []
            stdout = f"its outputs could not be looked up: {error}".encode()
        temps: List[list] = []
        if sandbox.task.get("temps"):
            present, temps, evicted = keep_temps(self.cache, sandbox.task_id, sandbox.task["temps"], present, missing,
                                                 self.complain)
            if evicted:
                session.send(protocol.encode("cache-update", removed=evicted))
        inline: List[list] = []
        budget = Budget()
        for name, path in present:
            small = read_output(name, path, budget)
            if small is not None:
                inline.append(small)
            elif not self._send_output(session, sandbox, name, path):
                missing.append(name)
        self.report(session, sandbox, result, exit_code, measured, stdout, missing, limits, temps, inline)

    def _send_output(self, session: Session, sandbox: Sandbox, name: str, path: str) -> bool:
        """Stream one output to the master; False if it cannot be read (it then counts as missing)."""
        try:
            source = FileSource(path)
            mode = os.stat(path).st_mode & 0o777
        except OSError as error:
            self.complain("output-unreadable", logging.WARNING, "task %d: output %r: %s", sandbox.task_id, name, error)
            return False
        session.release_results(queued=0)  # results held so far must not wait behind this file
        session.xfers += 1
        header = protocol.encode("output", xfer=session.xfers, task_id=sandbox.task_id,
                                 attempt=sandbox.attempt, name=name, size=source.size, mode=mode)
        session.outbox.stream(session.xfers, header, source)
        return True

    def report(self, session: Session, sandbox: Sandbox, result: Result, exit_code: int,
               measured: Dict[str, float], stdout: bytes, missing: List[str] = (),
               limits: Optional[Dict[str, float]] = None, temps: List[list] = (), files: List[list] = ()) -> None:
        session.hold_result(_result(sandbox.task_id, sandbox.attempt, result, exit_code, measured, stdout,
                                    missing, limits, temps, files))
        self.reported.append(sandbox)
        self.tasks_done += 1

    def clean_reported(self) -> None:
        """Empty the sandboxes of reported tasks. This waits until their results are on their way
        because removing a task's files can take longer than sending them (46 ms for a 256 MiB
        input on tmpfs)."""
        while self.reported:
            sandbox = self.reported.pop()
            sandbox.cleanup(self.cache, reuse=sandbox.killed_for is None)  # a stopped call may yet start

    def enforce_limits(self, session: Session) -> None:
        """Kill, with its whole process tree, a task that outgrows what it declared or outlives its
        time. A call in a pooled process is stopped (the pool replaces the process) and reported
        here; a command's exit is reported when its process group is gone."""
        now = time.time()
        for sandbox in list(self.running.values()):
            try:
                reason = _limit_exceeded(sandbox, now)
            except Exception as error:  # limits that are not numbers: the task cannot be watched
                self.complain("limits", logging.WARNING, "task %d: its limits: %s", sandbox.task_id, error)
                reason = Result.UNKNOWN, {}
            if reason is None:
                continue
            sandbox.kill(reason)
            if not sandbox.pid:
                self._end_call(session, sandbox)

    def _end_call(self, session: Session, sandbox: Sandbox) -> None:
        result, limits = sandbox.killed_for
        log.info("task %d exceeded %s: stopped", sandbox.task_id, limits)
        del self.running[sandbox.task_id]
        self._stop(sandbox)
        self._release(sandbox)
        self.report(session, sandbox, result, -1, sandbox.finish_call(),
                    f"stopped: {result.name} {limits}".encode(), [], limits)
        self.start_queued(session)

    def _drop_queued(self, sandbox: Sandbox) -> None:
        if sandbox.in_pool and self.functions is not None:
            self.functions.kill(str(sandbox.task_id))
        self._throw_away(sandbox)

    def _throw_away(self, sandbox: Sandbox) -> None:
        """Clean up after a stopped task. A call that waited in a process's pipe is only canceled,
        and the process may have started it already: its directory is removed, not reused."""
        sandbox.cleanup(self.cache, reuse=not sandbox.in_pool)

    def kill_all(self) -> None:
        """Every task dies with the session that brought it; the resources are all free again."""
        self.clean_reported()
        for sandbox in self.queued:
            self._drop_queued(sandbox)
        self.queued.clear()
        for sandbox in list(self.running.values()):
            self._stop(sandbox)
            self._throw_away(sandbox)
        self.running.clear()
        self.by_pidfd.clear()
        self.free = dict(self.resources)
        self.gpus.release_all()
        self.cache.forget_awaited()

    def close(self) -> None:
        """Kill every task and every pooled process."""
        self.kill_all()
        for pool in (self.functions, self.coprocesses):
            if pool is not None:
                pool.close()


def _holds_gpus(allocation: Tuple) -> bool:
    return any(name == "gpus" and amount > 0 for name, amount in allocation)


def _header_fields(frames: List[Any]) -> Dict[Any, Any]:
    """The header's map, or an empty one for anything that is not a map of a sane size."""
    try:
        header = protocol.as_bytes(frames[0])
        if len(header) > protocol.MAX_HEADER_BYTES:
            return {}
        fields = msgpack.unpackb(header, raw=False)
    except Exception:  # msgpack raises several unrelated types on garbage
        return {}
    return fields if isinstance(fields, dict) else {}


def _result(task_id: int, attempt: int, result: Result, exit_code: int, measured: Dict[str, float],
            stdout: bytes, missing: List[str] = (), limits: Optional[Dict[str, float]] = None,
            temps: List[list] = (), files: List[list] = ()) -> List[Any]:
    return protocol.encode(
        "result", [stdout], task_id=task_id, attempt=attempt, result=int(result), exit_code=exit_code,
        measured=measured, limits_exceeded=limits or {}, missing=list(missing),
        times={"start": measured.get("start", 0.0), "end": measured.get("end", 0.0)}, temps=list(temps),
        files=list(files))


def _outcome_too_large(sandbox: Sandbox, size: int) -> bytes:
    """What goes back instead of a call's outcome too large for a result: for a function, a
    pickled failure the master's PythonTask shows as its output; for a coprocess, the text."""
    limit = protocol.RESULT_PAYLOAD_MAX >> 20
    if sandbox.task["kind"] != "function":
        return (f"the coprocess's reply is {size} bytes, over the {limit} MiB a result may carry: "
                f"write it to an output file").encode()
    why = (f"the return value pickles to {size} bytes, over the {limit} MiB a result may carry: "
           f"write it to an output file")
    return cloudpickle.dumps(("error", FunctionTaskFailed(why), f"FunctionTaskFailed: {why}\n", b""))


def _limit_exceeded(sandbox: Sandbox, now: float) -> Optional[Tuple[Result, Dict[str, float]]]:
    """The first limit a running task is past, with why: memory or disk it declared, its run time,
    its end time."""
    exceeded = sandbox.sample(now, sandbox.task["declared"])
    if exceeded:
        return Result.RESOURCE_EXHAUSTION, exceeded
    limits = sandbox.task["limits"]
    wall = limits.get("wall_time")
    if wall and now - sandbox.start_time > wall:
        return Result.TASK_MAX_RUN_TIME, {"wall_time": wall}
    end = limits.get("end_time")
    if end and now > end:
        return Result.TASK_TIMEOUT, {"end_time": end}
    return None
