"""The worker's content-addressed store: files named by their digest, bounded by a disk budget.

Entries a task asked to cache are kept (least recently used evicted first, never one a running
task uses) and survive a reconnect to the master; the rest leave as soon as their task is done.

Every file the master sends is *awaited* by a task whose message follows it: until that task has
staged it, the file is neither evicted nor removed by the end of another task that used the same
bytes. (A running task and a queued one may have identical uncached inputs: the running task's end
used to remove the queued task's copy between its transfer and its staging.)
"""
from __future__ import annotations

import collections
import logging
import os
import re
import shutil
from dataclasses import dataclass
from typing import Any, List, Optional, Tuple

from . import fastio
from .reaper import Reaper
from .transfer import Incoming

log = logging.getLogger(__name__)

DIGEST_LENGTH = len(fastio.hash_bytes(b""))
_plain_hex_digest = re.compile("[0-9a-f]{%d}" % DIGEST_LENGTH).fullmatch


def is_digest(value: Any) -> bool:
    """True for a digest as fastio writes it (lowercase hex of its length): the only names a
    cached file may have, since a digest from a peer becomes a path."""
    return type(value) is str and _plain_hex_digest(value) is not None


def _checked(digest: Any) -> str:
    if not is_digest(digest):
        raise ValueError(f"{str(digest)[:80]!r} is not a digest ({DIGEST_LENGTH} lowercase hex characters)")
    return digest


@dataclass
class _Entry:
    size: int
    keep: bool = False
    pins: int = 0
    awaited: int = 0  # transfers admitted whose task has not staged the file yet
    temp: bool = False  # a task's temporary output: kept for the master's later tasks, never listed


class Cache:
    def __init__(self, root: str, budget_bytes: Optional[int] = None, reaper: Optional[Reaper] = None) -> None:
        self.root = root
        self.budget = budget_bytes
        self.reaper = reaper  # removes files off the caller's time; None: in line
        self._tmp = os.path.join(root, "tmp")
        os.makedirs(self._tmp, exist_ok=True)
        self._entries: "collections.OrderedDict[str, _Entry]" = collections.OrderedDict()
        self.hits = 0

    def path(self, digest: str) -> str:
        """Where a cached file lives; ValueError for anything but a plain digest."""
        return os.path.join(self.root, _checked(digest))

    def has(self, digest: str) -> bool:
        return digest in self._entries

    def unpacked_path(self, digest: str) -> str:
        """Where the archive ``digest`` is unpacked (by worker.archives), read-only, for every task."""
        return os.path.join(self.root, "unpacked", _checked(digest))

    def kept(self) -> List[str]:
        """Digests worth telling a master about: the ones tasks asked to cache."""
        return [d for d, e in self._entries.items() if e.keep and not e.temp]

    def receive(self, digest: str, size: int, xfer: int) -> Incoming:
        """Where the bytes of an arriving file go until they are verified (at most ``size`` bytes
        of them); ValueError for a digest that is not plain hex, or a negative size."""
        if type(size) is not int or size < 0:
            raise ValueError(f"a file of size {size!r}")
        name = f"{xfer:d}-{_checked(digest)}"
        return Incoming(os.path.join(self._tmp, name), expected_digest=digest, expected_size=size)

    def admit(self, digest: str, incoming: Incoming, mode: int, keep: bool = False) -> List[str]:
        """Move a verified file into the store; return digests evicted to stay in budget."""
        incoming.finish(self.path(digest), mode & 0o777 | 0o400)
        entry = self._entries.pop(digest, None) or _Entry(incoming.size)
        entry.awaited += 1
        entry.keep = entry.keep or keep
        self._entries[digest] = entry
        return self._evict()

    def adopt(self, path: str, mode: int, temp: bool = True, keep: bool = True) -> Tuple[str, int, List[str]]:
        """Take a task's temporary output (or a downloaded file: ``temp=False``) into the store
        (moved, not copied): (digest, size, digests evicted to stay in budget)."""
        digest = fastio.hash_file(path)
        size = os.stat(path).st_size
        if digest in self._entries:
            os.unlink(path)
        else:
            os.chmod(path, mode & 0o777 | 0o400)
            os.replace(path, self.path(digest))
            self._entries[digest] = _Entry(size)
        entry = self._entries[digest]
        entry.keep = entry.keep or keep
        entry.temp = entry.temp or temp
        self._entries.move_to_end(digest)
        return digest, size, self._evict()

    def drop_temps(self) -> List[str]:
        """Remove every temporary file (its master is gone: no one will ask for it)."""
        temps = [d for d, e in self._entries.items() if e.temp and e.pins == 0]
        for digest in temps:
            self.remove(digest)
        return temps

    def use(self, digest: str, keep: bool) -> None:
        """A task is about to link this file: pin it, and mark it kept if the task asked to cache."""
        entry = self._entries[digest]
        entry.pins += 1
        if entry.awaited:
            entry.awaited -= 1
        entry.keep = entry.keep or keep
        self._entries.move_to_end(digest)

    def not_awaited(self, digest: str, keep: bool = False) -> None:
        """The task a transfer was for will not stage it (refused, failed): the file may go, unless
        that task asked to cache it (the master counts it as held here from the moment it sent it)."""
        entry = self._entries.get(digest)
        if entry is not None and entry.awaited:
            entry.awaited -= 1
            entry.keep = entry.keep or keep
            self._drop_if_unused(digest, entry)

    def forget_awaited(self) -> None:
        """The session that sent files is over: tasks it did not send will never stage them."""
        for digest, entry in list(self._entries.items()):
            if entry.awaited:
                entry.awaited = 0
                self._drop_if_unused(digest, entry)

    def release(self, digest: str) -> None:
        """The task that used this file is done; drop the file unless someone asked to keep it."""
        entry = self._entries.get(digest)
        if entry is None:
            return
        entry.pins -= 1
        self._drop_if_unused(digest, entry)

    def _drop_if_unused(self, digest: str, entry: _Entry) -> None:
        if entry.pins <= 0 and not entry.awaited and not entry.keep:
            self.remove(digest)

    def remove(self, digest: str) -> None:
        entry = self._entries.pop(digest, None)
        if entry is None:
            return
        if self.reaper is not None:
            self.reaper.remove(self.path(digest))
            return
        try:
            os.unlink(self.path(digest))
        except FileNotFoundError:
            pass

    def used_bytes(self) -> int:
        return sum(e.size for e in self._entries.values())

    def _evict(self) -> List[str]:
        if self.budget is None:
            return []
        evicted = []
        used = self.used_bytes()
        for digest in list(self._entries):
            if used <= self.budget:
                break
            entry = self._entries[digest]
            if entry.pins == 0 and not entry.awaited:
                used -= entry.size
                self.remove(digest)
                evicted.append(digest)
        return evicted

    def wipe(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
        self._entries.clear()
