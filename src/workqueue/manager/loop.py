"""The master's event loop: ROUTER socket <-> protocol <-> scheduler <-> files.

Runs in one thread that owns every socket and all the queue's state. It feeds the pure scheduler
with worker and task events, streams input files through each worker's outbox, writes output files
under temporary names and renames them only when the task's result arrives.
"""
from __future__ import annotations

import logging
import math
import queue
import time
from typing import Any, Dict, List, Optional, Set, Tuple

import zmq

from ..constants import PROTOCOL_VERSION, Result
from ..data.outputs import OutputReceiver, abort_outputs, finish_outputs, land_inline
from ..data.transfer import Credits, Outbox, TransferError
from ..files import DigestMemo
from ..ratelimit import LimitedLog
from ..scheduling.capacity import Capacity
from ..scheduling.scheduler import Scheduler, describe_shape
from ..wire import protocol
from .blocks import BlockList
from .categories import CategoryKeeper
from .commands import Commands
from .data import DataPlane
from .door import Door
from .history import TaskHistory
from .placement import Placement
from .records import TRANSIENT, Settings, TaskRecord, WorkerConn
from .revocations import Revocations
from .sending import TaskSender
from .status import snapshot
from .transactions import TransactionsLog

log = logging.getLogger("workqueue.manager")

BATCH = 256  # messages handled per poll wake-up before dispatching again
PUBLISH_INTERVAL = 0.02  # seconds between snapshots for the user's thread (completions go out at once)
SEND_HWM = 1000  # messages queued per peer before a send would block: a peer that reads nothing
RECEIVE_HWM = 64  # holds at most this many of ours; ZeroMQ stops reading a peer this far ahead of us
GOODBYE_LINGER_MS = 200  # how long a closing master's goodbyes may take to leave
CLOSING = "the manager is closing"
CACHED_PER_WORKER_MAX = 1 << 20  # digests remembered per worker (about 100 MB at most)


def configure_router(router: zmq.Socket) -> None:
    """Bounds on what any one peer can make the master hold, set before the socket binds.

    Every send is non-blocking: a peer whose queue is full gets nothing more until it reads, and
    the loop never waits for it. A frame larger than any legitimate one ends that connection.
    """
    router.setsockopt(zmq.ROUTER_MANDATORY, 1)
    router.setsockopt(zmq.SNDHWM, SEND_HWM)
    router.setsockopt(zmq.RCVHWM, RECEIVE_HWM)
    router.setsockopt(zmq.MAXMSGSIZE, protocol.MAX_FRAME_BYTES)


class ManagerLoop:
    def __init__(self, router: zmq.Socket, wake: zmq.Socket, commands: "queue.SimpleQueue[tuple]",
                 finished: "queue.SimpleQueue[list]", settings: Settings) -> None:
        self.router = router
        self.wake = wake
        self.commands = commands
        self.finished = finished
        self.settings = settings
        self.stop_requested = False
        self.failure: Optional[BaseException] = None  # why the loop stopped on its own, if it did
        self.wake_pending = False  # set by the user's thread when it sends a wake-up
        self._finished_now: List[Tuple[int, Dict[str, Any]]] = []
        self.placement = Placement(self)
        self.scheduler = Scheduler(worker_seconds=self.placement.worker_seconds)
        self.workers: Dict[bytes, WorkerConn] = {}
        self.tasks: Dict[int, TaskRecord] = {}
        self.outputs = OutputReceiver()
        self._warned_shapes: Set[Tuple] = set()
        self.category_keeper = CategoryKeeper(self)
        self.categories = self.category_keeper.categories
        self.advertiser: Any = None  # catalog.Advertiser of a named master
        self.capacity: Optional[Capacity] = None  # estimated once the user asks (estimate_capacity)
        self.digests = DigestMemo()
        self.blocks = BlockList()
        self.xfer_ids = 0
        self.credits = Credits()
        self._pump_turn = 0
        self.counters = {
            "tasks_submitted": 0, "tasks_done": 0, "tasks_failed": 0, "tasks_requeued": 0,
            "tasks_canceled": 0, "bytes_sent": 0, "bytes_received": 0, "cache_hits": 0,
            "workers_joined": 0, "workers_removed": 0, "workers_lost": 0, "workers_rejected": 0,
            "messages_dropped": 0, "messages_failed": 0, "tasks_prefetched": 0,
            "revocations_sent": 0, "tasks_revoked": 0,
        }
        self.requeue_reasons: Dict[str, int] = {}
        self.data = DataPlane(self)
        self.sender = TaskSender(self)
        self.transactions = TransactionsLog(settings.transactions_log)
        self.door = Door(self)
        self.history = TaskHistory()  # past and held tasks, for the dashboard (read only when asked)
        self.log_limited = LimitedLog(log)
        self.revocations = Revocations(self)
        self.user_commands = Commands(self)
        self._worker_handlers = {
            name[len("_on_"):].replace("_", "-"): getattr(self, name) for name in dir(self) if name.startswith("_on_")}
        self._worker_handlers["revoked"] = self.revocations.answered
        self.snapshot: Dict[str, Any] = {}
        self._publish()
        self._next_maintenance = 0.0
        self.workers_awaited = False  # wait-for-workers has been met once
        self.behind = False  # the last turn left messages unread: queued tasks wait on us, not on workers

    # -- the loop -------------------------------------------------------------------------------
    def run(self) -> None:
        poller = zmq.Poller()
        poller.register(self.router, zmq.POLLIN)
        poller.register(self.wake, zmq.POLLIN)
        try:
            while not self.stop_requested:
                events = dict(poller.poll(self._poll_timeout_ms()))
                if self.wake in events:
                    self._drain_wake()
                self.wake_pending = False  # before reading commands: a later one sends a new wake-up
                self.user_commands.run()
                if self.router in events:
                    self._receive_batch()
                else:
                    self.behind = False
                self._maintain()
                self._dispatch()
                if self.settings.prefetch and not self.behind:
                    self.revocations.take_back(time.monotonic())
                elif not self.settings.prefetch:
                    self.revocations.wake_at = math.inf
                self._pump_outboxes()
                self._hand_over_finished()
                if time.monotonic() >= self._next_publish:
                    self._publish()
        except Exception as error:
            self.failure = error
            log.exception("the manager loop failed")
            raise
        finally:
            self._hand_over_finished()
            self._say_goodbye()
            for conn in self.workers.values():
                conn.outbox.close()
            self._abort_all_incoming()
            self.transactions.close()
            self.router.close(GOODBYE_LINGER_MS)
            self.wake.close(0)

    def _say_goodbye(self) -> None:
        """Tell every worker the master is going (a ``bye``, as a worker says when it goes), so that
        it looks for a master again at once instead of after its keepalive timeout."""
        goodbye = protocol.encode("bye", reason=CLOSING)
        for identity in self.workers:
            self.send_to_peer(identity, goodbye)

    def _poll_timeout_ms(self) -> int:
        if any(conn.outbox.pending for conn in self.workers.values()):
            return 50
        seconds = min(1.0, self.settings.keepalive_interval, self.revocations.wake_at - time.monotonic())
        return max(1, int(seconds * 1000))

    def _drain_wake(self) -> None:
        while True:
            try:
                self.wake.recv(zmq.NOBLOCK)
            except zmq.Again:
                return

    def _receive_batch(self) -> None:
        self.behind = True  # until the socket has nothing more to read in this turn
        for _ in range(BATCH):
            try:
                frames = self.router.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                self.behind = False
                return
            finished = len(self._finished_now)
            self._handle_frames(frames)
            if len(self._finished_now) > finished:
                self._refill(frames[0].bytes)

    def _refill(self, identity: bytes) -> None:
        """Send a worker that has just reported results its next tasks at once, before reading the
        other workers' messages: handling a bundle of results takes as long as the worker took to
        run those tasks, so a refill sent only after the whole batch found the worker idle."""
        if identity in self.workers:
            for conn in self._dispatch(only=identity):
                self.pump(conn, chunks=1)

    def _handle_frames(self, frames: List[zmq.Frame]) -> None:
        identity = frames[0].bytes
        if identity in self.workers:
            self._handle_parts(identity, frames)
            return
        if not self.door.will_read():
            self.drop(identity, "strangers have had their share of the loop's time")
            return
        started = time.perf_counter()
        self._handle_parts(identity, frames)
        self.door.charge(time.perf_counter() - started)

    def _handle_parts(self, identity: bytes, frames: List[zmq.Frame]) -> None:
        try:
            parts = protocol.split(frames[1:])
        except Exception as error:  # ProtocolError, or anything split did not foresee
            self._invalid(identity, str(error))
            return
        for part in parts:
            self._handle_message(identity, part)

    def _handle_message(self, identity: bytes, frames: List[zmq.Frame]) -> None:
        """Decode and handle one message. Whatever happens, the loop goes on: a message that is
        not valid is dropped, and one whose handling fails costs its sender its place."""
        message = None
        conn = self.workers.get(identity)
        try:
            message = protocol.decode(frames)
            if conn is None:
                self.door.receive(identity, message)
                return
            conn.last_heard = time.monotonic()
            handler = self._worker_handlers.get(message.type)
            if handler is None:
                self.drop(identity, f"unexpected {message.type!r} from worker {conn.worker_id}")
                return
            handler(conn, message)
        except protocol.ProtocolError as error:
            self._invalid(identity, str(error))
        except (TransferError, OSError) as error:
            log.warning("worker %s: %s", conn.worker_id if conn else identity.hex()[:16], error)
            if conn is not None:
                self.remove_worker(conn, f"transfer failed: {error}")
        except Exception as error:  # a defect of ours, or a message no check foresaw: never the loop's end
            self._handler_failed(identity, conn, message, error)

    def _handler_failed(self, identity: bytes, conn: Optional[WorkerConn], message: Optional[protocol.Message],
                        error: Exception) -> None:
        """Drop the message and the worker that sent it, and log why (with the traceback, rate-limited)."""
        self.counters["messages_failed"] += 1
        kind = message.type if message is not None else "message"
        self.log_limited("failed", logging.ERROR, "a %r from %s could not be handled (dropped): %r", kind,
                         conn.worker_id if conn else identity.hex()[:16], error, exc_info=error)
        conn = self.workers.get(identity)
        if conn is not None:
            self.remove_worker(conn, f"its {kind!r} could not be handled")

    def _invalid(self, identity: bytes, reason: str) -> None:
        """A message that breaks the protocol is dropped; a worker that sent one is removed (its
        tasks run again elsewhere): whatever it does next cannot be trusted."""
        self.drop(identity, reason)
        conn = self.workers.get(identity)
        if conn is not None:
            self.remove_worker(conn, f"sent an invalid message ({reason})")

    def drop(self, identity: bytes, reason: str) -> None:
        self.counters["messages_dropped"] += 1
        self.log_limited("dropped", logging.WARNING, "dropped a message from %s: %s", identity.hex()[:16], reason)

    # -- the user's thread's commands (manager/commands.py) hand tasks over here ---------------
    def apply_blocks(self) -> None:
        for conn in self.workers.values():
            self.scheduler.block_worker(conn.identity, self._host_blocked(conn))

    def _host_blocked(self, conn: WorkerConn) -> bool:
        return self.blocks.blocks((conn.hostname, conn.address, conn.worker_id))

    # -- worker messages ------------------------------------------------------------------------
    def admit(self, identity: bytes, hello: Dict[str, Any], cached: List[str], proof: bytes) -> None:
        """A peer that has proved itself (or needed not) becomes a worker."""
        now = time.monotonic()
        conn = WorkerConn(
            identity=identity, worker_id=hello["worker_id"], hostname=hello["hostname"],
            address=hello["hostname"], resources=dict(hello["resources"]), last_heard=now,
            features=list(hello["features"]), last_sent=now, outbox=Outbox(credits=self.credits),
        )
        conn.cached.update(cached[:CACHED_PER_WORKER_MAX])
        self.workers[identity] = conn
        self.data.worker_joined(conn, hello)
        self.scheduler.add_worker(conn.identity, conn.resources, frozenset(conn.features))
        if hello["time_left"]:
            conn.ends_at = now + hello["time_left"]
            self.scheduler.set_time_left(conn.identity, hello["time_left"])
        if self._host_blocked(conn):
            self.scheduler.block_worker(conn.identity)
        self.counters["workers_joined"] += 1
        self.send_to(conn, protocol.encode(
            "welcome", version=PROTOCOL_VERSION, keepalive=self.settings.keepalive_interval,
            timeout=self.settings.keepalive_timeout, proof=proof, peer_key=self.data.welcome_key()))
        log.info("worker %s (%s) joined with %s", conn.worker_id, conn.hostname, conn.resources)
        self.transactions.worker(conn.worker_id, "CONNECTION", conn.hostname)
        self._warn_unfit()

    def _on_heartbeat(self, conn: WorkerConn, message: protocol.Message) -> None:
        pass

    def _on_hello(self, conn: WorkerConn, message: protocol.Message) -> None:
        self.remove_worker(conn, "said hello again")
        self.door.receive(conn.identity, message)

    def _on_bye(self, conn: WorkerConn, message: protocol.Message) -> None:
        self.remove_worker(conn, message["reason"] or "worker left")

    def _on_ack(self, conn: WorkerConn, message: protocol.Message) -> None:
        conn.outbox.ack()

    def _on_cache_update(self, conn: WorkerConn, message: protocol.Message) -> None:
        conn.cached.difference_update(message["removed"])
        if len(conn.cached) + len(message["added"]) > CACHED_PER_WORKER_MAX:
            raise protocol.ProtocolError(f"more than {CACHED_PER_WORKER_MAX} cached files")
        conn.cached.update(message["added"])
        self.data.cache_update(conn, message["added"], message["removed"])

    def _on_fetched(self, conn: WorkerConn, message: protocol.Message) -> None:
        self.data.on_fetched(conn, message)

    def _on_output(self, conn: WorkerConn, message: protocol.Message) -> None:
        task_id = message["task_id"]
        record = self.current(conn, task_id, message["attempt"])
        if not self.outputs.begin(conn.identity, message["xfer"], task_id, record, message["name"],
                                  message["size"], message["mode"]):
            self.log_limited("output-name", logging.WARNING, "worker %s sent an output %r that task %d did not "
                             "declare: discarded", conn.worker_id, message["name"], task_id)

    def _on_chunk(self, conn: WorkerConn, message: protocol.Message) -> None:
        self.send_to_peer(conn.identity, protocol.encode("ack", xfer=message["xfer"], seq=message["seq"]))
        incoming, task_id = self.outputs.chunk(conn.identity, message["xfer"], message["last"])
        if incoming is None or task_id not in self.tasks:
            return
        data = protocol.as_buffer(message.payload[0])
        incoming.add(message["seq"], data, message["last"], message["digest"])
        self.tasks[task_id].bytes_received += len(data)
        self.counters["bytes_received"] += len(data)

    def _on_result(self, conn: WorkerConn, message: protocol.Message) -> None:
        fields = message.fields  # read directly: this runs once per task
        record = self.current(conn, fields["task_id"], fields["attempt"])
        if record is None:
            log.debug("ignored a stale result for task %d from %s", fields["task_id"], conn.worker_id)
            return
        conn.tasks.discard(record.task_id)
        conn.completed += 1
        self.data.on_result(conn, record, fields)
        wall_time = fields["measured"].get("wall_time")
        if wall_time is not None:
            self.categories.record_wall_time(record.spec["category"], wall_time, record.program)
            conn.task_seconds += wall_time
            conn.timed += 1
        result = Result._value2member_map_.get(fields["result"], Result.UNKNOWN)  # no Enum call per result
        if result in TRANSIENT:
            self.requeue(record, f"worker {conn.worker_id}: {result.name}", result.name.lower())
            return
        if result == Result.SUCCESS:
            self.category_keeper.learn(record, conn, fields["measured"])
            if self.capacity is not None and wall_time is not None and not record.prefetched:
                self.capacity.add(wall_time, time.time() - record.dispatch_time, record.allocation)
        elif result == Result.RESOURCE_EXHAUSTION and self.category_keeper.retry_at_max(record, conn):
            return
        missing = list(fields["missing"]) + self._land_inline(conn, record, fields["files"])
        missing += finish_outputs(record, missing)
        if missing and result == Result.SUCCESS:
            result = Result.OUTPUT_MISSING
        stdout = message.payload[0]
        outcome = self.make_outcome(record, conn, result, fields["exit_code"])
        outcome.update(stdout=protocol.as_bytes(stdout),
                       measured=fields["measured"], limits_exceeded=fields["limits_exceeded"],
                       missing_outputs=missing)
        outcome["times"].update({k: float(v) for k, v in fields["times"].items()})
        self.complete(record, outcome)

    def _land_inline(self, conn: WorkerConn, record: TaskRecord, files: List[list]) -> List[str]:
        """The small outputs carried in a result, written in place; returns those that could not be."""
        if not files:
            return []
        written, failed, undeclared = land_inline(record, files)
        record.bytes_received += written
        self.counters["bytes_received"] += written
        for name in undeclared:
            self.log_limited("output-name", logging.WARNING, "worker %s sent an output %r that task %d did not "
                             "declare: discarded", conn.worker_id, name, record.task_id)
        return failed

    # -- dispatch -------------------------------------------------------------------------------
    def _dispatch(self, only: Optional[bytes] = None) -> List[WorkerConn]:
        """Book and queue what can run (see Scheduler.schedule); return the workers sent tasks."""
        if self.settings.wait_for_workers and not self.workers_awaited:
            if len(self.workers) < self.settings.wait_for_workers:
                return []  # tune("wait-for-workers", n): nothing goes out before n workers have come
            self.workers_awaited = True
        prefetch_depth = self.placement.prefetch_depth if self.settings.prefetch else None
        if self.blocks and self.blocks.expire(time.monotonic()):
            self.apply_blocks()
        sent_to: Dict[bytes, WorkerConn] = {}
        for assignment in self.scheduler.schedule(prefetch_depth, only, self.placement.cached_bytes,
                                                   self.placement.input_holders):
            record = self.tasks[assignment.task_id]
            conn = sent_to[assignment.worker] = self.workers[assignment.worker]
            try:
                self.sender.send(record, conn, assignment)
            except OSError as error:
                self.scheduler.finish(record.task_id)
                conn.tasks.discard(record.task_id)
                outcome = self.make_outcome(record, conn, Result.INPUT_MISSING, -1)
                outcome["stdout"] = f"input missing: {error}".encode()
                log.warning("task %d: %s", record.task_id, error)
                self.complete(record, outcome)
        return list(sent_to.values())

    def _pump_outboxes(self) -> None:
        """One chunk per worker per round, round after round, until the windows or the shared
        credits run out: workers receiving files at once share the link and the master's memory
        evenly, and the round starts one worker further on each turn."""
        pending = [conn for conn in self.workers.values() if conn.outbox.pending]
        if not pending:
            return
        self._pump_turn = (self._pump_turn + 1) % len(pending)
        pending = pending[self._pump_turn:] + pending[:self._pump_turn]
        while pending:
            pending = [conn for conn in pending if self.pump(conn, chunks=1)]

    def pump(self, conn: WorkerConn, chunks: Optional[int] = None) -> int:
        """Send what ``conn``'s outbox may send now; return how many chunks went. A worker that has
        not read what it was sent keeps the rest in its outbox until it does."""
        try:
            return conn.outbox.pump(lambda frames: self._send_now(conn, frames), chunks)
        except zmq.Again:
            return 0
        except zmq.ZMQError as error:
            self.remove_worker(conn, f"unreachable ({error})")
            return 0

    def send_to(self, conn: WorkerConn, frames: List[Any]) -> None:
        conn.outbox.message(frames)

    def _send_now(self, conn: WorkerConn, frames: List[Any]) -> None:
        self.router.send_multipart([conn.identity, *frames], zmq.NOBLOCK, copy=False)
        conn.last_sent = time.monotonic()

    def send_to_peer(self, identity: bytes, frames: List[Any]) -> None:
        """Send now, past any outbox; a peer that is gone or reads nothing just misses it."""
        try:
            self.router.send_multipart([identity, *frames], zmq.NOBLOCK)
        except zmq.ZMQError:
            pass

    # -- completion -----------------------------------------------------------------------------
    def current(self, conn: WorkerConn, task_id: int, attempt: int) -> Optional[TaskRecord]:
        record = self.tasks.get(task_id)
        if record is None or record.worker != conn.identity or record.attempts != attempt:
            return None
        return record

    def make_outcome(self, record: TaskRecord, conn: Optional[WorkerConn], result: Result, exit_code: int) -> Dict[str, Any]:
        return {
            "result": int(result), "exit_code": exit_code, "stdout": b"",
            "hostname": conn.hostname if conn else None, "worker_id": conn.worker_id if conn else None,
            "attempts": record.attempts, "allocated": dict(record.allocation),
            "bytes_sent": record.bytes_sent, "bytes_received": record.bytes_received,
            "cache_hits": record.cache_hits,
            "times": {"submit": record.submit_time, "dispatch": record.dispatch_time, "done": time.time()},
        }

    def complete(self, record: TaskRecord, outcome: Dict[str, Any]) -> None:
        self.tasks.pop(record.task_id, None)
        self.scheduler.finish(record.task_id)
        abort_outputs(record)
        if self.data.on_complete(record, outcome):
            return  # a recovery task: the user never sees it
        counter = "tasks_done" if outcome["result"] == Result.SUCCESS else "tasks_failed"
        self.counters[counter] += 1
        self.history.add(record, outcome)
        if self.transactions.enabled:
            self.transactions.task(record.task_id, "DONE", Result(outcome["result"]).name, outcome["exit_code"])
        self._finished_now.append((record.task_id, outcome))

    def _hand_over_finished(self) -> None:
        """The tasks finished in this turn of the loop, to the user's thread in one piece (one
        wake-up of a waiting thread, not one per task), with figures that already include them:
        ``stats`` read after ``wait`` or ``empty`` tells what those calls saw."""
        if self._finished_now:
            self._publish()
            self.finished.put(self._finished_now)
            self._finished_now = []

    def requeue(self, record: TaskRecord, reason: str, kind: str) -> None:
        """Run the task again, unless it has used up its retries."""
        conn = self.workers.get(record.worker) if record.worker else None
        if conn is not None:
            conn.tasks.discard(record.task_id)
        abort_outputs(record)
        self.data.forget_held(record.task_id)
        record.worker = None
        max_retries = record.spec["max_retries"]
        if max_retries and record.attempts - record.revoked >= max_retries:
            outcome = self.make_outcome(record, conn, Result.MAX_RETRIES, -1)
            outcome["stdout"] = f"gave up after {record.attempts} attempts; last: {reason}".encode()
            self.complete(record, outcome)
            return
        self.counters["tasks_requeued"] += 1
        self.requeue_reasons[kind] = self.requeue_reasons.get(kind, 0) + 1
        log.info("task %d goes back in the queue: %s", record.task_id, reason)
        self.transactions.task(record.task_id, "WAITING", f"requeued ({reason})")
        self.scheduler.requeue(record.task_id)

    def _abort_all_incoming(self) -> None:
        for record in self.tasks.values():
            abort_outputs(record)

    # -- workers coming and going ---------------------------------------------------------------
    def remove_worker(self, conn: WorkerConn, reason: str) -> None:
        """The worker is gone: its running tasks go back in the queue."""
        if self.workers.pop(conn.identity, None) is None:
            return
        conn.outbox.close()
        for task_id in self.scheduler.remove_worker(conn.identity):
            record = self.tasks.get(task_id)
            if record is not None:
                self.requeue(record, f"worker {conn.worker_id} {reason}", "worker lost")
        self.outputs.forget_worker(conn.identity)
        self.data.worker_removed(conn)
        self.counters["workers_removed"] += 1
        log.info("worker %s removed: %s", conn.worker_id, reason)
        self.transactions.worker(conn.worker_id, "DISCONNECTION", reason)

    def _maintain(self) -> None:
        now = time.monotonic()
        if now < self._next_maintenance:
            return
        self._next_maintenance = now + min(1.0, self.settings.keepalive_interval / 2)
        self.door.expire(now)
        for conn in list(self.workers.values()):
            if now - conn.last_heard > self.settings.keepalive_timeout:
                self.counters["workers_lost"] += 1
                log.warning("worker %s (%s) silent for %.0f s: declared lost", conn.worker_id,
                            conn.hostname, now - conn.last_heard)
                self.remove_worker(conn, "lost (no heartbeat)")
            elif now - conn.last_sent > self.settings.keepalive_interval:
                self.send_to(conn, protocol.encode("heartbeat"))
            if conn.ends_at is not None:
                self.scheduler.set_time_left(conn.identity, conn.ends_at - now)
        self._warn_unfit()
        self.category_keeper.fast_abort()
        if self.advertiser is not None:
            self.advertiser.maybe_refresh()

    def _warn_unfit(self) -> None:
        for shape, count in self.scheduler.unfit_shapes():
            if shape not in self._warned_shapes:
                self._warned_shapes.add(shape)
                total = max((c.resources for c in self.workers.values()), key=lambda r: r.get("cores", 0))
                log.warning("%d task(s) need %s, more than any connected worker has (largest: %s); they "
                            "wait for a bigger worker", count, describe_shape(shape), total)

    # -- figures --------------------------------------------------------------------------------
    def _publish(self) -> None:
        self.snapshot = snapshot(self)
        self._next_publish = time.monotonic() + PUBLISH_INTERVAL
