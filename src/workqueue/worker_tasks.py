"""The tasks on a worker: queued (inputs staged, waiting for resources), running (a process of their
own, or a call in a pooled process), and reported; what they hold of the worker's resources; their
limits; their outputs and results on their way back to the master."""
from __future__ import annotations

import contextlib
import logging
import os
import time
from typing import Any, ContextManager, Dict, List, Optional, Tuple, Union

from . import protocol
from .cache import Cache
from .constants import Result
from .coprocess import CoprocessPool
from .pyfunc import FunctionPool
from .sandbox import Sandbox, SandboxDirs
from .transfer import FileSource
from .worker_session import Session

log = logging.getLogger("workqueue.worker")

Pool = Union[FunctionPool, CoprocessPool]


class TaskRunner:
    """Starts tasks in arrival order while they fit the worker's resources (the master's scheduler
    books them the same way), and reports each one once it has ended."""

    def __init__(self, workspace: str, resources: Dict[str, float], cache: Cache,
                 coprocesses: Optional[CoprocessPool] = None) -> None:
        self.workspace = workspace
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

    def pools(self) -> Tuple[Optional[Pool], Optional[Pool]]:
        return self.functions, self.coprocesses

    def calls_batched(self) -> ContextManager[None]:
        """Function calls started while handling one round of events reach each pooled process
        in one write (see :meth:`FunctionPool.batch`)."""
        return self.functions.batch() if self.functions is not None else contextlib.nullcontext()

    def start_queued(self, session: Session) -> None:
        """Start waiting tasks in arrival order while they fit (the master's scheduler does the same)."""
        while self.queued and self._fits(self.queued[0].task["resources"]):
            sandbox = self.queued[0]
            try:
                if sandbox.in_pool:
                    sandbox.mark_started()  # its process started it when the call before it ended
                elif not self._start(sandbox):
                    break  # every pooled process is busy: wait for one to finish
            except (OSError, ValueError) as error:
                self.queued.pop(0)
                self.report(session, sandbox, Result.UNKNOWN, -1, {}, f"could not start: {error}".encode())
                continue
            self.queued.pop(0)
            self._hold(sandbox.task["resources"], -1)
            self.running[sandbox.task_id] = sandbox
        self._queue_calls()

    def _queue_calls(self) -> None:
        """Put waiting function calls in the pipes of busy pooled processes, which start them the
        moment their current call ends, without a round trip through this loop.

        Only a prefix of the queue, and only calls with the same allocation as every running call:
        then each call that ends frees exactly what the next one takes, and these books, which
        promote the head of the queue when a call ends, stay true.
        """
        if self.functions is None or not self.functions.has_room(0, queued=True):
            return
        allocations = {s.allocation for s in self.running.values() if s.task["kind"] == "function"}
        if len(allocations) != 1:
            return
        for sandbox in self.queued:
            if sandbox.in_pool:
                continue
            if sandbox.task["kind"] != "function" or sandbox.allocation not in allocations:
                return
            if not self._submit_call(sandbox, queued=True):
                return
            sandbox.in_pool = True

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
        pool = self._function_pool()
        call = sandbox.call()
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
                if isinstance(payload, str):
                    payload = payload.encode()
                present, missing = sandbox.outputs()
                for name, path in present:
                    self._send_output(session, sandbox, name, path)
                self.report(session, sandbox, result, 0 if status == "ok" else 1, measured, payload, missing)
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
            self._hold(sandbox.task["resources"], +1)
            return sandbox
        sandbox = next((s for s in self.queued if s.task_id == task_id and s.in_pool), None)
        if sandbox is None:
            return None
        self.queued.remove(sandbox)
        stand_in = next((s for s in self.running.values() if s.in_pool), None)
        if stand_in is not None:
            del self.running[stand_in.task_id]
            self.queued.insert(0, stand_in)
            self._hold(stand_in.task["resources"], +1)
        return sandbox

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
            self._hold(sandbox.task["resources"], +1)
            self._throw_away(sandbox)
            self.start_queued(session)

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
        self._hold(sandbox.task["resources"], +1)
        self.start_queued(session)
        self.last_activity = time.monotonic()
        result, limits = Result.SUCCESS, {}
        if sandbox.killed_for is not None:
            result, limits = sandbox.killed_for
        elif exit_code < 0:
            result = Result.SIGNAL
        present, missing = sandbox.outputs()
        for name, path in present:
            self._send_output(session, sandbox, name, path)
        self.report(session, sandbox, result, exit_code, measured, sandbox.stdout(), missing, limits)

    def _send_output(self, session: Session, sandbox: Sandbox, name: str, path: str) -> None:
        session.release_results(queued=0)  # results held so far must not wait behind this file
        source = FileSource(path)
        session.xfers += 1
        mode = os.stat(path).st_mode & 0o777
        header = protocol.encode("output", xfer=session.xfers, task_id=sandbox.task_id,
                                 attempt=sandbox.attempt, name=name, size=source.size, mode=mode)
        session.outbox.stream(session.xfers, header, source)

    def report(self, session: Session, sandbox: Sandbox, result: Result, exit_code: int,
               measured: Dict[str, float], stdout: bytes, missing: List[str] = (),
               limits: Optional[Dict[str, float]] = None) -> None:
        session.hold_result(protocol.encode(
            "result", [stdout], task_id=sandbox.task_id, attempt=sandbox.attempt, result=int(result),
            exit_code=exit_code, measured=measured, limits_exceeded=limits or {}, missing=list(missing),
            times={"start": measured.get("start", 0.0), "end": measured.get("end", 0.0)}))
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
            reason = _limit_exceeded(sandbox, now)
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
        self._hold(sandbox.task["resources"], +1)
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

    def close(self) -> None:
        """Kill every task and every pooled process."""
        self.kill_all()
        for pool in (self.functions, self.coprocesses):
            if pool is not None:
                pool.close()


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
