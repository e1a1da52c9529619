"""The master's door: what a peer that is not yet a worker may do, and what it gets back.

A stranger may say hello, answer its challenge, ask for status, or say bye. With a password, a
hello gets a challenge and nothing more: the worker proves first that it knows the password, and
only then does the master prove it too, in its welcome (a stranger never gets a proof it could use
to guess a weak password offline). A status request needs the same proof. Without a password the
door is open, as CCTools' is, and the master says so once.

Every answer is small, or within the status byte budget, and is sent without blocking; what a
stranger said is kept only in the bounded, expiring table of ``handshake.PendingPeers``.
"""
from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any, Dict, List

from ..constants import PROTOCOL_VERSION
from ..ratelimit import Budget
from ..wire import auth, protocol
from ..wire.handshake import PendingPeers
from .status import STATUS_BURST_BYTES, STATUS_BYTES_PER_SECOND, status

if TYPE_CHECKING:
    from .loop import ManagerLoop

log = logging.getLogger("workqueue.manager")

STRANGER_SHARE = 0.1  # of the loop's time, at most, for strangers' messages (seconds a second)
STRANGER_BURST_SECONDS = 0.5

# what a worker the master does not know sends when the master has restarted under it
WORKER_CHATTER = ("heartbeat", "result", "output", "chunk", "cache-update", "ack")


class Door:
    def __init__(self, loop: "ManagerLoop") -> None:
        self.loop = loop
        self.pending = PendingPeers()
        self.status_budget = Budget(STATUS_BYTES_PER_SECOND, STATUS_BURST_BYTES)
        self.stranger_time = Budget(STRANGER_SHARE, STRANGER_BURST_SECONDS)
        self._warned_open = False

    @property
    def password(self) -> Any:
        return self.loop.settings.password

    def will_read(self) -> bool:
        """Whether strangers have time left on the loop: checking one hostile 1 MiB header can take
        a fifth of a second, so strangers together get at most a tenth of the loop's time (see
        ``charge``); what they send beyond that goes unread."""
        return self.stranger_time.available(time.monotonic())

    def charge(self, seconds: float) -> None:
        """Count the time one stranger's message took against the strangers' share."""
        self.stranger_time.charge(seconds, time.monotonic())

    def receive(self, identity: bytes, message: protocol.Message) -> None:
        """Handle a message from a peer that is not a connected worker."""
        kind = message.type
        if kind == "hello":
            self._hello(identity, message.fields)
        elif kind == "auth":
            self._auth(identity, message["proof"], message["cached"])
        elif kind == "status":
            self._status(identity, message.fields)
        elif kind == "bye":
            self._bye(identity, message["reason"])
        elif kind in WORKER_CHATTER:
            self.loop.send_to_peer(identity, protocol.encode("reset", reason="unknown worker: say hello"))
        else:
            self.loop.drop(identity, f"{kind!r} from a peer that is not a worker")

    def expire(self, now: float) -> None:
        self.pending.expire(now)

    # -- workers --------------------------------------------------------------------------------
    def _hello(self, identity: bytes, hello: Dict[str, Any]) -> None:
        if hello["version"] != PROTOCOL_VERSION:
            self.reject(identity, f"protocol version mismatch: the manager speaks {PROTOCOL_VERSION}, "
                                  f"the worker {hello['version']}")
            return
        if self.password is None:
            self._warn_open()
            self.loop.admit(identity, hello, hello["cached"], proof=b"")
            return
        del hello["cached"]  # a stranger's list is not kept: the worker sends it again with its proof
        nonce = auth.new_nonce()
        self.pending.add(identity, nonce, time.monotonic(), hello=hello)
        self.loop.send_to_peer(identity, protocol.encode("challenge", nonce=nonce))

    def _auth(self, identity: bytes, proof: bytes, cached: List[str]) -> None:
        pending = self.pending.take(identity, time.monotonic())
        if pending is None or not pending.is_worker or self.password is None:
            self.loop.drop(identity, "an answer to no current challenge")
            return
        worker_nonce = pending.hello["nonce"]
        if not auth.verify(auth.worker_proof(self.password, worker_nonce, pending.manager_nonce), proof):
            self.reject(identity, "authentication failed: wrong password")
            return
        self.loop.admit(identity, pending.hello, cached,
                        proof=auth.manager_proof(self.password, pending.manager_nonce, worker_nonce))

    def _bye(self, identity: bytes, reason: str) -> None:
        pending = self.pending.take(identity, time.monotonic())
        if pending is not None and pending.is_worker:
            self.loop.log_limited("refused", logging.WARNING, "worker %s (%s) refused to join: %s",
                                  pending.hello["worker_id"], pending.hello["hostname"], reason)

    def reject(self, identity: bytes, reason: str) -> None:
        self.loop.counters["workers_rejected"] += 1
        self.loop.log_limited("rejected", logging.WARNING, "rejected worker %s: %s", identity.hex()[:16], reason)
        self.loop.send_to_peer(identity, protocol.encode("reject", reason=reason))

    def _warn_open(self) -> None:
        if not self._warned_open:
            self._warned_open = True
            log.warning("this manager has no password: any host that can reach its port can join as a worker")

    # -- status ---------------------------------------------------------------------------------
    def _status(self, identity: bytes, request: Dict[str, Any]) -> None:
        """Answer a status request, after a challenge when the master has a password."""
        if self.password is not None and not self._status_proved(identity, request):
            return
        reply = protocol.encode("status-reply", data=status(self.loop, request["what"]))
        if not self.status_budget.spend(sum(len(frame) for frame in reply), time.monotonic()):
            self.loop.log_limited("status", logging.WARNING, "status replies are over their budget: "
                                  "one to %s was not sent", identity.hex()[:16])
            return
        self.loop.send_to_peer(identity, reply)

    def _status_proved(self, identity: bytes, request: Dict[str, Any]) -> bool:
        """True if the request carries a proof for this peer's current challenge; otherwise send a
        challenge (a first request) or a refusal (a wrong proof) and return False."""
        now = time.monotonic()
        pending = self.pending.take(identity, now)
        if pending is not None and not pending.is_worker and request["proof"]:
            expected = auth.status_proof(self.password, request["nonce"], pending.manager_nonce)
            if auth.verify(expected, request["proof"]):
                return True
            self.loop.log_limited("status-auth", logging.WARNING, "a status request from %s had a wrong "
                                  "password", identity.hex()[:16])
            self.loop.send_to_peer(identity, protocol.encode("reject", reason="authentication failed: wrong password"))
            return False
        nonce = auth.new_nonce()
        self.pending.add(identity, nonce, now)
        self.loop.send_to_peer(identity, protocol.encode("challenge", nonce=nonce))
        return False
