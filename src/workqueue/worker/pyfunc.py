"""Persistent Python processes that run cloudpickled functions on a worker.

A :class:`FunctionPool` starts ``size`` child processes once (``pyfunc_child.py``) and reuses them,
so a function call costs a pipe round trip instead of a Python start-up. It starts no threads: the
worker's event loop polls ``pool.fileno()`` (one stable fd, an epoll/kqueue selector that is readable
while any child has something to say) and calls :meth:`FunctionPool.collect` when it fires.

    pool = FunctionPool(2, workspace)
    poller.register(pool.fileno(), zmq.POLLIN)
    pool.submit(task_id, cloudpickle.dumps((fn, args, kwargs)), cwd=sandbox, env={"CORES": "1"})
    ... poll ...
    for task_id, status, payload, times in pool.collect():
        ...   # cloudpickle.loads(payload) is ("ok", value, None, printed)
              # or ("error", exception, traceback_text, printed)

``status`` is ``"ok"``, ``"error"`` (the function raised) or ``"died"`` (its process ended during
the call: ``os._exit``, a signal, a crash; the pool has already started a replacement). ``times``
is the call's (start, end) wall-clock time as its process saw it, or None when it died.

*Queued calls.* ``submit(..., queued=True)`` puts a small call in the pipe of a busy process, to
start the moment its current call ends, without a round trip through the caller's loop. Calls in
one process run in order; killing one that has not started yet only cancels it.
"""
from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import pickle
import selectors
import signal
import subprocess
import sys
from collections import deque
from typing import Deque, Dict, Iterator, List, Optional, Tuple

import cloudpickle

from .pyfunc_child import HEADER, READ_SIZE, TIMES, frame, split_frames

logger = logging.getLogger(__name__)

CHILD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pyfunc_child.py")
HEADER_SIZE = HEADER.size
REQUEST_OVERHEAD = 4096  # a request's size beyond its payload, for has_room's estimate (paths, environment)
CANCEL_ROOM = 64  # kept free in the pipe for each queued call: a cancel request is ~30 bytes
QUEUED_BYTES_MAX = 32 << 10  # queued requests stay within half the pipe (see _pipe_capacity): writes never block
Outcome = Tuple[str, str, bytes, Optional[Tuple[float, float]]]  # (task_id, status, payload, times)


class _Call:
    """A call sent to a process: the first of its process's calls is running, the others wait."""

    __slots__ = ("task_id", "request", "cancelled")

    def __init__(self, task_id: str, request: bytes) -> None:
        self.task_id = task_id
        self.request = request
        self.cancelled = False


def _pipe_capacity(fd: int) -> int:
    """The pipe's buffer: 64 KiB by default on Linux, but a user past ``pipe-user-pages-soft``
    gets one page. Queued requests must fit in it, or the blocking write would stall the worker."""
    try:
        return fcntl.fcntl(fd, fcntl.F_GETPIPE_SZ)
    except (AttributeError, OSError):  # not Linux
        return 16 << 10


def _pipe_bytes(call: _Call) -> int:
    return len(call.request) + HEADER_SIZE + CANCEL_ROOM


class _Child:
    """One child process and the parent's ends of its two pipes."""

    def __init__(self, home: str) -> None:
        req_r, self.req_w = os.pipe()
        self.resp_r, resp_w = os.pipe()
        try:
            self.process = subprocess.Popen(
                [sys.executable, CHILD, str(req_r), str(resp_w), home, str(os.getpid())],
                pass_fds=(req_r, resp_w), stdin=subprocess.DEVNULL, start_new_session=True, cwd=home)
        finally:
            os.close(req_r)
            os.close(resp_w)
        os.set_blocking(self.resp_r, False)
        self.calls: Deque[_Call] = deque()
        self.buffer = bytearray()
        self.unwritten = bytearray()  # requests held back by FunctionPool.batch
        self.queued_bytes = 0  # what may sit unread in the request pipe: see add()
        self.queue_limit = min(QUEUED_BYTES_MAX, _pipe_capacity(self.req_w) // 2)

    def add(self, call: _Call) -> None:
        """A call sent to this process. Those behind the running one count in ``queued_bytes``,
        with room for their cancel requests."""
        if self.calls:
            self.queued_bytes += _pipe_bytes(call)
        self.calls.append(call)

    def pop_finished(self) -> Optional[_Call]:
        """The running call, which has ended; the next one starts running."""
        if not self.calls:
            return None
        call = self.calls.popleft()
        if self.calls:
            self.queued_bytes -= _pipe_bytes(self.calls[0])
        return call

    @property
    def pid(self) -> int:
        return self.process.pid

    def send(self, request: bytes, hold: bool = False) -> None:
        """Blocking write: the child is idle and reading, so this finishes at pipe speed. With
        ``hold`` the request waits for :meth:`flush`."""
        self.unwritten += frame(request)
        if not hold:
            self.flush()

    def flush(self) -> None:
        data, self.unwritten = self.unwritten, bytearray()
        view = memoryview(data)
        while view:
            view = view[os.write(self.req_w, view):]

    def read(self) -> Tuple[List[bytes], bool]:
        """Drain the pipe without blocking: complete replies, and whether the child hung up."""
        eof = False
        while True:
            try:
                chunk = os.read(self.resp_r, READ_SIZE)
            except BlockingIOError:
                break
            if not chunk:
                eof = True
                break
            self.buffer += chunk
            if len(chunk) < READ_SIZE:
                break  # drained for now (another read would raise); an EOF after it shows next time
        return split_frames(self.buffer), eof

    def kill(self) -> int:
        """SIGKILL the child's whole process group (it may have started its own children); reap it."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        code = self.process.wait()
        self.close_fds()
        return code

    def close_fds(self) -> None:
        for fd in (self.req_w, self.resp_r):
            try:
                os.close(fd)
            except OSError:
                pass


class FunctionPool:
    """``size`` persistent Python processes; no threads; drive it with ``fileno``/``collect``."""

    def __init__(self, size: int, cwd_root: str, depth: int = 32) -> None:
        """``depth``: calls per process, the running one included. A process that finds its next
        call waiting in its pipe never sleeps between calls, and the deeper the pipe, the more calls
        each wake-up of a process (and of the worker) serves: with 2 one-core workers, depth 8 ran
        trivial calls at 11,000-11,700/s where depth 2 ran 8,700-8,900/s (2026-11-25), and depth 32
        (with the master prefetching up to 64 a core) at a median of 8,717/s where depth 8 (and 16)
        ran 7,253/s on a slower day (2026-11-29). The caller bounds how much work that commits to
        one process (the worker queues only what the master prefetched, about 20 ms of work per
        core)."""
        if size < 1 or depth < 1:
            raise ValueError("a FunctionPool needs at least one process, taking at least one call")
        self.depth = depth
        self.cwd_root = os.path.abspath(cwd_root)
        self._selector = selectors.DefaultSelector()
        if not hasattr(self._selector, "fileno"):
            raise RuntimeError("FunctionPool needs an epoll/kqueue selector")
        self._children: List[_Child] = []
        self._by_task: Dict[str, _Child] = {}
        self._closed = False
        self._batching = 0
        for _ in range(size):
            self._spawn()

    # -- public interface --------------------------------------------------------------------
    @property
    def size(self) -> int:
        return len(self._children)

    def fileno(self) -> int:
        """One fd, stable for the pool's life: readable while a reply or a death is waiting."""
        return self._selector.fileno()

    def idle(self) -> int:
        """How many processes can take a call now."""
        return sum(1 for c in self._children if not c.calls)

    def pids(self) -> List[int]:
        return [c.pid for c in self._children]

    def submit(self, task_id: str, payload: bytes, cwd: str, env: Dict[str, Optional[str]],
               queued: bool = False) -> bool:
        """Start ``cloudpickle.loads(payload)`` = (fn, args, kwargs) on an idle process, or with
        ``queued`` put it behind the current call of a busy one.

        ``cwd`` is the task's sandbox (also put first on ``sys.path`` for the call), ``env`` is added
        to the process's environment for the call (a None value unsets a variable). What the call
        prints comes back in its outcome. Returns False when no process can take it.
        """
        if self._closed:
            raise RuntimeError("FunctionPool is closed")
        if task_id in self._by_task:
            raise ValueError(f"task {task_id} is already running in the pool")
        child = self._queue_behind(len(payload)) if queued else self._idle_child()
        if child is None:
            return False  # before the request is built: a request is at least its payload
        request = pickle.dumps(("call", task_id, os.path.abspath(cwd),
                                {str(k): None if v is None else str(v) for k, v in env.items()}, payload),
                               protocol=pickle.HIGHEST_PROTOCOL)
        if queued:
            child = self._queue_behind(len(request))
            if child is None:
                return False
        self._send(child, _Call(task_id, request))
        return True

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Calls submitted inside go to each process in one write when the block ends: a write
        to an idle process wakes it, and on a loaded machine each wake-up preempts the caller
        (one write per call cost the worker 48 us of wall time per trivial call)."""
        self._batching += 1
        try:
            yield
        finally:
            self._batching -= 1
            if not self._batching:
                for child in self._children:
                    if child.unwritten:
                        self._write(child)

    def has_room(self, payload_size: int, queued: bool = False) -> bool:
        """Whether ``submit`` would take a call of this size now (ask first when the call's
        arguments cost something to prepare)."""
        if queued:
            return self._queue_behind(payload_size + REQUEST_OVERHEAD) is not None
        return self._idle_child() is not None

    def collect(self) -> List[Outcome]:
        """Finished calls, without blocking: ``[(task_id, status, payload, times), ...]``."""
        outcomes: List[Outcome] = []
        for key, _ in self._selector.select(0):
            child: _Child = key.data
            replies, eof = child.read()
            for reply in replies:
                outcome = self._finish(child, reply)
                if outcome is not None:
                    outcomes.append(outcome)
            if eof:
                outcomes.extend(self._died(child))
            elif child.calls and child.calls[0].cancelled:
                self._restart(child)  # it has just started a call that was canceled while it waited
        return outcomes

    def kill(self, task_id: str) -> bool:
        """Stop the call of ``task_id``: a running call's process is killed and replaced, a queued
        call is dropped. No outcome is reported."""
        child = self._by_task.pop(task_id, None)
        if child is None:
            return False
        call = next(c for c in child.calls if c.task_id == task_id)
        call.cancelled = True
        if child.calls[0] is call:
            self._restart(child)
        else:
            self._write(child, pickle.dumps(("cancel", task_id)), hold=False)  # the sooner, the likelier in time
        return True

    def close(self) -> None:
        """Kill every process (and anything it started in its session) and wait for them."""
        if self._closed:
            return
        self._closed = True
        for child in self._children:
            self._selector.unregister(child.resp_r)
            child.kill()
        self._children.clear()
        self._by_task.clear()
        self._selector.close()

    def __enter__(self) -> "FunctionPool":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    # -- internals ---------------------------------------------------------------------------
    def _spawn(self) -> _Child:
        child = _Child(self.cwd_root)
        self._selector.register(child.resp_r, selectors.EVENT_READ, child)
        self._children.append(child)
        logger.debug("function process %d started", child.pid)
        return child

    def _idle_child(self) -> Optional[_Child]:
        return next((c for c in self._children if not c.calls), None)

    def _queue_behind(self, request_size: int) -> Optional[_Child]:
        """A busy process with room in its pipe and the fewest calls, or None."""
        wanted = request_size + HEADER_SIZE + CANCEL_ROOM
        busy = [c for c in self._children if c.calls and len(c.calls) < self.depth
                and c.queued_bytes + wanted <= c.queue_limit]
        return min(busy, key=lambda c: len(c.calls), default=None)

    def _send(self, child: _Child, call: _Call) -> None:
        child.add(call)
        self._by_task[call.task_id] = child
        self._write(child, call.request)

    def _write(self, child: _Child, request: bytes = b"", hold: bool = True) -> None:
        """Send ``request`` (after anything held back for ``child``), or only what is held back;
        inside a batch, requests are held back unless ``hold`` is False."""
        try:
            if request:
                child.send(request, hold=hold and self._batching > 0)
            else:
                child.flush()
        except (BrokenPipeError, OSError) as exc:
            logger.warning("function process %d is gone: %s", child.pid, exc)
            # collect() sees the EOF and reports its running call as died

    def _restart(self, child: _Child) -> None:
        """Kill a process whose running call was canceled; its waiting calls go to its successor."""
        self._selector.unregister(child.resp_r)
        self._children.remove(child)
        code = child.kill()
        logger.debug("function process %d ended (%s); starting another", child.pid, code)
        if not self._closed:
            self._resend(self._spawn(), list(child.calls)[1:])

    def _resend(self, child: _Child, calls: List[_Call]) -> None:
        for call in calls:
            if not call.cancelled:
                self._send(child, call)

    def _finish(self, child: _Child, reply: bytes) -> Optional[Outcome]:
        call = child.pop_finished()
        if call is None or call.cancelled:
            return None
        self._by_task.pop(call.task_id, None)
        status = "ok" if reply[:1] == b"o" else "error"
        return (call.task_id, status, reply[1 + TIMES.size:], TIMES.unpack_from(reply, 1))

    def _died(self, child: _Child) -> List[Outcome]:
        self._selector.unregister(child.resp_r)
        self._children.remove(child)
        code = child.kill()
        how = f"killed by signal {-code}" if code < 0 else f"exited with status {code}"
        call = child.calls[0] if child.calls else None
        logger.warning("function process %d %s (task %s)", child.pid, how, call.task_id if call else None)
        if not self._closed:
            self._resend(self._spawn(), list(child.calls)[1:])
        if call is None or call.cancelled:
            return []
        self._by_task.pop(call.task_id, None)
        error = ChildProcessError(f"the function's process {how}")
        return [(call.task_id, "died", cloudpickle.dumps(("error", error, f"ChildProcessError: {error}\n", b"")), None)]
