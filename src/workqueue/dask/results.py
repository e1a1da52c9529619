"""Where each finished Dask key's result is: pickled bytes on the master, a temporary file on the
workers, or both (DaskVine's ``worker_transfers``).

With worker transfers, a Dask task writes its result to a temporary file of its own
(``File.temp(until_pruned=True)``). A result that pickles to more than ``inline_max`` bytes stays
only there: the tasks that need it read it from their sandboxes, their workers fetching it from
peers, and the master never sees its bytes. A smaller one comes back with its task's outcome,
and its file is left empty: for a result of a few bytes, a peer transfer costs more than the trip
through the master, and empty files all share one copy in each worker's cache. Each file is pruned
once every task that needs it has finished; lineage makes a lost one again.

A file costs each task about 0.1-0.6 ms of the worker's and the master's time (measured with 40
per task), more than a tiny Dask task itself: so once every result of a task group (Dask's
``key_split``: ``"sum-aggregate"``, ``"inc"``) has come back small, that group's tasks go without
files. One that then turns out large is not sent back: its batch fails with TooLargeToReturn and
goes again, the group's keys with files from then on, and one per task (a batch of large results
gains nothing, and without worker transfers it could be more than a result may carry).

Requested keys come back to the master: inline, or fetched from a worker holding their file.
Without worker transfers every result comes back inline, as before temporary files existed.
"""
from __future__ import annotations

from collections import Counter
from typing import Dict, Hashable, Iterable, List, Optional, Set, Tuple

from dask.utils import key_split

from ..files import File
from ..manager import Manager
from . import remote

Key = Hashable
INLINE_MAX = 64 << 10  # bytes: a pickled result up to this size also comes back with its task


class Results:
    def __init__(self, manager: Manager, worker_transfers: bool, inline_max: int) -> None:
        self.manager = manager
        self.worker_transfers = worker_transfers
        self.inline_max = inline_max
        self.inline: Dict[Key, bytes] = {}
        self.files: Dict[Key, File] = {}  # keys whose result is only in a temporary file
        self._outputs: Dict[Key, File] = {}  # every key's temporary file, until pruned
        self._users: Counter = Counter()  # temp id -> keys whose result is that file (aliases share one)
        self._made: List[File] = []  # every file of this graph, for the master to forget at the end
        self._small: Set[str] = set()  # task groups whose results have all come back so far
        self._large: Set[str] = set()  # task groups with a result too large to come back

    def outputs_for(self, keys: List[Key]) -> Optional[Dict[Key, File]]:
        """A temporary file for each key's result unless its group's results have all been small
        (the one it had, for a batch sent again); None without worker transfers."""
        if not self.worker_transfers:
            return None
        outputs = {}
        for key in keys:
            if key_split(key) in self._small:
                continue
            f = self._outputs.get(key)
            if f is None:
                f = self._outputs[key] = File.temp(until_pruned=True)
                self._made.append(f)
                self._users[f.temp_id] += 1
            outputs[key] = f
        return outputs

    def too_large(self, key: Key) -> None:
        """``key``'s result could not come back: its group's keys get files from now on."""
        group = key_split(key)
        self._small.discard(group)
        self._large.add(group)

    def size_known(self, key: Key) -> bool:
        """Whether ``key`` needs no file (its group's results have all come back), or surely needs
        one (one of them could not), or there are no files at all."""
        group = key_split(key)
        return not self.worker_transfers or group in self._small or group in self._large

    def is_large(self, key: Key) -> bool:
        """Whether a result of ``key``'s group has been too large to come back."""
        return key_split(key) in self._large

    def inputs_for(self, dependencies: Iterable[Key]) -> Tuple[Dict[Key, bytes], Dict[Key, str], List[File]]:
        """The values a batch needs: pickled bytes to send in its call, and the temporary files to
        give it as inputs (with the sandbox name of each key's)."""
        inline, names, files = {}, {}, {}
        for key in dependencies:
            f = self.files.get(key)
            if f is None:
                inline[key] = self.inline[key]
            else:
                names[key] = f.remote
                files[f.temp_id] = f
        return inline, names, list(files.values())

    def finished(self, key: Key, data: Optional[bytes]) -> None:
        """A task's result: its bytes, or None when it is only in its file."""
        if data is None:
            self.files[key] = self._outputs[key]
            self.too_large(key)
            return
        self.inline[key] = data
        group = key_split(key)
        if self.worker_transfers and group not in self._large:
            self._small.add(group)

    def alias(self, key: Key, target: Key) -> None:
        """``key``'s result is ``target``'s (a Dask alias): the same bytes, or the same file."""
        if target in self.files:
            f = self.files[key] = self._outputs[key] = self.files[target]
            self._users[f.temp_id] += 1
        else:
            self.inline[key] = self.inline[target]

    def pickled(self, key: Key) -> bytes:
        """A finished key's pickled result, fetched from a worker when only its file holds it."""
        data = self.inline.get(key)
        if data is not None:
            return data
        f = self.files[key]
        try:
            content = self.manager.fetch(f)
        except OSError as error:  # FileNotFoundError too: no worker holds it any more
            raise OSError(f"the result of Dask key {key!r} could not be fetched from the workers: {error}") from error
        data = self.inline[key] = bytes(remote.unframe(content, f.remote, key))
        return data

    def drop(self, keys: Iterable[Key]) -> None:
        """Results no unfinished task needs: forgotten here, their files pruned on the workers."""
        pruned = []
        for key in keys:
            self.inline.pop(key, None)
            self.files.pop(key, None)
            f = self._outputs.pop(key, None)
            if f is not None:
                self._users[f.temp_id] -= 1
                if not self._users[f.temp_id]:
                    del self._users[f.temp_id]
                    pruned.append(f)
        if pruned:
            self.manager.prune(pruned)

    def close(self) -> None:
        """The graph is done (or failed): every file left is pruned, and the master forgets all of
        this graph's files, with the lineage it kept for them; nothing will read them again."""
        self._outputs.clear()
        self._users.clear()
        self.files.clear()
        if self._made:
            self.manager.prune(self._made, forget=True)
            self._made = []
