"""The worker: connect to a master, say hello, run what it sends, report back, reconnect.

One thread and one poller: the DEALER socket and a pidfd per running task. A task's exit wakes the
poller at once, so there is no polling delay between a task ending and its result leaving.

The rooms it uses: ``worker.session`` (one connection), ``worker.tasks`` (the tasks' books and
their processes), ``worker.files`` (files arriving into the cache), ``worker.resources`` and
``worker.grant`` (what this worker offers: never more than its batch job was granted),
``worker.workspace`` (its directory, and dead workers' left behind).

It says what it does: one INFO line per change of state (connecting, connected, the master gone and
why, reconnecting, exiting and why), shown by default (see :func:`show_state_changes`), and why a
master cannot be reached once, not at every attempt. Once it has served a master, the time without
one counts against its idle timeout (-t).

Every peer may be hostile, the master included: a message that cannot be handled is dropped with a
rate-limited log line and the worker keeps serving; only a rejection or a signal ends it.
"""
from __future__ import annotations

import logging
import math
import os
import signal
import socket
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional

import zmq

from ..data.cache import Cache
from ..data.reaper import Reaper
from ..ratelimit import LimitedLog
from ..wire import auth, protocol
from .coprocess import CoprocessPool
from .files import FileReceiver
from .lifetime import Lifetime
from .malloc_tuning import steady_malloc
from .peers import WorkerPeers
from .resources import Offer, detect_resources, offer_here
from .sandbox import SAMPLE_INTERVAL
from .session import Session
from .tasks import TaskRunner
from .workspace import Workspace, coprocess_root

__all__ = ["Options", "Worker", "WorkerRejected", "WorkerStopped", "detect_resources"]

log = logging.getLogger("workqueue.worker")

HELLO_TIMEOUT = 10.0  # how long an attempt waits for the master's welcome
TCP_PORTS = range(1, 65536)
# what a master may ask of heartbeats, in seconds: a keepalive near 0 would make the loop spin
KEEPALIVE_BOUNDS = (0.05, 3600.0)
TIMEOUT_BOUNDS = (0.1, 7 * 86400.0)
Handler = Callable[[Session, protocol.Message], Optional[str]]


HANDSHAKE = ("welcome", "challenge", "reject", "reset", "bye")  # what a master may say before its welcome
# Why an attempt failed, by what the socket's monitor saw (worker.session.TROUBLES)
LINK_TROUBLES = {
    "handshake": "its ZeroMQ security handshake failed: does the master use CURVE (--curve-server-key)?",
    "closed": "the connection closed before the master answered",
    "refused": "connection refused: is a master listening on that port?",
    "unresolved": "ZeroMQ cannot resolve the host name",
}


class WorkerStopped(BaseException):
    """Raised by the SIGTERM/SIGINT handler to unwind the loop and clean up. A BaseException, as
    KeyboardInterrupt is: the ``except Exception`` that keeps one bad message or task from ending
    the worker must not swallow a signal that arrives meanwhile."""


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
    coprocess_scratch: Optional[str] = None  # a parent directory, or "workspace" (see _coprocess_root)
    curve_key: Optional[str] = None
    curve_server_key: Optional[str] = None
    wall_time: Optional[float] = None
    parent_death: bool = False
    contact_host: Optional[str] = None  # how other workers reach this one's peer server (NAT)


class Worker:
    def __init__(self, options: Options) -> None:
        self.options = options
        self.worker_id = f"worker-{uuid.uuid4().hex[:12]}"
        self.hostname = socket.gethostname()
        parent = options.workdir or os.environ.get("_CONDOR_SCRATCH_DIR") or tempfile.gettempdir()
        self.space = Workspace(parent, keep=options.keep_cache)
        self.scratch: Optional[Workspace] = None  # where coprocess calls' sandboxes live, if not the workspace
        self.workspace = self.space.path
        self.complain = LimitedLog(log)
        self.resources: Dict[str, float] = {}
        self.cache: Optional[Cache] = None
        self.tasks: Optional[TaskRunner] = None
        self.files: Optional[FileReceiver] = None
        self.peers: Optional[WorkerPeers] = None
        self.handlers: Dict[str, Handler] = {}
        self.ctx: Optional[zmq.Context] = None
        self.session: Optional[Session] = None
        self.offer: Optional[Offer] = None
        self.served = False  # a master has welcomed this worker
        self.last_connected = time.monotonic()  # when this worker last had a master (or started)
        self.lifetime = Lifetime(self.last_connected, options.wall_time, options.parent_death)
        self._troubles: Dict[str, Optional[str]] = {}  # since the last master: where tried, last reason said

    # -- life cycle -----------------------------------------------------------------------------
    def run(self) -> int:
        """Serve masters until idle, shut down, or stopped; return the process exit code."""
        show_state_changes()
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        steady_malloc()
        self.ctx = zmq.Context()
        try:
            self.workspace = self.space.claim()
            self.offer = offer_here(self.workspace, self.options)
            self.resources = self.offer.resources
            budget = int(self.resources["disk"]) << 20 if self.options.disk else None
            self.cache = Cache(os.path.join(self.workspace, "cache"), budget,
                               Reaper(os.path.join(self.workspace, "trash")))
            self.tasks = TaskRunner(self.workspace, self.resources, self.cache, complain=self.complain)
            self.files = FileReceiver(self.cache, f"{self.worker_id} ({self.hostname})", self.complain)
            self.peers = WorkerPeers(self.ctx, self.cache, self.options.contact_host, self.complain,
                                     encrypted=bool(self.options.curve_server_key))
            self.handlers = self._message_handlers()
            if self.options.coprocess:
                size = self.options.coprocesses_total or max(1, int(self.resources["cores"]))
                root, self.scratch = coprocess_root(self.options.coprocess_scratch, self.workspace)
                self.tasks.dirs.coprocess_root = root
                self.tasks.coprocesses = CoprocessPool(self.options.coprocess, root, size)
                log.info("started %d coprocess(es) %r", size, self.tasks.coprocesses.name)
            log.info("%s (pid %d) on %s%s in %s, offering %s", self.worker_id, os.getpid(), self.hostname,
                     f", {self.offer.job}," if self.offer.job else "", self.workspace, self.offer.describe())
            return self._serve()
        except WorkerStopped as stop:
            log.info("exiting: stopped by %s", signal.Signals(stop.args[0]).name)
            return 0
        except WorkerRejected as rejection:
            print(f"work_queue_worker: {rejection}", file=sys.stderr, flush=True)
            return 1
        finally:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            if self.tasks is not None:
                self.tasks.close()
            if self.session is not None:
                self.session.close()
            if self.peers is not None:
                self.peers.close()
            if self.cache is not None and self.cache.reaper is not None:
                self.cache.reaper.close()
            self.ctx.destroy(0)
            self.space.release()
            if self.scratch is not None:
                self.scratch.release()
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _on_signal(self, signum: int, frame: Any) -> None:
        raise WorkerStopped(signum)

    def _serve(self) -> int:
        """Find a master, serve it, look for one again when it goes; exit when idle or given up."""
        if not self.options.manager_name and self.options.port not in TCP_PORTS:
            log.error("exiting: %s is not a TCP port (1 to 65535)", self.options.port)
            return 1
        backoff = self.options.min_backoff
        self.last_connected = time.monotonic()
        while True:
            code = self._give_up()
            if code is not None:
                return code
            why = self.lifetime.over(time.monotonic())
            if why is not None:
                log.info("exiting: %s", why)
                return 0
            outcome = self._visit_masters()
            if outcome in ("idle", "shutdown"):
                return 0
            if outcome == "reset":
                continue
            if outcome == "served":
                backoff = self.options.min_backoff
                if self.options.single_shot:
                    log.info("exiting: the master is gone and --single-shot serves only one")
                    return 0
            left = min(self._deadline(), self.lifetime.ends_at) - time.monotonic()
            if backoff < left:
                log.info("reconnecting in %.3g s", backoff)
            time.sleep(max(0.0, min(backoff, left)))  # to the deadline at most: then the exit says why
            backoff = min(backoff * 2, self.options.max_backoff)

    def _deadline(self) -> float:
        """When a worker without a master gives up. Once it has served one, its idle timeout counts
        from its last task, with or without a master; and always, the connect timeout from when it
        last had one (or started)."""
        deadline = self.last_connected + self.options.connect_timeout
        if self.served:
            deadline = min(deadline, self.tasks.last_activity + self.options.idle_timeout)
        return deadline

    def _give_up(self) -> Optional[int]:
        """The exit code once the deadline has passed (0 idle after serving, 1 never reached a
        master in time), else None."""
        now = time.monotonic()
        if now < self._deadline():
            return None
        if self.served and now >= self.tasks.last_activity + self.options.idle_timeout:
            log.info("exiting: idle for %.0f s, the last %.0f s without a master", now - self.tasks.last_activity,
                     now - self.last_connected)
            return 0
        log.error("exiting: no master reachable for %.0f s", now - self.last_connected)
        return 1

    def _visit_masters(self) -> str:
        """One attempt at each place a master may be, until one is served."""
        outcome = "unreachable"
        for address in self._addresses():
            outcome = self._run_session(address)
            if outcome != "unreachable":
                break
        return outcome

    def _addresses(self) -> List[str]:
        """Where to look for a master: HOST PORT, or every master whose name matches -M, newest first."""
        if not self.options.manager_name:
            return [f"tcp://{self.options.host}:{self.options.port}"]
        from .. import catalog
        found = catalog.lookup(self.options.manager_name, self.options.catalog)
        if not found:
            self._trouble(f"a master named {self.options.manager_name!r}", "the catalog knows none yet")
        return [f"tcp://{host}:{port}" for _, host, port in found]

    def _trouble(self, where: str, reason: str) -> None:
        """Why ``where`` cannot be reached: said once, then again only when the reason changes."""
        level = logging.INFO if self._troubles.get(where) != reason else logging.DEBUG
        self._troubles[where] = reason
        log.log(level, "cannot reach %s: %s", where, reason)

    def _say_connecting(self, address: str) -> None:
        where = _master_at(address)
        log.log(logging.DEBUG if where in self._troubles else logging.INFO, "connecting to %s", where)
        self._troubles.setdefault(where, None)

    def _master_gone(self, session: Session, why: str) -> None:
        log.info("%s is gone: %s", _master_at(session.address), why)

    # -- one session ----------------------------------------------------------------------------
    def _run_session(self, address: str) -> str:
        """Returns 'idle', 'shutdown', 'reset', 'served' (connected, then lost) or 'unreachable'."""
        self._say_connecting(address)
        problem = _address_problem(address)
        if problem is None:
            try:
                self.session = Session(self.ctx, address, self._curve())
            except zmq.ZMQError as error:
                problem = f"ZeroMQ refuses this address: {error}"
        if problem is not None:
            self._trouble(_master_at(address), problem)
            return "unreachable"
        session = self.session
        try:
            session.send(protocol.hello(
                self.worker_id, self.hostname, self.resources, nonce=session.nonce, features=self.options.features,
                coprocesses=[self.tasks.coprocesses.name] if self.tasks.coprocesses else [], cached=self.cache.kept(),
                time_left=self.lifetime.time_left(time.monotonic()), peer=self.peers.address,
                peer_curve=self.peers.curve_public))
            return self._session_loop(session)
        except WorkerStopped as stop:
            if session.welcomed:
                session.say_bye(f"stopped by {signal.Signals(stop.args[0]).name}")
            raise
        finally:
            self._end_session(session)

    def _end_session(self, session: Session) -> None:
        """Its tasks die with it. A master lost while tasks ran leaves the worker idle from the
        moment it was last heard: that time without a master counts against the idle timeout."""
        busy = bool(self.tasks.running or self.tasks.queued)
        self.tasks.kill_all()
        self.peers.end_session()
        self.cache.drop_temps()
        if session.welcomed:
            self.last_connected = time.monotonic()
            if busy:
                self.tasks.last_activity = max(self.tasks.last_activity, session.last_heard)
        session.close()
        self.session = None

    def _curve(self) -> Optional[tuple]:
        """(the master's public key file, ours) when the connection is to be encrypted."""
        if not self.options.curve_server_key:
            return None
        own = self.options.curve_key or os.path.join(self.workspace, "worker.key_secret")
        return self.options.curve_server_key, own

    def _session_loop(self, session: Session) -> str:
        tasks = self.tasks
        poller = zmq.Poller()
        poller.register(session.socket, zmq.POLLIN)
        poller.register(session.monitor, zmq.POLLIN)
        poller.register(self.peers.fileno(), zmq.POLLIN)
        watched: set = set()
        pools_watched: set = set()
        answer_by = min(time.monotonic() + HELLO_TIMEOUT, self._deadline())
        while True:
            session.release_results(queued=len(tasks.queued))
            session.flush()
            if not session.held:
                tasks.clean_reported()
            for fd in tasks.by_pidfd.keys() - watched:
                poller.register(fd, zmq.POLLIN)
                watched.add(fd)
            for pool in tasks.pools():
                if pool is not None and pool.fileno() not in pools_watched:
                    poller.register(pool.fileno(), zmq.POLLIN)
                    pools_watched.add(pool.fileno())
            events = poller.poll(self._poll_timeout_ms(session))
            with tasks.calls_batched():
                for sock, _ in events:
                    if sock is session.socket:
                        outcome = self._receive(session)
                        if outcome:
                            return outcome
                    elif sock in pools_watched:
                        tasks.calls_finished(session)
                    elif sock == self.peers.fileno():
                        self.peers.completed(session)
                    elif sock is session.monitor:
                        outcome = self._on_link_trouble(session)
                        if outcome:
                            return outcome
                    else:
                        poller.unregister(sock)
                        watched.discard(sock)
                        sandbox = tasks.by_pidfd.pop(sock, None)
                        if sandbox is not None:
                            tasks.task_exited(session, sandbox)
            now = time.monotonic()
            if not session.welcomed and now > answer_by:
                self._trouble(_master_at(session.address), "connected, but no answer" if session.link_up else "no answer")
                return "unreachable"
            if session.welcomed and now - session.last_heard > session.timeout:
                self._master_gone(session, f"silent for {now - session.last_heard:.0f} s")
                return "served"
            tasks.enforce_limits(session)
            why = self.lifetime.over(now)
            if why is not None:
                log.info("exiting: %s", why)
                if session.welcomed:
                    session.say_bye(why)
                return "shutdown"
            if session.welcomed and now - session.last_sent > session.keepalive:
                session.send(protocol.encode("heartbeat"))
            if session.outbox.streaming or session.incoming:
                tasks.last_activity = now  # moving files is work: never idle out mid-transfer
            if session.welcomed and not tasks.running and not tasks.queued and \
                    now - tasks.last_activity > self.options.idle_timeout:
                log.info("exiting: idle for %.0f s", now - tasks.last_activity)
                session.say_bye("idle timeout")
                return "idle"

    def _on_link_trouble(self, session: Session) -> Optional[str]:
        """What the socket's monitor says: before the welcome, why this attempt failed; after it,
        that the master is gone (a closed connection: its process ended, or it closed its socket)."""
        trouble = session.link_trouble()
        if trouble == "handshake" and self.options.curve_server_key:
            raise WorkerRejected("authentication failed: the manager refused this worker's CURVE "
                                 "key (or --curve-server-key is not the manager's public key)")
        if trouble is None or (session.welcomed and trouble != "closed"):
            return None
        if session.welcomed:
            outcome = self._receive(session)  # a goodbye may wait there, sent just before the close
            if outcome:
                return outcome
            self._master_gone(session, "the connection closed")
            return "served"
        self._trouble(_master_at(session.address), LINK_TROUBLES[trouble])
        return "unreachable"

    def _poll_timeout_ms(self, session: Session) -> int:
        wait = min(session.keepalive, 1.0)
        if self.tasks.running:
            wait = min(wait, SAMPLE_INTERVAL)
        if session.outbox.pending:
            wait = 0.05
        if session.held:
            wait = min(wait, max(0.0, session.hold_left()))
        return math.ceil(wait * 1000)

    def _receive(self, session: Session) -> Optional[str]:
        for _ in range(256):
            try:
                frames = session.socket.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return None
            session.last_heard = time.monotonic()
            try:
                parts = protocol.split(frames)
            except Exception as error:  # ProtocolError, or anything split did not foresee
                self.complain("dropped", logging.WARNING, "dropped a message from the manager: %s", error)
                continue
            for part in parts:
                outcome = self._handle(session, part)
                if outcome:
                    return outcome
            if self.tasks.queued:
                self.tasks.start_queued(session)  # once for the whole bundle, not once per task in it
        return None

    def _message_handlers(self) -> Dict[str, Handler]:
        return {
            "challenge": self._on_challenge, "welcome": self._on_welcome, "reject": self._on_reject,
            "reset": self._on_reset, "shutdown": self._on_shutdown, "bye": self._on_bye, "heartbeat": self._on_heartbeat,
            "ack": self._on_ack, "task": self._on_task, "kill": self._on_kill,
            "revoke": self._on_revoke,
            "put": self.files.on_put, "chunk": self.files.on_chunk, "invalidate": self.files.on_invalidate,
            "fetch": self.peers.on_fetch, "fetch-url": self.peers.on_fetch_url,
            "unpack": self.peers.on_unpack,
        }

    def _handle(self, session: Session, frames: List[Any]) -> Optional[str]:
        """Decode one message and hand it to its handler. Whatever goes wrong with one message
        drops that message, never the worker: only a rejection or a signal ends it."""
        try:
            message = protocol.decode(frames)
        except Exception as error:  # ProtocolError, or anything decode did not foresee
            self.complain("dropped", logging.WARNING, "dropped a message from the manager: %s", error)
            if session.welcomed:
                self.tasks.refuse_undecodable(session, frames, error)
            return None
        handler = self.handlers.get(message.type)
        if handler is None:
            self.complain("unexpected", logging.WARNING, "dropped an unexpected %r from the manager", message.type)
            return None
        if not session.welcomed and message.type not in HANDSHAKE:
            self.complain("early", logging.WARNING, "dropped %r received before the welcome", message.type)
            return None
        if session.welcomed and message.type in ("welcome", "challenge"):
            self.complain("late", logging.WARNING, "dropped a %r received after the welcome", message.type)
            return None
        try:
            return handler(session, message)
        except WorkerRejected as rejection:
            session.send(protocol.encode("bye", reason=str(rejection)))
            session.flush()
            session.socket.setsockopt(zmq.LINGER, 1000)  # let the bye reach the master's log
            raise
        except Exception as error:
            self.complain("failed", logging.ERROR, "dropped a %r from the manager: handling it failed: %r",
                          message.type, error, exc_info=error)
            return None

    # -- handshake ------------------------------------------------------------------------------
    def _on_challenge(self, session: Session, message: protocol.Message) -> Optional[str]:
        password = self.options.password
        if password is None:
            raise WorkerRejected("authentication failed: this manager requires a password (use -P FILE)")
        session.manager_nonce = message["nonce"]
        session.send(protocol.encode("auth", proof=auth.worker_proof(password, session.nonce, message["nonce"]),
                                     cached=self.cache.kept()))
        return None

    def _on_welcome(self, session: Session, message: protocol.Message) -> Optional[str]:
        password = self.options.password
        if password is not None:
            if not session.manager_nonce:
                raise WorkerRejected("authentication failed: the manager did not ask for the password")
            expected = auth.manager_proof(password, session.manager_nonce, session.nonce)
            if not auth.verify(expected, message["proof"]):
                raise WorkerRejected("authentication failed: the manager does not know our password")
        session.welcomed = True
        self.peers.set_key(password or message["peer_key"])
        session.keepalive = _within(message["keepalive"], *KEEPALIVE_BOUNDS)
        session.timeout = _within(message["timeout"], *TIMEOUT_BOUNDS)
        self.tasks.last_activity = time.monotonic()
        self.served = True
        self._troubles.clear()
        log.info("connected to %s, offering %s", _master_at(session.address),
                 ", ".join(f"{name} {amount:g}" for name, amount in self.resources.items()))
        return None

    def _on_reject(self, session: Session, message: protocol.Message) -> Optional[str]:
        raise WorkerRejected(f"the manager refused this worker: {message['reason']}")

    def _on_reset(self, session: Session, message: protocol.Message) -> Optional[str]:
        log.info("%s does not know this worker (%s): dropping its tasks, saying hello again",
                 _master_at(session.address), message["reason"])
        return "reset"

    def _on_shutdown(self, session: Session, message: protocol.Message) -> Optional[str]:
        log.info("exiting: %s asked this worker to (%s)", _master_at(session.address), message["reason"])
        return "shutdown"

    def _on_bye(self, session: Session, message: protocol.Message) -> Optional[str]:
        """A master that closes says goodbye (a ``bye``): look
        for one again after the shortest back-off, the time without it counting against the idle
        timeout, instead of waiting out its silence first."""
        self._master_gone(session, f"it said goodbye ({message['reason'] or 'no reason given'})")
        return "served" if session.welcomed else "unreachable"

    def _on_heartbeat(self, session: Session, message: protocol.Message) -> Optional[str]:
        return None

    def _on_ack(self, session: Session, message: protocol.Message) -> Optional[str]:
        session.outbox.ack()
        return None

    # -- tasks ----------------------------------------------------------------------------------
    def _on_task(self, session: Session, message: protocol.Message) -> Optional[str]:
        self.tasks.accept(session, message.fields, protocol.as_bytes(message.payload[0]), self.files.why_missing)
        return None

    def _on_kill(self, session: Session, message: protocol.Message) -> Optional[str]:
        self.tasks.kill(session, message["task_id"])
        return None

    def _on_revoke(self, session: Session, message: protocol.Message) -> Optional[str]:
        task_id, attempt = message["task_id"], message["attempt"]
        revoked = self.tasks.revoke(task_id, attempt)
        session.send(protocol.encode("revoked", task_id=task_id, attempt=attempt, revoked=revoked))
        return None


def _within(value: float, low: float, high: float) -> float:
    """``value`` brought within [low, high]; a NaN becomes ``high``."""
    if low <= value <= high:
        return value
    return low if value < low else high


def _master_at(address: str) -> str:
    return "the master at " + address[len("tcp://"):] if address.startswith("tcp://") else address


def _address_problem(address: str) -> Optional[str]:
    """Why a TCP address cannot be a master's (a port out of range, a host no resolver knows),
    or None. The host is looked up here because ZeroMQ says nothing of a name it cannot resolve."""
    host, _, port = address[len("tcp://"):].rpartition(":")
    if not port.isdigit() or int(port) not in TCP_PORTS:
        return f"{port} is not a TCP port (1 to 65535)"
    try:
        socket.getaddrinfo(host.strip("[]"), int(port), type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as error:
        return f"unknown host {host!r} ({getattr(error, 'strerror', None) or error})"
    return None


def show_state_changes() -> None:
    """The worker's state changes (connecting, connected, master gone, reconnecting, exiting and why)
    are INFO lines that belong in its batch job's output: shown unless this logger's level was set,
    or logging was set up more verbosely. With no handler anywhere, they go to stderr."""
    if log.level == logging.NOTSET and log.getEffectiveLevel() > logging.INFO:
        log.setLevel(logging.INFO)
    if not log.hasHandlers():
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
        log.addHandler(handler)
