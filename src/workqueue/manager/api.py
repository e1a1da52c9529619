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
from typing import Any, Deque, Dict, List, Optional, Set, Tuple, Union

import zmq

from .. import validation
from ..constants import DEFAULT_PORT, Result, TaskState
from ..files import File
from ..scheduling import scheduler
from ..scheduling.categories import Mode
from ..task import Task
from . import tuning
from .fetch import FETCH_TIMEOUT, fetch_temp
from .loop import ManagerLoop, Settings, configure_router

log = logging.getLogger(__name__)

PortSpec = Union[int, Tuple[int, int]]
LIVENESS_SLICE = 0.25  # seconds a blocked wait() sleeps between looks at the loop thread's health
STATUS_TIMEOUT = 10.0  # seconds status() waits for the loop's answer
POSITIVE_SETTINGS = ("keepalive-interval", "keepalive-timeout")  # tune() names that must stay > 0


class ManagerLoopStopped(RuntimeError):
    """The manager's loop thread stopped on an error: this manager can run no more tasks.

    ``cause`` (also ``__cause__``) is the error that stopped it, None if it left no trace."""

    def __init__(self, cause: Optional[BaseException]) -> None:
        why = f"{type(cause).__name__}: {cause}" if cause is not None else "no error recorded (see the log)"
        super().__init__(f"the manager's loop stopped: {why}")
        self.cause = cause


class Manager:
    """A queue of tasks and the port where workers join it.

    ``port=0`` takes any free port (read it back from ``.port``); a ``(low, high)`` pair takes the
    first free one in that range. A port that is busy raises ``OSError`` naming it.

    A wrong argument raises ``TypeError`` or ``ValueError`` naming it, at the call. Should the loop
    thread ever stop on an error, every call raises ``ManagerLoopStopped`` saying why.
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
        dashboard: Optional[int] = None,
    ) -> None:
        """``curve_key``: this master's ``.key_secret`` file (created if absent) turns on encryption;
        ``curve_allowed``: a folder of the public ``.key`` files of the workers allowed in;
        ``dashboard``: serve the live dashboard on this port of 127.0.0.1 (see ``start_dashboard``)."""
        port = validation.port("Manager", port)
        name = validation.text("Manager", "name", name, allow_none=True)
        password = validation.password("Manager", password)
        host = validation.text("Manager", "host", host)
        keepalive_interval = validation.number("Manager", "keepalive_interval", keepalive_interval,
                                               above=0, unit=" (seconds)")
        keepalive_timeout = validation.number("Manager", "keepalive_timeout", keepalive_timeout,
                                              above=0, unit=" (seconds)")
        transactions_log = validation.path("Manager", "transactions_log", transactions_log, allow_none=True)
        _check_writable(transactions_log)
        curve_key = validation.path("Manager", "curve_key", curve_key, allow_none=True)
        curve_allowed = validation.path("Manager", "curve_allowed", curve_allowed, allow_none=True)
        if dashboard is not None:
            dashboard = _dashboard_port("Manager", "dashboard", dashboard)
        self._ctx = zmq.Context()
        self._ctx.setsockopt(zmq.LINGER, 0)
        self._zap = None
        router = self._ctx.socket(zmq.ROUTER)
        if curve_key:
            from ..wire import curve
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
        self._settings = Settings(
            password=password,
            keepalive_interval=keepalive_interval,
            keepalive_timeout=keepalive_timeout,
            transactions_log=transactions_log,
            encrypted=bool(curve_key),
        )
        self._loop = ManagerLoop(router, wake_receiver, self._commands, self._finished, self._settings)
        self._thread = threading.Thread(target=self._loop.run, name=f"workqueue-manager-{self.port}", daemon=True)
        self._thread.start()
        self._tasks: Dict[int, Task] = {}
        self._ids = itertools.count(1)
        self._submitted = 0
        self._canceled: Set[int] = set()
        self._tunes_warned: Set[str] = set()
        self._closed = False
        self.name = name
        self._advertiser = None
        self._dashboard: Any = None
        self._summaries: Optional[str] = None  # enable_monitoring(summaries=DIR)
        if name:
            self._start_advertising(name)
        weakref.finalize(self, _shutdown, self._thread, self._loop, self._wake, self._wake_lock, self._ctx)
        if dashboard is not None:
            try:
                self.start_dashboard(dashboard)
            except Exception:
                self.close()
                raise

    # -- tasks ----------------------------------------------------------------------------------
    def submit(self, task: Task) -> int:
        """Queue ``task`` and return its id; raises at once on a missing input or a bad name."""
        self._check_open()
        self._check_loop()
        if not isinstance(task, Task):
            validation.refuse(TypeError, "Manager.submit", "task", "a Task", task)
        task.check_inputs()
        spec = task.to_spec()
        task_id = next(self._ids)
        task._id = task_id
        task._set_outcome({})
        self._tasks[task_id] = task
        self._submitted += 1
        self._enqueue(("submit", task_id, spec, time.time()))  # the loop was checked above
        return task_id

    def wait(self, timeout: Optional[float] = None) -> Optional[Task]:
        """The next finished task, or None once ``timeout`` seconds pass (None or -1: forever).

        Raises ``ManagerLoopStopped`` if the loop thread has died, or dies while this waits."""
        timeout = validation.wait_timeout("Manager.wait", timeout)
        self._check_loop()
        deadline = None if timeout is None else time.monotonic() + timeout
        while self._tasks:
            if not self._arrived:
                batch = self._get_while_loop_runs(self._finished, deadline)
                if batch is None:
                    return None
                self._arrived.extend(batch)
                continue
            task_id, outcome = self._arrived.popleft()
            task = self._tasks.pop(task_id, None)
            if task is not None:
                task._set_outcome(outcome)
                directory = task._monitor_output or self._summaries
                if directory:
                    _write_summary(task, directory)
                return task
        return None

    def empty(self) -> bool:
        """True when no task is waiting, running, or holding a result not yet returned by wait()."""
        self._check_loop()
        return not self._tasks

    def hungry(self) -> bool:
        """True while submitting more tasks would keep the workers busy."""
        self._check_loop()
        snapshot = self._loop.snapshot
        not_yet_seen_by_loop = self._submitted - snapshot["tasks_submitted"]
        waiting = snapshot["tasks_waiting"] + not_yet_seen_by_loop
        return waiting < max(snapshot["hungry_minimum"], snapshot["free_cores"])

    def cancel(self, task_id: int) -> Optional[Task]:
        """Remove a task (killing it if it runs) and return it, or None if it is not in the queue."""
        task_id = validation.task_id("Manager.cancel", task_id)
        self._check_loop()
        task = self._tasks.pop(task_id, None)
        if task is not None:
            self._canceled.add(task_id)
            self._send("cancel", task_id)
            task._set_outcome({"result": int(Result.UNKNOWN), "exit_code": -1, "canceled": True})
        return task

    def cancel_by_tag(self, tag: str) -> Optional[Task]:
        """Cancel the first task with this tag and return it (None: no task has it)."""
        validation.text("Manager.cancel_by_tag", "tag", tag)
        for task_id, task in list(self._tasks.items()):
            if task.tag == tag:
                return self.cancel(task_id)
        return None

    def cancel_by_category(self, category: str) -> List[Task]:
        validation.text("Manager.cancel_by_category", "category", category)
        return [self.cancel(tid) for tid, t in list(self._tasks.items()) if t.category == category]

    def tasks(self) -> List[Task]:
        """The tasks submitted and not yet returned by wait()."""
        return list(self._tasks.values())

    # -- workers and files ----------------------------------------------------------------------
    def declare_temp(self, remote: str = "") -> File:
        """A new temporary file (TaskVine's ``declare_temp``; the same as ``File.temp()``): a task's
        output that stays in its worker's cache, for later tasks' inputs. ``fetch`` brings it back."""
        return File.temp(validation.text("Manager.declare_temp", "remote", remote))

    def fetch(self, f: File, path: Optional[str] = None, timeout: float = FETCH_TIMEOUT) -> Optional[bytes]:
        """The content of a temporary file, from a worker holding it (it does not pass through the
        master's loop): returned as bytes, or written to ``path`` (then None). Raises
        FileNotFoundError if no worker holds it, OSError if none of them could give it."""
        if not isinstance(f, File) or f.temp_id is None:
            validation.refuse(TypeError, "Manager.fetch", "f", "a temporary file (File.temp())", f)
        path = validation.path("Manager.fetch", "path", path, allow_none=True)
        self._check_open()
        reply: "queue.SimpleQueue[Any]" = queue.SimpleQueue()
        self._send("locate", f.temp_id, reply)
        where = self._get_while_loop_runs(reply, time.monotonic() + STATUS_TIMEOUT)
        if where is None:
            raise TimeoutError(f"the manager's loop did not answer in {STATUS_TIMEOUT} s")
        if "error" in where:
            raise FileNotFoundError(where["error"])
        return fetch_temp(self._ctx, where, path, timeout)

    def prune(self, files: List[File], forget: bool = False) -> None:
        """Remove these temporary files' copies from the workers, now or once the pending tasks
        reading them are done (TaskVine's ``prune_file``; for ``File.temp(until_pruned=True)``); a task
        reading one later has it made again (lineage). ``forget``: the master forgets each one no
        pending task writes or reads (TaskVine's ``undeclare_file``): a later reader fails."""
        if not isinstance(files, (list, tuple)) or not all(isinstance(f, File) and f.temp_id for f in files):
            validation.refuse(TypeError, "Manager.prune", "files", "a list of temporary files (File.temp())", files)
        self._send("prune", [f.temp_id for f in files], bool(forget))

    def invalidate_cache_file(self, local_path: str) -> None:
        """Tell every worker to drop its cached copy of this file."""
        local_path = validation.path("Manager.invalidate_cache_file", "local_path", local_path)
        self._send("invalidate", os.path.abspath(local_path))

    def shutdown_workers(self, count: int = 0) -> None:
        """Ask ``count`` idle workers (0: all) to exit."""
        self._send("shutdown_workers", validation.count("Manager.shutdown_workers", "count", count))

    def block_host(self, host: str, timeout: Optional[float] = None) -> None:
        """Send no new task to workers whose hostname, address or worker id is ``host`` (for
        ``timeout`` seconds; None: until unblocked). Tasks already there, running or queued, finish."""
        host = validation.text("Manager.block_host", "host", host)
        timeout = validation.seconds("Manager.block_host", "timeout", timeout)
        self._send("block_host", host, timeout)

    def unblock_host(self, host: Optional[str] = None) -> None:
        """Lift the block on ``host`` (None: on every host)."""
        self._send("unblock_host", validation.text("Manager.unblock_host", "host", host, allow_none=True))

    def set_algorithm(self, algorithm: str) -> None:
        """How a task picks among the workers that fit it: "files" (the default: the one caching most
        bytes of its cached input files), "fcfs" (the first), "time" (the one whose finished tasks ran
        quickest on average), "random", "worst_fit" (most free). A task may name its own
        (``Task.set_algorithm``)."""
        self._send("scheduling", "algorithm", validation.one_of("Manager.set_algorithm", "algorithm", algorithm,
                                                                scheduler.ALGORITHMS))

    def set_task_order(self, order: str) -> None:
        """Among waiting tasks of equal priority, "fifo" (the default: oldest first) or "lifo"
        (newest first); applies to tasks submitted from now on."""
        self._send("scheduling", "task_order", validation.one_of("Manager.set_task_order", "order", order,
                                                                 scheduler.TASK_ORDERS))

    def tune(self, name: str, value: float) -> None:
        """Change a setting by its CCTools name (see workqueue/manager/tuning.py for each and what it does):
        keepalive-interval, keepalive-timeout, hungry-minimum, hungry-minimum-factor, wait-for-workers,
        category-steady-n-tasks, fast-abort-multiplier, prefetch, temp-replica-count. CCTools names that
        cannot apply here warn once, saying why; any other name raises ValueError."""
        key = tuning.canonical(validation.text("Manager.tune", "name", name))
        if not tuning.is_known(key):
            raise ValueError(f"Manager.tune: no setting is called {name!r} (known: "
                             f"{', '.join(sorted(tuning.HONOURED))}; and CCTools' {', '.join(sorted(tuning.WITHOUT_EFFECT))})")
        value = int(value) if isinstance(value, bool) else value
        value = validation.number("Manager.tune", name, value, above=0 if key in POSITIVE_SETTINGS else None)
        if key in tuning.WITHOUT_EFFECT:
            if key not in self._tunes_warned:
                self._tunes_warned.add(key)
                log.warning("tune(%r) has no effect in workqueue: %s", name, tuning.WITHOUT_EFFECT[key])
            return
        self._send("tune", key, value)

    def set_password(self, password: Optional[Union[str, bytes]]) -> None:
        """Require workers to prove they know this password (None: anyone may join)."""
        self._send("configure", "password", validation.password("Manager.set_password", password))

    def set_transactions_log(self, path: Optional[str]) -> None:
        """Log task and worker events to this file (None: stop logging); raises if it cannot be written."""
        path = validation.path("Manager.set_transactions_log", "path", path, allow_none=True)
        _check_writable(path)
        self._send("configure", "transactions_log", path)

    def set_category_max_resources(self, category: str, resources: Dict[str, Optional[float]]) -> None:
        """Tasks of ``category`` that declare no resources get these instead of a whole worker."""
        category = validation.text("Manager.set_category_max_resources", "category", category)
        checked = validation.resources("Manager.set_category_max_resources", resources)
        self._send("category_max", category, {k: v for k, v in checked.items() if v is not None})

    def set_category_mode(self, category: str, mode: int) -> None:
        """How tasks of ``category`` that declare nothing (or part) are sized, and whether one that runs
        out of its allocation is retried at the category max: categories.Mode FIXED (0, the default),
        MAX (1), MIN_WASTE (2) or MAX_THROUGHPUT (3), CCTools' values. See workqueue/scheduling/categories.py."""
        category = validation.text("Manager.set_category_mode", "category", category)
        mode = validation.count("Manager.set_category_mode", "mode", mode)
        self._send("category", "mode", category, Mode(mode))

    def set_category_autolabel_resource(self, category: str, resource: str, autolabel: bool) -> None:
        """Whether an automatic mode guesses ``resource`` ("cores", "memory" or "disk") for tasks of
        ``category`` from their measured peaks (the default) or leaves it at the category max."""
        where = "Manager.set_category_autolabel_resource"
        category = validation.text(where, "category", category)
        resource = validation.one_of(where, "resource", resource, ("cores", "memory", "disk", "gpus"))
        self._send("category", "autolabel", category, resource, bool(autolabel))

    def set_category_min_resources(self, category: str, resources: Dict[str, Optional[float]]) -> None:
        """The least a guessed allocation gives a task of ``category`` (automatic modes only)."""
        self._set_category_resources("min", "Manager.set_category_min_resources", category, resources)

    def set_category_first_allocation_guess(self, category: str, resources: Dict[str, Optional[float]]) -> None:
        """What tasks of ``category`` get, in an automatic mode, until enough of them have finished
        to guess from (tune "category-steady-n-tasks")."""
        self._set_category_resources("first_guess", "Manager.set_category_first_allocation_guess", category,
                                     resources)

    def set_fast_abort(self, multiplier: float, category: Optional[str] = None) -> None:
        """Stop and run again (wherever the scheduler places it; it counts as an attempt) a task that
        runs longer than ``multiplier`` x the mean wall time of its category's tasks that succeeded,
        once there are 10 of them. For the queue (``category`` None) or one category; below 1: off (a
        category's negative multiplier means the queue's). See workqueue/scheduling/categories.py."""
        multiplier = validation.number("Manager.set_fast_abort", "multiplier", multiplier)
        category = validation.text("Manager.set_fast_abort", "category", category, allow_none=True)
        self._send("fast_abort", category, multiplier)

    def enable_monitoring(self, enabled: bool = True, summaries: Optional[str] = None) -> None:
        """Count what workers measure (peak cores, memory, disk of each task) towards its category's
        guesses. Workers always measure and enforce declared memory and disk: this is only that switch.
        ``summaries``: a directory where ``wait`` writes each finished task's resource summary (JSON, in
        the shape of CCTools' resource monitor; see monitor_summaries.py)."""
        self._summaries = validation.path("Manager.enable_monitoring", "summaries", summaries, allow_none=True)
        self._send("monitoring", bool(enabled))

    def estimate_capacity(self) -> None:
        """From now on, ``stats`` estimates how many workers this master could keep busy
        (``capacity_tasks``, ``_cores``, ``_memory``, ``_disk``, ``_instantaneous``, ``_weighted``:
        see workqueue/scheduling/capacity.py); until then they read 0."""
        self._send("estimate_capacity")

    def _set_category_resources(self, setting: str, where: str, category: str,
                                resources: Dict[str, Optional[float]]) -> None:
        category = validation.text(where, "category", category)
        checked = validation.resources(where, resources)
        self._send("category", setting, category, {k: v for k, v in checked.items() if v is not None})

    def set_name(self, name: str) -> None:
        """Advertise this master under ``name``, for workers started with ``-M NAME``."""
        self.name = validation.text("Manager.set_name", "name", name)
        self._start_advertising(self.name)

    @property
    def stats(self) -> Dict[str, Any]:
        """A snapshot of counters: workers, tasks, bytes, cache hits, requeues."""
        self._check_loop()
        return dict(self._loop.snapshot)

    def status(self, what: str = "queue") -> Any:
        """The same answer ``workqueue status`` gets over the network ("queue", "workers" or "tasks")."""
        validation.text("Manager.status", "what", what)
        return self._ask(what)

    def task_state(self, task_id: int) -> TaskState:
        """Where a task is: READY (waiting for a worker), RUNNING (sent to one), RETRIEVED (finished,
        not yet returned by ``wait``), DONE (returned by ``wait``), CANCELED, or UNKNOWN."""
        task_id = validation.task_id("Manager.task_state", task_id)
        if task_id in self._canceled:
            return TaskState.CANCELED
        if task_id not in self._tasks:
            return TaskState.DONE if 0 < task_id <= self._submitted else TaskState.UNKNOWN
        self._collect_finished()
        if any(arrived_id == task_id for arrived_id, _ in self._arrived):
            return TaskState.RETRIEVED
        where = self._ask(("task", task_id))
        if where == "gone":
            return TaskState.RETRIEVED  # it finished while we asked
        return TaskState.RUNNING if where == "running" else TaskState.READY

    def category_stats(self, category: str) -> Dict[str, Any]:
        """One category's figures: its tasks waiting, running, done, failed, and its allocation mode,
        max and first allocation (CCTools' ``stats_category``)."""
        return self._ask(("category", validation.text("Manager.category_stats", "category", category)))

    def _ask(self, what: Any) -> Any:
        self._check_open()
        reply: "queue.SimpleQueue[Any]" = queue.SimpleQueue()
        self._send("status", what, reply)
        answer = self._get_while_loop_runs(reply, time.monotonic() + STATUS_TIMEOUT)
        if answer is None:
            raise TimeoutError(f"the manager's loop did not answer a status request in {STATUS_TIMEOUT} s")
        return answer

    def _collect_finished(self) -> None:
        """Move what the loop has handed over into ``_arrived``, without waiting."""
        while True:
            try:
                self._arrived.extend(self._finished.get_nowait())
            except queue.Empty:
                return

    # -- seeing the run (workqueue/web) ---------------------------------------------------------
    def start_dashboard(self, port: int = 0, host: str = "127.0.0.1") -> str:
        """Serve the live dashboard and ``/metrics`` on ``port`` (0: any free one) and return its URL.
        Read-only; nothing is computed until a page asks. Bound to any address but this machine's
        own, it needs a token derived from this manager's password (in the URL returned) and refuses to
        start for a manager without a password."""
        from ..web import server, source
        port = _dashboard_port("Manager.start_dashboard", "port", port)
        host = validation.text("Manager.start_dashboard", "host", host)
        self._check_open()
        if self._dashboard is not None:
            self._dashboard.close()
        self._dashboard = server.start(source.local(self), port, host)
        weakref.finalize(self, self._dashboard.close)
        return self._dashboard.url

    @property
    def dashboard_url(self) -> Optional[str]:
        """Where the dashboard is served (None: it is not)."""
        return self._dashboard.url if self._dashboard is not None else None

    def progress(self, notebook: Optional[bool] = None, **bar_options: Any) -> Any:
        """A progress bar (tqdm) over the tasks submitted: in a notebook it returns at once and keeps
        itself up to date; in a terminal it blocks until every task has finished (it takes no task from
        ``wait``)."""
        from ..web.progress import manager_progress
        return manager_progress(self, notebook, **bar_options)

    def _repr_html_(self) -> str:
        from ..web.notebook import manager_html
        return manager_html(self)

    # -- life cycle -----------------------------------------------------------------------------
    def close(self) -> None:
        """Stop the loop, close the socket; workers see the master go and wait for a new one."""
        if self._closed:
            return
        self._closed = True
        if self._dashboard is not None:
            self._dashboard.close()
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

    def _check_loop(self) -> None:
        """Raise ``ManagerLoopStopped`` if the loop thread died (or is dying) on its own; a closed
        manager's loop stopped because it was asked to."""
        if self._closed:
            return
        failure = self._loop.failure
        if failure is not None or not self._thread.is_alive():
            raise ManagerLoopStopped(failure) from failure

    def _get_while_loop_runs(self, source: "queue.SimpleQueue[Any]", deadline: Optional[float]) -> Any:
        """The next item of ``source``, or None once ``deadline`` (monotonic; None: never) passes or
        the manager is closed. Blocks in short slices, so a loop thread that dies meanwhile raises
        here instead of leaving the caller blocked for ever."""
        while True:
            remaining = LIVENESS_SLICE if deadline is None else min(LIVENESS_SLICE, deadline - time.monotonic())
            try:
                return source.get(timeout=max(0.0, remaining))
            except queue.Empty:
                self._check_loop()
                if self._closed or (deadline is not None and time.monotonic() >= deadline):
                    return None

    def _send(self, *command: Any) -> None:
        self._check_loop()
        self._enqueue(command)

    def _enqueue(self, command: Tuple[Any, ...]) -> None:
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
        from .. import catalog
        if self._advertiser is not None:
            self._advertiser.close()
        self._advertiser = catalog.advertise(name, socket.gethostname(), self.port)
        self._send("advertiser", self._advertiser)


def _dashboard_port(where: str, name: str, value: Any) -> int:
    port = validation.count(where, name, value)
    if port > 65535:
        validation.refuse(ValueError, where, name, "a port number from 0 to 65535", value)
    return port


def _check_writable(path: Optional[str]) -> None:
    """Open ``path`` for appending, as the loop thread will: a path that cannot be written raises
    here, in the caller's thread, instead of stopping the loop."""
    if path is not None:
        open(path, "a").close()


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


def _write_summary(task: Task, directory: str) -> None:
    """A task's resource summary; a directory that cannot be written costs a warning, not the task."""
    from .monitor_summaries import write_summary
    try:
        write_summary(task, directory)
    except Exception as error:  # the task is the user's already: a summary must not take it away
        log.warning("could not write the resource summary of task %s into %r: %s", task.id, directory, error)
