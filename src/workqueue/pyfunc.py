"""Persistent Python processes that run cloudpickled functions on a worker.

A :class:`FunctionPool` starts ``size`` child processes once (``pyfunc_child.py``) and reuses them,
so a function call costs a pipe round trip instead of a Python start-up. It starts no threads: the
worker's event loop polls ``pool.fileno()`` (one stable fd, an epoll/kqueue selector that is readable
while any child has something to say) and calls :meth:`FunctionPool.collect` when it fires.

    pool = FunctionPool(2, workspace)
    poller.register(pool.fileno(), zmq.POLLIN)
    pool.submit(task_id, cloudpickle.dumps((fn, args, kwargs)), cwd=sandbox, env={"CORES": "1"})
    ... poll ...
    for task_id, status, payload in pool.collect():
        ...   # cloudpickle.loads(payload) is ("ok", value) or ("error", exception, traceback_text)

``status`` is ``"ok"``, ``"error"`` (the function raised) or ``"died"`` (its process ended during
the call: ``os._exit``, a signal, a crash; the pool has already started a replacement).
"""
from __future__ import annotations

import logging
import os
import pickle
import selectors
import signal
import subprocess
import sys
from typing import Dict, List, Optional, Tuple

import cloudpickle

logger = logging.getLogger(__name__)

CHILD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pyfunc_child.py")
HEADER_SIZE = 8
Outcome = Tuple[str, str, bytes]  # (task_id, status, payload)


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
        self.task_id: Optional[str] = None
        self.buffer = bytearray()

    @property
    def pid(self) -> int:
        return self.process.pid

    def send(self, request: bytes) -> None:
        """Blocking write: the child is idle and reading, so this finishes at pipe speed."""
        view = memoryview(len(request).to_bytes(HEADER_SIZE, "big") + request)
        while view:
            view = view[os.write(self.req_w, view):]

    def read(self) -> Tuple[List[bytes], bool]:
        """Drain the pipe without blocking: complete replies, and whether the child hung up."""
        eof = False
        while True:
            try:
                chunk = os.read(self.resp_r, 1 << 20)
            except BlockingIOError:
                break
            if not chunk:
                eof = True
                break
            self.buffer += chunk
        replies = []
        while len(self.buffer) >= HEADER_SIZE:
            size = int.from_bytes(self.buffer[:HEADER_SIZE], "big")
            if len(self.buffer) < HEADER_SIZE + size:
                break
            replies.append(bytes(self.buffer[HEADER_SIZE:HEADER_SIZE + size]))
            del self.buffer[:HEADER_SIZE + size]
        return replies, eof

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

    def __init__(self, size: int, cwd_root: str) -> None:
        if size < 1:
            raise ValueError("a FunctionPool needs at least one process")
        self.cwd_root = os.path.abspath(cwd_root)
        self._selector = selectors.DefaultSelector()
        if not hasattr(self._selector, "fileno"):
            raise RuntimeError("FunctionPool needs an epoll/kqueue selector")
        self._children: List[_Child] = []
        self._by_task: Dict[str, _Child] = {}
        self._closed = False
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
        return sum(1 for c in self._children if c.task_id is None)

    def pids(self) -> List[int]:
        return [c.pid for c in self._children]

    def submit(self, task_id: str, payload: bytes, cwd: str, env: Dict[str, Optional[str]],
               stdout: Optional[str] = None) -> bool:
        """Start ``cloudpickle.loads(payload)`` = (fn, args, kwargs) on an idle process.

        ``cwd`` is the task's sandbox (also put first on ``sys.path`` for the call), ``env`` is added
        to the process's environment for the call, ``stdout`` (a path) receives fds 1 and 2 during
        the call (a None value unsets a variable). Returns False when every process is busy.
        """
        if self._closed:
            raise RuntimeError("FunctionPool is closed")
        if task_id in self._by_task:
            raise ValueError(f"task {task_id} is already running in the pool")
        child = next((c for c in self._children if c.task_id is None), None)
        if child is None:
            return False
        request = pickle.dumps((os.path.abspath(cwd), {str(k): None if v is None else str(v) for k, v in env.items()},
                                stdout, payload), protocol=pickle.HIGHEST_PROTOCOL)
        child.task_id = task_id
        self._by_task[task_id] = child
        try:
            child.send(request)
        except (BrokenPipeError, OSError) as exc:
            logger.warning("function process %d was gone before task %s: %s", child.pid, task_id, exc)
            # collect() sees the EOF and reports the task as died
        return True

    def collect(self) -> List[Outcome]:
        """Finished calls, without blocking: ``[(task_id, status, payload), ...]``."""
        outcomes: List[Outcome] = []
        for key, _ in self._selector.select(0):
            child: _Child = key.data
            replies, eof = child.read()
            for reply in replies:
                outcomes.append(self._finish(child, reply))
            if eof:
                outcomes.extend(self._died(child))
        return outcomes

    def kill(self, task_id: str) -> bool:
        """Stop the call of ``task_id`` (its process is killed and replaced); no outcome is reported."""
        child = self._by_task.pop(task_id, None)
        if child is None:
            return False
        child.task_id = None
        self._replace(child)
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

    def _replace(self, child: _Child) -> None:
        self._selector.unregister(child.resp_r)
        self._children.remove(child)
        code = child.kill()
        logger.debug("function process %d ended (%s); starting another", child.pid, code)
        if not self._closed:
            self._spawn()

    def _finish(self, child: _Child, reply: bytes) -> Outcome:
        task_id = child.task_id or ""
        child.task_id = None
        self._by_task.pop(task_id, None)
        return (task_id, "ok" if reply[:1] == b"o" else "error", reply[1:])

    def _died(self, child: _Child) -> List[Outcome]:
        task_id = child.task_id
        if task_id is not None:
            self._by_task.pop(task_id, None)
        child.task_id = None
        self._selector.unregister(child.resp_r)
        self._children.remove(child)
        code = child.kill()
        how = f"killed by signal {-code}" if code < 0 else f"exited with status {code}"
        logger.warning("function process %d %s (task %s)", child.pid, how, task_id)
        if not self._closed:
            self._spawn()
        if task_id is None:
            return []
        error = ChildProcessError(f"the function's process {how}")
        return [(task_id, "died", cloudpickle.dumps(("error", error, f"ChildProcessError: {error}\n")))]
