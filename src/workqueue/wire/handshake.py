"""Peers that have said hello but not yet proved they know the password. Pure: the caller passes
the time.

A stranger gets a challenge and nothing else: no worker record, no place in the worker count, no
status. What it said is kept in a small table whose entries expire a few seconds after the hello,
whatever the peer sends meanwhile, and the oldest entry makes room for a new one when the table
is full: strangers cannot hold the master's memory, however many of them there are.
"""
from __future__ import annotations

import collections
from dataclasses import dataclass
from typing import Any, Dict, Hashable, Optional

HANDSHAKE_SECONDS = 10.0  # as long as a worker waits for an answer to its hello
PENDING_MAX = 256


@dataclass
class Pending:
    """A challenge sent and not yet answered: to a worker's ``hello`` or to a status request."""

    manager_nonce: bytes
    deadline: float
    hello: Optional[Dict[str, Any]] = None  # the worker's hello; None for a status request

    @property
    def is_worker(self) -> bool:
        return self.hello is not None


class PendingPeers:
    """Bounded, expiring table of unanswered challenges, oldest first."""

    def __init__(self, limit: int = PENDING_MAX, timeout: float = HANDSHAKE_SECONDS) -> None:
        self.limit = limit
        self.timeout = timeout
        self._entries: "collections.OrderedDict[Hashable, Pending]" = collections.OrderedDict()
        self.evicted = 0

    def add(self, peer: Hashable, manager_nonce: bytes, now: float,
            hello: Optional[Dict[str, Any]] = None) -> None:
        """Remember a challenge sent to ``peer``; a peer has at most one, the latest."""
        self._entries.pop(peer, None)
        while len(self._entries) >= self.limit:
            self._entries.popitem(last=False)
            self.evicted += 1
        self._entries[peer] = Pending(manager_nonce, now + self.timeout, hello)

    def take(self, peer: Hashable, now: float) -> Optional[Pending]:
        """The challenge ``peer`` is answering, removed from the table; None if none is current."""
        pending = self._entries.pop(peer, None)
        if pending is None or pending.deadline < now:
            return None
        return pending

    def expire(self, now: float) -> int:
        """Forget the challenges past their deadline; return how many."""
        expired = 0
        while self._entries:
            peer, pending = next(iter(self._entries.items()))
            if pending.deadline >= now:
                break
            del self._entries[peer]
            expired += 1
        return expired

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, peer: Hashable) -> bool:
        return peer in self._entries
