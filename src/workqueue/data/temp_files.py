"""The master's temporary files: which task writes each, what it wrote (its digest), which pending
tasks read it, and why one can never exist. Pure: where the copies are is the replica table's.

A temporary file is made by one task's output and read by later tasks' inputs; it exists only in
workers' caches. A task that reads one waits outside the scheduler until a copy exists somewhere.
Once it has been read and no pending task reads it any more, its copies are removed (a task that
reads it later gets it made again, from its producer: see ``lineage``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Optional, Set

from ..files import File


@dataclass
class TempFile:
    temp_id: str
    producer: Optional[int] = None  # the task writing it now (None: none is pending)
    spec: Optional[Dict[str, Any]] = None  # the spec of the task that writes it, kept for lineage
    digest: Optional[str] = None  # what it holds, once made
    size: int = 0
    failed: Optional[str] = None  # why it can never exist
    readers: Set[int] = field(default_factory=set)  # pending tasks that read it
    read: bool = False  # a task has read it
    until_pruned: bool = False  # kept when no pending task reads it, until Manager.prune


class TempFiles:
    def __init__(self) -> None:
        self._files: Dict[str, TempFile] = {}
        self._by_digest: Dict[str, Set[str]] = {}  # digest -> ids of the files holding it

    def made(self, temp: TempFile, digest: Optional[str], size: int = 0) -> None:
        """Record what a file holds (None: nothing any more)."""
        if temp.digest is not None:
            ids = self._by_digest.get(temp.digest)
            if ids is not None:
                ids.discard(temp.temp_id)
                if not ids:
                    del self._by_digest[temp.digest]
        temp.digest, temp.size = digest, size
        if digest is not None:
            self._by_digest.setdefault(digest, set()).add(temp.temp_id)

    def with_digest(self, digest: str) -> List[TempFile]:
        return [self._files[i] for i in self._by_digest.get(digest, ())]

    def count_with_digest(self, digest: str) -> int:
        """How many files hold these bytes (thousands may share one: the Dask runner's empty files)."""
        return len(self._by_digest.get(digest, ()))

    def get(self, temp_id: str) -> Optional[TempFile]:
        return self._files.get(temp_id)

    def __iter__(self):
        return iter(self._files.values())

    def __len__(self) -> int:
        return len(self._files)

    def produced_by(self, task_id: int, spec: Dict[str, Any]) -> List[TempFile]:
        """Note the temporary outputs of a task being submitted; their earlier failure is forgotten."""
        made = []
        for f in temp_outputs(spec):
            temp = self._files.setdefault(f.temp_id, TempFile(f.temp_id))
            temp.producer, temp.spec, temp.failed = task_id, spec, None
            temp.until_pruned = f.until_pruned
            made.append(temp)
        return made

    def read_by(self, task_id: int, spec: Dict[str, Any]) -> List[TempFile]:
        """Note the temporary inputs of a task being submitted. Raises ValueError for one that no
        task writes (it could never exist: the task would wait for ever)."""
        temps = []
        for f in temp_inputs(spec):
            temp = self._files.get(f.temp_id)
            if temp is None:
                raise ValueError(f"no task writes the temporary file {f.temp_id!r} (input {f.remote!r}): "
                                 f"submit the task that writes it first")
            temps.append(temp)
        for temp in temps:
            temp.readers.add(task_id)
        return temps

    def forget_task(self, task_id: int, spec: Dict[str, Any]) -> None:
        """The task is done or canceled: it reads nothing more and writes nothing more."""
        for f in temp_inputs(spec):
            temp = self._files.get(f.temp_id)
            if temp is not None:
                temp.readers.discard(task_id)
        for f in temp_outputs(spec):
            temp = self._files.get(f.temp_id)
            if temp is not None and temp.producer == task_id:
                temp.producer = None

    def unneeded(self, spec: Dict[str, Any]) -> List[TempFile]:
        """Of a task's temporary inputs, those read at least once that no pending task reads any more."""
        temps = [self._files.get(f.temp_id) for f in temp_inputs(spec)]
        return [t for t in temps if t is not None and t.read and not t.readers and t.digest is not None
                and not t.until_pruned]

    def forget(self, temp: TempFile) -> None:
        """The file is no more: a task reading it later fails as one reading a file no task writes."""
        self.made(temp, None)
        self._files.pop(temp.temp_id, None)


def temp_inputs(spec: Dict[str, Any]) -> List[File]:
    return [f for f in spec["inputs"] if f.temp_id is not None]


def temp_outputs(spec: Dict[str, Any]) -> List[File]:
    return [f for f in spec["outputs"] if f.temp_id is not None]


def temp_ids(files: Iterable[File]) -> Set[str]:
    return {f.temp_id for f in files if f.temp_id is not None}
