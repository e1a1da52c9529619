"""The worker: connect to a master, say hello, run what it sends, report back, reconnect.

One thread and one poller: the DEALER socket and a pidfd per running task. A task's exit wakes the
poller at once, so there is no polling delay between a task ending and its result leaving.
"""
from __future__ import annotations

import contextlib
import errno
import logging
import math
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, ContextManager, Dict, List, Optional, Tuple

import psutil
import zmq

from . import auth, protocol
from .cache import Cache
from .constants import Result
from .coprocess import CoprocessPool
from .pyfunc import FunctionPool
from .sandbox import SAMPLE_INTERVAL, Sandbox, SandboxDirs
from .transfer import FileSource, Incoming, Outbox, TransferError

log = logging.getLogger("workqueue.worker")

HELLO_TIMEOUT = 10.0
RESULT_HOLD_SECONDS = 0.005
RESULT_HOLD_MAX = 64


class WorkerStopped(Exception):
    """Raised by the SIGTERM/SIGINT handler to unwind the loop and clean up."""


class WorkerRejected(Exception):
    """The master refused us (wrong password, wrong version): retrying would not help."""


@dataclass
class Options:
    host: Optional[str] = None
    port: Optional[int] = None
    manager_name: Optional[str] = None
    catalog: Optional[str] = None
    cores: Optional[float] = None
    memory: Optional[int] = None
    disk: Optional[int] = None
    gpus: Optional[int] = None
    workdir: Optional[str] = None
    idle_timeout: float = 900.0
    connect_timeout: float = 900.0
    single_shot: bool = False
    password: Optional[bytes] = None
    features: List[str] = field(default_factory=list)
    min_backoff: float = 1.0
    max_backoff: float = 60.0
    keep_cache: bool = False
    coprocess: Optional[str] = None
    coprocesses_total: Optional[int] = None
    curve_key: Optional[str] = None
    curve_server_key: Optional[str] = None


def detect_resources(workdir: str, options: Options) -> Dict[str, float]:
    """What this machine offers, unless the options say otherwise (memory and disk in MB)."""
    cores = options.cores or _env_number("CORES") or os.cpu_count() or 1
    memory = options.memory or _env_number("MEMORY") or psutil.virtual_memory().total // (1 << 20)
    disk = options.disk or _env_number("DISK") or shutil.disk_usage(workdir).free // (1 << 20)
    gpus = options.gpus if options.gpus is not None else (_env_number("GPUS") or _count_gpus())
    return {"cores": float(cores), "memory": float(memory), "disk": float(disk), "gpus": float(gpus)}


def _env_number(name: str) -> Optional[float]:
    value = os.environ.get(name)
    try:
        return float(value) if value else None
    except ValueError:
        return None


def _count_gpus() -> int:
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return len([d for d in visible.split(",") if d.strip()])
    return len([d for d in os.listdir("/dev") if d.startswith("nvidia") and d[6:].isdigit()]) if os.path.isdir("/dev") else 0


class _Session:
    """One connection to one master; ends when the master is lost, resets us, or we go idle."""

    def __init__(self, worker: "Worker", address: str) -> None:
        self.worker = worker
        self.address = address
        self.socket = worker.ctx.socket(zmq.DEALER)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.setsockopt(zmq.SNDHWM, 0)
        self.monitor: Optional[zmq.Socket] = None
        if worker.options.curve_server_key:
            from . import curve
            curve.connect_as_client(self.socket, worker.options.curve_key or _default_curve_key(worker),
                                    worker.options.curve_server_key)
            self.monitor = self.socket.get_monitor_socket(curve.HANDSHAKE_FAILURES)
        self.socket.connect(address)
        self.outbox = Outbox()
        self.incoming: Dict[int, Tuple[Incoming, str, int]] = {}
        self.welcomed = False
        self.manager_nonce = b""
        self.nonce = auth.new_nonce()
        self.keepalive = 5.0
        self.timeout = 30.0
        self.last_heard = time.monotonic()
        self.last_sent = 0.0
        self.xfers = 0
        self.held: List[List[Any]] = []
        self.held_since = 0.0

    def send(self, frames: List[Any]) -> None:
        self.outbox.message(frames)

    def hold_result(self, frames: List[Any]) -> None:
        """Results wait briefly while this worker has queued tasks, so that several leave in one
        message: each message costs a wake-up of both ZeroMQ I/O threads and of the master's loop,
        and the master has already given this worker its next tasks. See :meth:`release_results`."""
        if not self.held:
            self.held_since = time.monotonic()
        self.held.append(frames)

    def release_results(self, queued: int) -> None:
        """Let held results go once they are as many as the tasks still ``queued`` here, or
        RESULT_HOLD_MAX, or RESULT_HOLD_SECONDS after the first; at once when nothing is queued.

        Holding them until the queue ran dry starved the worker: the master then spent as long
        on the results (about 65 us each) as the worker had spent on the tasks, while the worker
        waited for more; released at half-way, the refill arrives before the queue is empty."""
        if not self.held:
            return
        if len(self.held) < min(queued, RESULT_HOLD_MAX) and self.hold_left() > 0:
            return
        for frames in self.held:
            self.outbox.message(frames)
        self.held.clear()

    def hold_left(self) -> float:
        return self.held_since + RESULT_HOLD_SECONDS - time.monotonic()

    def flush(self) -> None:
        """Send what can go now; with no connected master yet, it stays queued."""
        try:
            self.outbox.pump(self._send_now)
        except zmq.Again:
            pass

    def send_now(self, frames: List[Any]) -> None:
        """Past the outbox: for acknowledgements, which must not wait behind queued files."""
        try:
            self._send_now(frames)
        except zmq.Again:
            self.outbox.message(frames)

    def _send_now(self, frames: List[Any]) -> None:
        self.socket.send_multipart(frames, zmq.NOBLOCK, copy=False)
        self.last_sent = time.monotonic()

    def close(self) -> None:
        self.outbox.close()
        for incoming, _, _ in self.incoming.values():
            incoming.abort()
        if self.monitor is not None:
            self.socket.disable_monitor()
            self.monitor.close(0)
        self.socket.close(0)


def _default_curve_key(worker: "Worker") -> str:
    return os.path.join(worker.workspace, "worker.key_secret")


class Worker:
    def __init__(self, options: Options) -> None:
        self.options = options
        self.worker_id = f"worker-{uuid.uuid4().hex[:12]}"
        self.hostname = socket.gethostname()
        parent = options.workdir or os.environ.get("_CONDOR_SCRATCH_DIR") or tempfile.gettempdir()
        self.workspace = os.path.join(os.path.abspath(parent), f"worker-{os.getuid()}-{os.getpid()}")
        self.resources: Dict[str, float] = {}
        self.cache: Optional[Cache] = None
        self.dirs = SandboxDirs(self.workspace)
        self.base_env = dict(os.environ)  # copied once: reading os.environ decodes every variable
        self.running: Dict[int, Sandbox] = {}
        self.queued: List[Sandbox] = []  # prefetched: inputs staged, waiting for resources
        self.free: Dict[str, float] = {}
        self.by_pidfd: Dict[int, Sandbox] = {}
        self.functions: Optional[FunctionPool] = None
        self.coprocesses: Optional[CoprocessPool] = None
        self.ctx: Optional[zmq.Context] = None
        self.last_activity = time.monotonic()
        self.session: Optional[_Session] = None
        self.tasks_done = 0
        self.failed_inputs: Dict[str, Exception] = {}
        self.reported: List[Sandbox] = []  # finished and reported: emptied once the results have gone

    # -- life cycle -----------------------------------------------------------------------------
    def run(self) -> int:
        """Serve masters until idle, shut down, or stopped; return the process exit code."""
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        self.ctx = zmq.Context()
        try:
            os.makedirs(self.workspace, exist_ok=True)
            self.resources = detect_resources(self.workspace, self.options)
            self.free = dict(self.resources)
            budget = int(self.resources["disk"]) << 20 if self.options.disk else None
            self.cache = Cache(os.path.join(self.workspace, "cache"), budget)
            if self.options.coprocess:
                size = self.options.coprocesses_total or max(1, int(self.resources["cores"]))
                self.coprocesses = CoprocessPool(self.options.coprocess, self.workspace, size)
                log.info("started %d coprocess(es) %r", size, self.coprocesses.name)
            log.info("%s in %s with %s", self.worker_id, self.workspace, self.resources)
            return self._serve()
        except WorkerStopped:
            log.info("stopped by a signal")
            return 0
        except WorkerRejected as rejection:
            print(f"work_queue_worker: {rejection}", file=sys.stderr, flush=True)
            return 1
        finally:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            self._kill_all()
            for pool in (self.functions, self.coprocesses):
                if pool is not None:
                    pool.close()
            if self.session is not None:
                self.session.close()
            self.ctx.destroy(0)
            if not self.options.keep_cache:
                shutil.rmtree(self.workspace, ignore_errors=True)
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _on_signal(self, signum: int, frame: Any) -> None:
        raise WorkerStopped(signum)

    def _serve(self) -> int:
        backoff = self.options.min_backoff
        last_connected = time.monotonic()
        while True:
            outcome = "unreachable"
            for address in self._addresses():
                outcome = self._run_session(address)
                if outcome != "unreachable":
                    break
            if outcome in ("idle", "shutdown"):
                return 0
            if outcome == "reset":
                continue
            if outcome == "served":
                last_connected = time.monotonic()
                backoff = self.options.min_backoff
                if self.options.single_shot:
                    return 0
            if time.monotonic() - last_connected > self.options.connect_timeout:
                log.error("no manager reachable for %.0f s: giving up", self.options.connect_timeout)
                return 1
            log.info("reconnecting in %.1f s", backoff)
            time.sleep(backoff)
            backoff = min(backoff * 2, self.options.max_backoff)

    def _addresses(self) -> List[str]:
        """Where to look for a master: HOST PORT, or every master whose name matches -M, newest first."""
        if not self.options.manager_name:
            return [f"tcp://{self.options.host}:{self.options.port}"]
        from . import catalog
        found = catalog.lookup(self.options.manager_name, self.options.catalog)
        if not found:
            log.info("no manager named %r found yet", self.options.manager_name)
        return [f"tcp://{host}:{port}" for _, host, port in found]

    # -- one session ----------------------------------------------------------------------------
    def _run_session(self, address: str) -> str:
        """Returns 'idle', 'shutdown', 'reset', 'served' (connected, then lost) or 'unreachable'."""
        session = self.session = _Session(self, address)
        try:
            session.send(protocol.hello(
                self.worker_id, self.hostname, self.resources, nonce=session.nonce, features=self.options.features,
                coprocesses=[self.coprocesses.name] if self.coprocesses else []))
            return self._session_loop(session)
        finally:
            self._kill_all()
            session.close()
            self.session = None

    def _session_loop(self, session: _Session) -> str:
        poller = zmq.Poller()
        poller.register(session.socket, zmq.POLLIN)
        if session.monitor is not None:
            poller.register(session.monitor, zmq.POLLIN)
        watched: set = set()
        pools_watched: set = set()
        started = time.monotonic()
        while True:
            session.release_results(queued=len(self.queued))
            session.flush()
            if not session.held:
                self._clean_reported()
            for fd in self.by_pidfd.keys() - watched:
                poller.register(fd, zmq.POLLIN)
                watched.add(fd)
            for pool in (self.functions, self.coprocesses):
                if pool is not None and pool.fileno() not in pools_watched:
                    poller.register(pool.fileno(), zmq.POLLIN)
                    pools_watched.add(pool.fileno())
            events = poller.poll(self._poll_timeout_ms(session))
            with self._calls_batched():
                for sock, _ in events:
                    if sock is session.socket:
                        outcome = self._receive(session)
                        if outcome:
                            return outcome
                    elif sock in pools_watched:
                        self._calls_finished(session)
                    elif sock is session.monitor:
                        session.monitor.recv_multipart()
                        raise WorkerRejected("authentication failed: the manager refused this worker's CURVE "
                                             "key (or --curve-server-key is not the manager's public key)")
                    else:
                        poller.unregister(sock)
                        watched.discard(sock)
                        sandbox = self.by_pidfd.pop(sock, None)
                        if sandbox is not None:
                            self._task_exited(session, sandbox)
            now = time.monotonic()
            if not session.welcomed and now - started > min(HELLO_TIMEOUT, self.options.connect_timeout):
                log.info("no answer from %s", session.address)
                return "unreachable"
            if session.welcomed and now - session.last_heard > session.timeout:
                log.warning("the manager at %s is silent for %.0f s: reconnecting", session.address,
                            now - session.last_heard)
                return "served"
            self._enforce_limits(session)
            if session.welcomed and now - session.last_sent > session.keepalive:
                session.send(protocol.encode("heartbeat"))
            if session.outbox.streaming or session.incoming:
                self.last_activity = now  # moving files is work: never idle out mid-transfer
            if session.welcomed and not self.running and not self.queued and \
                    now - self.last_activity > self.options.idle_timeout:
                log.info("idle for %.0f s: exiting", self.options.idle_timeout)
                session.release_results(queued=0)
                session.send(protocol.encode("bye", reason="idle timeout"))
                session.flush()
                return "idle"

    def _calls_batched(self) -> ContextManager[None]:
        """Function calls started while handling one round of events reach each pooled process
        in one write (see :meth:`FunctionPool.batch`)."""
        return self.functions.batch() if self.functions is not None else contextlib.nullcontext()

    def _poll_timeout_ms(self, session: _Session) -> int:
        wait = min(session.keepalive, 1.0)
        if self.running:
            wait = min(wait, SAMPLE_INTERVAL)
        if session.outbox.pending:
            wait = 0.05
        if session.held:
            wait = min(wait, max(0.0, session.hold_left()))
        return math.ceil(wait * 1000)

    def _receive(self, session: _Session) -> Optional[str]:
        for _ in range(256):
            try:
                frames = session.socket.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return None
            session.last_heard = time.monotonic()
            try:
                parts = protocol.split(frames)
            except protocol.ProtocolError as error:
                log.warning("dropped a message from the manager: %s", error)
                continue
            for part in parts:
                outcome = self._handle(session, part)
                if outcome:
                    return outcome
            if self.queued:
                self._start_queued(session)  # once for the whole bundle, not once per task in it
        return None

    def _handle(self, session: _Session, frames: List[Any]) -> Optional[str]:
        try:
            message = protocol.decode(frames)
        except protocol.ProtocolError as error:
            log.warning("dropped a message from the manager: %s", error)
            return None
        handler = getattr(self, "_on_" + message.type.replace("-", "_"), None)
        if handler is None:
            log.warning("dropped an unexpected %r from the manager", message.type)
            return None
        if not session.welcomed and message.type not in ("welcome", "challenge", "reject", "reset"):
            log.warning("dropped %r received before the welcome", message.type)
            return None
        try:
            return handler(session, message)
        except WorkerRejected as rejection:
            session.send(protocol.encode("bye", reason=str(rejection)))
            session.flush()
            session.socket.setsockopt(zmq.LINGER, 1000)  # let the bye reach the master's log
            raise

    # -- handshake ------------------------------------------------------------------------------
    def _on_challenge(self, session: _Session, message: protocol.Message) -> Optional[str]:
        password = self.options.password
        if password is None:
            raise WorkerRejected("authentication failed: this manager requires a password (use -P FILE)")
        session.manager_nonce = message["nonce"]
        session.send(protocol.encode("auth", proof=auth.worker_proof(password, session.nonce, message["nonce"])))
        return None

    def _on_welcome(self, session: _Session, message: protocol.Message) -> Optional[str]:
        password = self.options.password
        if password is not None:
            if not session.manager_nonce:
                raise WorkerRejected("authentication failed: the manager did not ask for the password")
            expected = auth.manager_proof(password, session.manager_nonce, session.nonce)
            if not auth.verify(expected, message["proof"]):
                raise WorkerRejected("authentication failed: the manager does not know our password")
        session.welcomed = True
        kept = self.cache.kept()
        if kept:
            session.send(protocol.encode("cache-update", added=kept))
        session.keepalive = message["keepalive"]
        session.timeout = message["timeout"]
        self.last_activity = time.monotonic()
        log.info("connected to the manager at %s", session.address)
        return None

    def _on_reject(self, session: _Session, message: protocol.Message) -> Optional[str]:
        raise WorkerRejected(f"the manager refused this worker: {message['reason']}")

    def _on_reset(self, session: _Session, message: protocol.Message) -> Optional[str]:
        log.info("the manager does not know us (%s): dropping our tasks, saying hello again", message["reason"])
        return "reset"

    def _on_shutdown(self, session: _Session, message: protocol.Message) -> Optional[str]:
        log.info("the manager asked us to exit: %s", message["reason"])
        return "shutdown"

    def _on_heartbeat(self, session: _Session, message: protocol.Message) -> Optional[str]:
        return None

    def _on_ack(self, session: _Session, message: protocol.Message) -> Optional[str]:
        session.outbox.ack()
        return None

    # -- files ----------------------------------------------------------------------------------
    def _on_put(self, session: _Session, message: protocol.Message) -> Optional[str]:
        incoming = self.cache.receive(message["digest"], message["size"], message["xfer"])
        session.incoming[message["xfer"]] = (incoming, message["digest"], message["mode"])
        return None

    def _on_chunk(self, session: _Session, message: protocol.Message) -> Optional[str]:
        session.send_now(protocol.encode("ack", xfer=message["xfer"], seq=message["seq"]))
        entry = session.incoming.get(message["xfer"])
        if entry is None:
            return None
        incoming, digest, mode = entry
        try:
            done = incoming.add(message["seq"], protocol.as_buffer(message.payload[0]), message["last"],
                                message["digest"])
        except (TransferError, OSError) as error:
            log.warning("receiving %s failed: %s", digest, error)
            incoming.abort()
            session.incoming.pop(message["xfer"], None)
            self.failed_inputs[digest] = error
            session.send(protocol.encode("cache-update", removed=[digest]))
            return None
        if done:
            session.incoming.pop(message["xfer"])
            self.failed_inputs.pop(digest, None)
            evicted = self.cache.admit(digest, incoming, mode)
            if evicted:
                session.send(protocol.encode("cache-update", removed=evicted))
        return None

    def _on_invalidate(self, session: _Session, message: protocol.Message) -> Optional[str]:
        self.cache.remove(message["digest"])
        return None

    # -- tasks ----------------------------------------------------------------------------------
    def _on_task(self, session: _Session, message: protocol.Message) -> Optional[str]:
        self.last_activity = time.monotonic()
        task = message.fields
        sandbox = Sandbox(self.dirs, task, protocol.as_bytes(message.payload[0]))
        missing = sandbox.stage(self.cache)
        if missing is not None:
            self._report_missing_input(session, sandbox, missing)
            return None
        self.queued.append(sandbox)
        return None

    def _start_queued(self, session: _Session) -> None:
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
                self._report(session, sandbox, Result.UNKNOWN, -1, {}, f"could not start: {error}".encode())
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

    def _calls_finished(self, session: _Session) -> None:
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
                self._report(session, sandbox, result, 0 if status == "ok" else 1, measured, payload, missing)
        self._start_queued(session)

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

    def _report_missing_input(self, session: _Session, sandbox: Sandbox, digest: str) -> None:
        """A full disk fails the task clearly; a damaged transfer sends it back to run again."""
        name = next((n for d, n, _, _ in sandbox.task["inputs"] if d == digest), digest)
        error = self.failed_inputs.get(digest)
        if isinstance(error, OSError) and error.errno == errno.ENOSPC:
            message = f"no space left on worker {self.worker_id} ({self.hostname}) to receive input {name!r}"
            log.warning("task %d: %s", sandbox.task_id, message)
            self._report(session, sandbox, Result.DISK_ALLOC_FULL, -1, {}, message.encode())
        else:
            log.warning("task %d: input %r did not arrive intact (%s)", sandbox.task_id, name, error)
            self._report(session, sandbox, Result.FORSAKEN, -1, {}, f"input {name} did not arrive intact".encode())

    def _on_kill(self, session: _Session, message: protocol.Message) -> Optional[str]:
        for sandbox in [s for s in self.queued if s.task_id == message["task_id"]]:
            self.queued.remove(sandbox)
            self._drop_queued(sandbox)
        sandbox = self.running.pop(message["task_id"], None)
        if sandbox is not None:
            self._stop(sandbox)
            self._hold(sandbox.task["resources"], +1)
            self._throw_away(sandbox)
            self._start_queued(session)
        return None

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

    def _task_exited(self, session: _Session, sandbox: Sandbox) -> None:
        exit_code, measured = sandbox.reap()
        self.running.pop(sandbox.task_id, None)
        self._hold(sandbox.task["resources"], +1)
        self._start_queued(session)
        self.last_activity = time.monotonic()
        result, limits = Result.SUCCESS, {}
        if sandbox.killed_for is not None:
            result, limits = sandbox.killed_for
        elif exit_code < 0:
            result = Result.SIGNAL
        present, missing = sandbox.outputs()
        for name, path in present:
            self._send_output(session, sandbox, name, path)
        self._report(session, sandbox, result, exit_code, measured, sandbox.stdout(), missing, limits)

    def _send_output(self, session: _Session, sandbox: Sandbox, name: str, path: str) -> None:
        session.release_results(queued=0)  # results held so far must not wait behind this file
        source = FileSource(path)
        session.xfers += 1
        mode = os.stat(path).st_mode & 0o777
        header = protocol.encode("output", xfer=session.xfers, task_id=sandbox.task_id,
                                 attempt=sandbox.attempt, name=name, size=source.size, mode=mode)
        session.outbox.stream(session.xfers, header, source)

    def _report(self, session: _Session, sandbox: Sandbox, result: Result, exit_code: int,
                measured: Dict[str, float], stdout: bytes, missing: List[str] = (),
                limits: Optional[Dict[str, float]] = None) -> None:
        session.hold_result(protocol.encode(
            "result", [stdout], task_id=sandbox.task_id, attempt=sandbox.attempt, result=int(result),
            exit_code=exit_code, measured=measured, limits_exceeded=limits or {}, missing=list(missing),
            times={"start": measured.get("start", 0.0), "end": measured.get("end", 0.0)}))
        self.reported.append(sandbox)
        self.tasks_done += 1

    def _clean_reported(self) -> None:
        """Empty the sandboxes of reported tasks. This waits until their results are on their way
        because removing a task's files can take longer than sending them (46 ms for a 256 MiB
        input on tmpfs)."""
        while self.reported:
            sandbox = self.reported.pop()
            sandbox.cleanup(self.cache, reuse=sandbox.killed_for is None)  # a stopped call may yet start

    def _enforce_limits(self, session: _Session) -> None:
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

    def _end_call(self, session: _Session, sandbox: Sandbox) -> None:
        result, limits = sandbox.killed_for
        log.info("task %d exceeded %s: stopped", sandbox.task_id, limits)
        del self.running[sandbox.task_id]
        self._stop(sandbox)
        self._hold(sandbox.task["resources"], +1)
        self._report(session, sandbox, result, -1, sandbox.finish_call(),
                     f"stopped: {result.name} {limits}".encode(), [], limits)
        self._start_queued(session)

    def _drop_queued(self, sandbox: Sandbox) -> None:
        if sandbox.in_pool and self.functions is not None:
            self.functions.kill(str(sandbox.task_id))
        if self.cache is not None:
            self._throw_away(sandbox)

    def _throw_away(self, sandbox: Sandbox) -> None:
        """Clean up after a stopped task. A call that waited in a process's pipe is only canceled,
        and the process may have started it already: its directory is removed, not reused."""
        sandbox.cleanup(self.cache, reuse=not sandbox.in_pool)

    def _kill_all(self) -> None:
        if self.cache is not None:
            self._clean_reported()
        for sandbox in self.queued:
            self._drop_queued(sandbox)
        self.queued.clear()
        for sandbox in list(self.running.values()):
            self._stop(sandbox)
            if self.cache is not None:
                self._throw_away(sandbox)
        self.running.clear()
        self.by_pidfd.clear()
        self.free = dict(self.resources)


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


def main(argv: Optional[List[str]] = None) -> None:
    from .cli.worker import main as cli_main
    cli_main(argv)


if __name__ == "__main__":
    main()
