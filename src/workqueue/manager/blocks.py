"""Hosts the user has blocked (CCTools' ``block_host``): their workers get no new tasks. Pure: the
caller passes the time.

A block names a worker's hostname, its address or its worker id, for good or until a deadline.
"""
from __future__ import annotations

from typing import Dict, Iterable, List, Optional


class BlockList:
    def __init__(self) -> None:
        self._until: Dict[str, Optional[float]] = {}  # name -> when its block ends (None: never)

    def block(self, name: str, timeout: Optional[float], now: float) -> None:
        self._until[name] = None if timeout is None else now + timeout

    def unblock(self, name: Optional[str] = None) -> None:
        """Lift the block on ``name``, or every block."""
        if name is None:
            self._until.clear()
        else:
            self._until.pop(name, None)

    def expire(self, now: float) -> bool:
        """Lift the blocks whose time is up; True if any was."""
        expired = [name for name, until in self._until.items() if until is not None and until <= now]
        for name in expired:
            del self._until[name]
        return bool(expired)

    def blocks(self, names: Iterable[str]) -> bool:
        """True if any of a worker's names (hostname, address, worker id) is blocked."""
        return bool(self._until) and any(name in self._until for name in names)

    def __len__(self) -> int:
        return len(self._until)

    def names(self) -> List[str]:
        return sorted(self._until)
