"""One connection of a worker to one master: its socket, its outbox, the files arriving on it, the
results held back to leave together, and what ZeroMQ's monitor says of the TCP link."""
from __future__ import annotations

import struct
import time
from typing import Any, Dict, List, Optional, Tuple

import zmq

from ..data.transfer import WINDOW, Incoming, Outbox
from ..wire import auth, protocol
from ..wire.curve import HANDSHAKE_FAILURES

RESULT_HOLD_SECONDS = 0.005
RESULT_HOLD_MAX = 64
GOODBYE_LINGER_MS = 500  # how long a worker's last words may take to leave
# Messages ZeroMQ may hold for us before it stops reading the master's connection. A master sends
# a worker at most WINDOW (8) unacknowledged 1 MiB chunks, one stream header at a time, and its
# other messages as a bundle per turn of its loop: a few dozen messages in flight at most. Past
# this bound the master's sends wait in its outbox (it keeps what a full peer refuses) until we
# read, so traffic slows to our pace and nothing is lost; below it, nothing ever waits.
RECEIVE_HWM = 8 * WINDOW

LINK_EVENTS = (zmq.EVENT_CONNECTED | zmq.EVENT_CONNECT_DELAYED | zmq.EVENT_CONNECT_RETRIED
               | zmq.EVENT_DISCONNECTED | HANDSHAKE_FAILURES)
# What the link can go through, as the monitor shows it (libzmq 4.3, seen on loopback):
#   a master listening    CONNECT_DELAYED, CONNECTED, (HANDSHAKE_SUCCEEDED)
#   nothing listening     CONNECT_DELAYED, CLOSED, CONNECT_RETRIED: again every reconnect interval
#   a name not resolved   CONNECT_RETRIED alone: ZeroMQ resolves at each try, and gives no reason
#   the master goes       DISCONNECTED (its process ended, or it closed its socket)
#   security differs      HANDSHAKE_FAILED_* then DISCONNECTED (CURVE on one side only, a key refused)
# Troubles, from the most telling: what :meth:`Session.link_trouble` returns.
TROUBLES = ("handshake", "closed", "refused", "unresolved")


class Session:
    """One connection to one master; ends when the master is lost, resets us, or we go idle.

    ``curve``: (the master's public key file, this worker's secret key file) to encrypt with CURVE.
    """

    def __init__(self, ctx: zmq.Context, address: str, curve: Optional[Tuple[str, str]] = None) -> None:
        self.address = address
        self.socket = ctx.socket(zmq.DEALER)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.setsockopt(zmq.SNDHWM, 0)
        self.socket.setsockopt(zmq.RCVHWM, RECEIVE_HWM)
        self.socket.setsockopt(zmq.MAXMSGSIZE, protocol.MAX_FRAME_BYTES)  # a larger frame ends the connection
        if curve is not None:
            from ..wire import curve as curve_keys
            server_key, own_key = curve
            curve_keys.connect_as_client(self.socket, own_key, server_key)
        self.monitor: zmq.Socket = self.socket.get_monitor_socket(LINK_EVENTS)
        self.link_up = False  # a TCP connection is open
        self._link_tried = False  # a TCP connection was attempted (a name that resolves)
        self.outbox = Outbox()
        self.incoming: Dict[int, Tuple[Incoming, str, int]] = {}
        self.welcomed = False
        self.manager_nonce = b""
        self.nonce = auth.new_nonce()
        self.keepalive = 5.0
        self.timeout = 30.0
        self.last_heard = time.monotonic()
        self.last_sent = 0.0
        self.linger_ms = 0  # on close: unsent messages are dropped, but for a goodbye
        self.xfers = 0
        self.held: List[List[Any]] = []
        self.held_since = 0.0
        try:
            self.socket.connect(address)
        except zmq.ZMQError:  # an address ZeroMQ cannot parse
            self.close()
            raise

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

    def say_bye(self, reason: str) -> None:
        """Tell the master this worker is going (its results held so far first), and let the
        goodbye leave before the socket closes: the master then runs this worker's tasks elsewhere
        at once, instead of finding it gone at its next send or after its keepalive timeout."""
        self.release_results(queued=0)
        self.send(protocol.encode("bye", reason=reason))
        self.flush()
        self.linger_ms = GOODBYE_LINGER_MS

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

    def link_trouble(self) -> Optional[str]:
        """Read what the monitor says of the link; the worst trouble seen (one of TROUBLES), or None."""
        seen = set()
        while True:
            try:
                event = _monitor_event(self.monitor.recv_multipart(zmq.NOBLOCK))
            except zmq.Again:
                break
            if event == zmq.EVENT_CONNECTED:
                self.link_up = True
            elif event == zmq.EVENT_CONNECT_DELAYED:
                self._link_tried = True
            elif event == zmq.EVENT_DISCONNECTED:
                self.link_up = False
                seen.add("closed")
            elif event & HANDSHAKE_FAILURES:
                seen.add("handshake")
            elif event == zmq.EVENT_CONNECT_RETRIED and not self.link_up:
                seen.add("refused" if self._link_tried else "unresolved")
        return next((trouble for trouble in TROUBLES if trouble in seen), None)

    def close(self) -> None:
        self.outbox.close()
        for incoming, _, _ in self.incoming.values():
            incoming.abort()
        self.socket.disable_monitor()
        self.monitor.close(0)
        self.socket.close(self.linger_ms)


def _monitor_event(frames: List[bytes]) -> int:
    """The event number of a ZeroMQ monitor message (its first frame: a 16-bit event, a 32-bit
    value). Read here rather than with zmq.utils.monitor, which imports asyncio: a tenth of a
    second of every worker's start."""
    return struct.unpack("=Hi", frames[0][:6])[0]
