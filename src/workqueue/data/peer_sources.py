"""Transfers between workers, as the master books them: where each worker serves its cache, which
source each transfer uses, how many each source and destination has under way, and the sources
that could not be reached. Pure: the caller passes the time.

A source that a destination could not reach is not used again for ``UNREACHABLE_SECONDS``: the
input comes from another holder, from the master, or from its producer run again, never by
waiting on that peer (cooperative-computing-lab/cctools#3763).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Hashable, Iterable, List, Optional, Tuple

Worker = Hashable

SOURCE_MAX = 4  # transfers one worker serves at once (TaskVine: worker-source-max-transfers, 10)
DESTINATION_MAX = 4  # transfers one worker receives at once
UNREACHABLE_SECONDS = 30.0  # TaskVine: transient-error-interval, 15 s


@dataclass
class Flight:
    xfer: int
    digest: str
    source: Worker
    destination: Worker
    size: int


class Transfers:
    def __init__(self) -> None:
        self.addresses: Dict[Worker, str] = {}
        self.curve_keys: Dict[Worker, bytes] = {}  # a source's CURVE public key, when it serves encrypted
        self._flights: Dict[int, Flight] = {}
        self._by_route: Dict[Tuple[Worker, str], int] = {}  # (destination, digest) -> xfer
        self._outgoing: Dict[Worker, int] = {}
        self._incoming: Dict[Worker, int] = {}
        self._unreachable: Dict[Worker, float] = {}  # until when

    def set_address(self, worker: Worker, address: str, curve_key: bytes = b"") -> None:
        if address:
            self.addresses[worker] = address
            if curve_key:
                self.curve_keys[worker] = curve_key

    def forget_worker(self, worker: Worker) -> List[Flight]:
        """The worker is gone: the transfers it was part of, as source or destination, ended."""
        self.addresses.pop(worker, None)
        self.curve_keys.pop(worker, None)
        self._unreachable.pop(worker, None)
        ended = [f for f in self._flights.values() if worker in (f.source, f.destination)]
        for flight in ended:
            self.finish(flight.xfer)
        return ended

    def usable(self, worker: Worker, now: float) -> bool:
        """A source that serves, was not found unreachable lately, and has a free slot."""
        if worker not in self.addresses:
            return False
        until = self._unreachable.get(worker)
        if until is not None:
            if now < until:
                return False
            del self._unreachable[worker]
        return self._outgoing.get(worker, 0) < SOURCE_MAX

    def reachable(self, worker: Worker, now: float) -> bool:
        return worker in self.addresses and self._unreachable.get(worker, 0.0) <= now

    def pick(self, holders: Iterable[Worker], destination: Worker, now: float) -> Optional[Worker]:
        """The holder with the fewest transfers under way that may serve ``destination`` now."""
        if self._incoming.get(destination, 0) >= DESTINATION_MAX:
            return None
        usable = [w for w in holders if w != destination and self.usable(w, now)]
        return min(usable, key=lambda w: self._outgoing.get(w, 0), default=None)

    def start(self, xfer: int, digest: str, source: Worker, destination: Worker, size: int) -> None:
        self._flights[xfer] = Flight(xfer, digest, source, destination, size)
        self._by_route[(destination, digest)] = xfer
        self._outgoing[source] = self._outgoing.get(source, 0) + 1
        self._incoming[destination] = self._incoming.get(destination, 0) + 1

    def flight(self, xfer: int) -> Optional[Flight]:
        return self._flights.get(xfer)

    def finish(self, xfer: int) -> Optional[Flight]:
        flight = self._flights.pop(xfer, None)
        if flight is None:
            return None
        if self._by_route.get((flight.destination, flight.digest)) == xfer:
            del self._by_route[(flight.destination, flight.digest)]
        self._outgoing[flight.source] -= 1
        self._incoming[flight.destination] -= 1
        return flight

    def flying_to(self, destination: Worker, digest: str) -> bool:
        return (destination, digest) in self._by_route

    def flying(self, digest: str) -> bool:
        return any(f.digest == digest for f in self._flights.values())

    def mark_unreachable(self, worker: Worker, now: float) -> None:
        self._unreachable[worker] = now + UNREACHABLE_SECONDS

    def unreachable_count(self, now: float) -> int:
        return sum(1 for until in self._unreachable.values() if until > now)

    def __len__(self) -> int:
        return len(self._flights)
