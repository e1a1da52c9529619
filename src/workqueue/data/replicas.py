"""The master's replica table: which workers hold a ready copy of which file. Pure.

Files are named by digest, temporary files and cached inputs alike. A copy counts once the worker
has said it holds it (a ``cache-update``, a ``fetched``, or a result naming a temporary output),
never when it was merely sent: only a ready copy can be a source for another worker.
"""
from __future__ import annotations

from typing import Dict, Hashable, Set

Worker = Hashable


class Replicas:
    def __init__(self) -> None:
        self._holders: Dict[str, Set[Worker]] = {}
        self._held: Dict[Worker, Set[str]] = {}

    def add(self, digest: str, worker: Worker) -> None:
        self._holders.setdefault(digest, set()).add(worker)
        self._held.setdefault(worker, set()).add(digest)

    def discard(self, digest: str, worker: Worker) -> None:
        holders = self._holders.get(digest)
        if holders is not None:
            holders.discard(worker)
            if not holders:
                del self._holders[digest]
        held = self._held.get(worker)
        if held is not None:
            held.discard(digest)

    def forget_worker(self, worker: Worker) -> Set[str]:
        """The worker is gone: the digests it held (some may now exist nowhere)."""
        held = self._held.pop(worker, set())
        for digest in held:
            holders = self._holders.get(digest)
            if holders is not None:
                holders.discard(worker)
                if not holders:
                    del self._holders[digest]
        return held

    def holders(self, digest: str) -> Set[Worker]:
        return set(self._holders.get(digest, ()))

    def count(self, digest: str) -> int:
        return len(self._holders.get(digest, ()))

    def holds(self, worker: Worker, digest: str) -> bool:
        return digest in self._held.get(worker, ())

    def __len__(self) -> int:
        return len(self._holders)
