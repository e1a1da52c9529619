"""The master: a user-facing ``Manager`` and the loop thread that owns its ROUTER socket.

The user's thread never touches a socket. ``submit`` and ``cancel`` go to the loop as commands
(a queue plus an inproc wake-up), finished tasks come back through another queue, so ``wait``
returns the moment a result lands and tasks keep moving while the user's code is elsewhere.
"""
from __future__ import annotations

import collections
import itertools
import logging
import os
import queue
import socket
import threading
import time
import weakref
from typing import Any, Deque, Dict, List, Optional, Tuple, Union

import zmq

from .constants import DEFAULT_PORT, Result
from .manager_loop import ManagerLoop, Settings, configure_router
from .task import Task

log = logging.getLogger(__name__)

PortSpec = Union[int, Tuple[int, int]]


class Manager:
    """A queue of tasks and the port where workers join it.

    ``port=0`` takes any free port (read it back from ``.port``); a ``(low, high)`` pair takes the
    first free one in that range. A port that is busy raises ``OSError`` naming it.
    """

    def __init__(
        self,
        port: PortSpec = DEFAULT_PORT,
        *,
        name: Optional[str] = None,
        password: Optional[Union[str, bytes]] = None,
        host: str = "*",
        keepalive_interval: float = 5.0,
        keepalive_timeout: float = 30.0,
        transactions_log: Optional[str] = None,
        curve_key: Optional[str] = None,
        curve_allowed: Optional[str] = None,
    ) -> None:
        """``curve_key``: this master's ``.key_secret`` file (created if absent) turns on encryption;
        ``curve_allowed``: a folder of the public ``.key`` files of the workers allowed in."""
        self._ctx = zmq.Context()
        self._ctx.setsockopt(zmq.LINGER, 0)
        self._zap = None
        router = self._ctx.socket(zmq.ROUTER)
        if curve_key:
            from . import curve
            self._zap = curve.authenticator(self._ctx, curve_allowed)
            curve.serve(router, curve_key)
        configure_router(router)
        try:
            self.port = _bind(router, host, port)
        except Exception:
            router.close(0)
            if self._zap is not None:
                self._zap.stop()
            self._ctx.term()
            raise
        wake_address = f"inproc://workqueue-wake-{id(self)}"
        wake_receiver = self._ctx.socket(zmq.PAIR)
        wake_receiver.bind(wake_address)
        self._wake = self._ctx.socket(zmq.PAIR)
        self._wake.connect(wake_address)
        self._wake_lock = threading.Lock()
        self._commands: "queue.SimpleQueue[tuple]" = queue.SimpleQueue()
        self._finished: "queue.SimpleQueue[list]" = queue.SimpleQueue()  # lists of (task_id, outcome)
        self._arrived: Deque[Tuple[int, Dict[str, Any]]] = collections.deque()
        if isinstance(password, str):
            password = password.encode()
        self._settings = Settings(
            password=password,
            keepalive_interval=keepalive_interval,
            keepalive_timeout=keepalive_timeout,
            transactions_log=transactions_log,
        )
        self._loop = ManagerLoop(router, wake_receiver, self._commands, self._finished, self._settings)
        self._thread = threading.Thread(target=self._loop.run, name=f"workqueue-manager-{self.port}", daemon=True)
        self._thread.start()
        self._tasks: Dict[int, Task] = {}
        self._ids = itertools.count(1)
        self._submitted = 0
        self._closed = False
        self.name = name
        self._advertiser = None
        if name:
            self._start_advertising(name)
        weakref.finalize(self, _shutdown, self._thread, self._loop, self._wake, self._wake_lock, self._ctx)

    # -- tasks ----------------------------------------------------------------------------------
    def submit(self, task: Task) -> int:
        """Queue ``task`` and return its id; raises at once on a missing input or a bad name."""
        self._check_open()
        if not isinstance(task, Task):
            raise TypeError(f"submit() takes a Task, not {type(task).__name__}")
        task.check_inputs()
        spec = task.to_spec()
        task_id = next(self._ids)
        task._id = task_id
        task._set_outcome({})
        self._tasks[task_id] = task
        self._submitted += 1
        self._send("submit", task_id, spec, time.time())
        return task_id

    def wait(self, timeout: Optional[float] = None) -> Optional[Task]:
        """The next finished task, or None once ``timeout`` seconds pass (None or -1: forever)."""
        if timeout is not None and timeout < 0:
            timeout = None
        deadline = None if timeout is None else time.monotonic() + timeout
        while self._tasks:
            if not self._arrived:
                remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
                try:
                    self._arrived.extend(self._finished.get(timeout=remaining))
                except queue.Empty:
                    return None
                continue
            task_id, outcome = self._arrived.popleft()
            task = self._tasks.pop(task_id, None)
            if task is not None:
                task._set_outcome(outcome)
                return task
        return None

    def empty(self) -> bool:
        """True when no task is waiting, running, or holding a result not yet returned by wait()."""
        return not self._tasks

    def hungry(self) -> bool:
        """True while submitting more tasks would keep the workers busy."""
        snapshot = self._loop.snapshot
        not_yet_seen_by_loop = self._submitted - snapshot["tasks_submitted"]
        waiting = snapshot["tasks_waiting"] + not_yet_seen_by_loop
        return waiting < max(snapshot["hungry_minimum"], snapshot["free_cores"])

    def cancel(self, task_id: int) -> Optional[Task]:
        """Remove a task (killing it if it runs) and return it, or None if it is not in the queue."""
        task = self._tasks.pop(task_id, None)
        if task is not None:
            self._send("cancel", task_id)
            task._set_outcome({"result": int(Result.UNKNOWN), "exit_code": -1, "canceled": True})
        return task

    def cancel_by_tag(self, tag: str) -> Optional[Task]:
        for task_id, task in list(self._tasks.items()):
            if task.tag == tag:
                return self.cancel(task_id)
        return None

    def cancel_by_category(self, category: str) -> List[Task]:
        return [self.cancel(tid) for tid, t in list(self._tasks.items()) if t.category == category]

    def tasks(self) -> List[Task]:
        """The tasks submitted and not yet returned by wait()."""
        return list(self._tasks.values())

    # -- workers and files ----------------------------------------------------------------------
    def invalidate_cache_file(self, local_path: str) -> None:
        """Tell every worker to drop its cached copy of this file."""
        self._send("invalidate", os.path.abspath(local_path))

    def shutdown_workers(self, count: int = 0) -> None:
        """Ask ``count`` idle workers (0: all) to exit."""
        self._send("shutdown_workers", count)

    def tune(self, name: str, value: float) -> None:
        self._send("tune", name, value)

    def set_password(self, password: Optional[Union[str, bytes]]) -> None:
        """Require workers to prove they know this password (None: anyone may join)."""
        self._send("configure", "password", password.encode() if isinstance(password, str) else password)

    def set_transactions_log(self, path: Optional[str]) -> None:
        self._send("configure", "transactions_log", path)

    @property
    def stats(self) -> Dict[str, Any]:
        """A snapshot of counters: workers, tasks, bytes, cache hits, requeues."""
        return dict(self._loop.snapshot)

    def status(self, what: str = "queue") -> Any:
        """The same answer ``workqueue status`` gets over the network."""
        reply: "queue.SimpleQueue[Any]" = queue.SimpleQueue()
        self._send("status", what, reply)
        return reply.get(timeout=10)

    # -- life cycle -----------------------------------------------------------------------------
    def close(self) -> None:
        """Stop the loop, close the socket; workers see the master go and wait for a new one."""
        if self._closed:
            return
        self._closed = True
        if self._advertiser is not None:
            self._advertiser.close()
        if self._zap is not None:
            self._zap.stop()
        _shutdown(self._thread, self._loop, self._wake, self._wake_lock, self._ctx)

    def __enter__(self) -> "Manager":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("this manager is closed")

    def _send(self, *command: Any) -> None:
        if not self._thread.is_alive() and not self._closed:
            raise RuntimeError("the manager's loop has stopped (see the log for why)")
        self._commands.put(command)
        if self._loop.wake_pending:
            return  # the loop has a wake-up it has not acted on yet: it will read this command too
        self._loop.wake_pending = True
        with self._wake_lock:
            if not self._closed:
                try:
                    self._wake.send(b"", zmq.NOBLOCK)
                except zmq.Again:
                    pass  # wake-ups already queued: the loop will see this command too

    def _start_advertising(self, name: str) -> None:
        """Publish this master under ``name`` so workers started with ``-M NAME`` find it; the loop
        keeps the record fresh, and closing withdraws it."""
        from . import catalog
        if self._advertiser is not None:
            self._advertiser.close()
        self._advertiser = catalog.advertise(name, socket.gethostname(), self.port)
        self._send("advertiser", self._advertiser)


def _bind(router: zmq.Socket, host: str, port: PortSpec) -> int:
    if isinstance(port, (tuple, list)):
        low, high = port
        for candidate in range(low, high + 1):
            try:
                return _bind(router, host, candidate)
            except OSError:
                continue
        raise OSError(f"no free port between {low} and {high}")
    address = f"tcp://{host}:{'*' if port == 0 else port}"
    try:
        router.bind(address)
    except zmq.ZMQError as error:
        if error.errno == zmq.EADDRINUSE:
            raise OSError(error.errno, f"port {port} is already in use: pick another, or 0 for any free port") from None
        raise OSError(error.errno, f"cannot listen on {address}: {error}") from None
    endpoint = router.getsockopt(zmq.LAST_ENDPOINT).decode()
    return int(endpoint.rsplit(":", 1)[1])


def _shutdown(thread: threading.Thread, loop: ManagerLoop, wake: zmq.Socket, lock: threading.Lock,
              ctx: zmq.Context) -> None:
    """Stop the loop thread and free every socket, so no ZeroMQ context keeps the process alive."""
    if thread.is_alive():
        loop.stop_requested = True
        with lock:
            try:
                wake.send(b"", zmq.NOBLOCK)
            except zmq.ZMQError:
                pass
        thread.join(timeout=10)
    with lock:
        wake.close(0)
    ctx.destroy(0)
