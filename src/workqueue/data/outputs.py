"""Outputs arriving from workers: where each may land on the master, if anywhere, and the files
on their way there.

The worker names each file it sends; the name is the worker's word, not the task's. It is accepted
only if it is a declared output, or a clean relative path below a declared output (a directory),
and the resulting path must stay under that output's local path: ``out.txt//etc/passwd`` or
``dir/../../x`` lead nowhere.
"""
from __future__ import annotations

import errno
import os
import posixpath
from typing import Any, Dict, Iterable, List, Optional, Tuple

from ..files import File
from ..wire.protocol import ProtocolError
from .transfer import Incoming, partial_name

PARTIAL_MODE_BITS = 0o755  # a worker may make an output executable, never writable by others
STREAMS_PER_WORKER_MAX = 16  # a worker sends its outputs one after another: one or two are open at once


def local_output_path(outputs: Iterable[File], name: str) -> Optional[str]:
    """The local path for the arriving output ``name``, or None if the task declared no such output."""
    for f in outputs:
        if f.local is None:
            continue
        if name == f.remote:
            return f.local
        if name.startswith(f.remote + "/"):
            return _below(f.local, name[len(f.remote) + 1:])
    return None


def _below(directory: str, relative: str) -> Optional[str]:
    """``directory/relative`` if ``relative`` is a clean relative path that stays inside it."""
    if not relative or relative.startswith("/") or "\0" in relative or posixpath.normpath(relative) != relative:
        return None
    if relative == ".." or relative.startswith("../"):
        return None
    path = os.path.join(directory, relative)
    root = os.path.realpath(directory)
    parent = os.path.realpath(os.path.dirname(path))
    if parent != root and not parent.startswith(root + os.sep):
        return None  # a symlink below the declared directory points elsewhere
    return path


def output_mode(mode: int) -> int:
    """The permission bits an output gets: the worker's, less group and other write, plus owner rw."""
    return mode & PARTIAL_MODE_BITS | 0o600


class OutputReceiver:
    """Output files on their way from workers. Each is written under a partial name beside its
    destination and renamed into place only when its task's result arrives (``finish``), so a
    half-received file is never under its final name.

    The task records passed in hold the task's files in ``record.incoming`` (name -> (file, local
    path, mode)); this object holds the streams by (worker, transfer id).
    """

    def __init__(self) -> None:
        self._streams: Dict[Tuple[bytes, int], Tuple[Optional[Incoming], int]] = {}

    def begin(self, worker: bytes, xfer: int, task_id: int, record: Any, name: str, size: int, mode: int) -> bool:
        """Start receiving output ``name`` of a current task (``record``, None for a stale one).
        Returns False if the task declared no such output; its chunks are then acknowledged and
        discarded, as are a stale task's. Raises ProtocolError for a worker that opens more streams
        at once than any worker does (each holds an open file)."""
        if sum(1 for key in self._streams if key[0] == worker) >= STREAMS_PER_WORKER_MAX:
            raise ProtocolError(f"more than {STREAMS_PER_WORKER_MAX} outputs on their way at once")
        local = None if record is None else local_output_path(record.spec["outputs"], name)
        if local is None:
            self._streams[(worker, xfer)] = (None, task_id)
            return record is None
        os.makedirs(os.path.dirname(os.path.abspath(local)), exist_ok=True)
        incoming = Incoming(partial_name(local, f"{task_id}-{xfer}"), expected_size=size)
        previous = record.incoming.get(name)
        if previous is not None:
            previous[0].abort()  # the same output sent again: the last one counts
        record.incoming[name] = (incoming, local, mode)
        self._streams[(worker, xfer)] = (incoming, task_id)
        return True

    def chunk(self, worker: bytes, xfer: int, last: bool) -> Tuple[Optional[Incoming], Optional[int]]:
        """The file a chunk belongs to and its task's id ((None, None) for one to discard)."""
        key = (worker, xfer)
        incoming, task_id = self._streams.pop(key, (None, None)) if last else self._streams.get(key, (None, None))
        return incoming, task_id

    def forget_worker(self, worker: bytes) -> None:
        for key in [k for k in self._streams if k[0] == worker]:
            del self._streams[key]


def land_inline(record: Any, files: List[list]) -> Tuple[int, List[str], List[str]]:
    """Write the small outputs a result carried (inline_files.py) where the task wants them.
    Returns the bytes written, the names that could not be written (missing outputs) and the names
    the task did not declare (dropped).

    Each is written in one write straight under its name: the whole file is at hand, so there is no
    half-received file to hide, and a partial name and a rename would cost another 0.1 ms of CPU a
    file on this project's test machine's disk."""
    written, failed, undeclared = 0, [], []
    for name, mode, data in files:
        local = local_output_path(record.spec["outputs"], name)
        if local is None:
            undeclared.append(name)
            continue
        previous = record.incoming.pop(name, None)
        if previous is not None:
            previous[0].abort()  # the same output streamed too: the one in the result counts
        try:
            _write_whole(local, data, output_mode(mode))
        except OSError:
            failed.append(name)
            continue
        written += len(data)
    return written, failed, undeclared


def _write_whole(local: str, data: bytes, mode: int) -> None:
    parent = os.path.dirname(os.path.abspath(local))
    if not os.path.isdir(parent):
        os.makedirs(parent, exist_ok=True)
    try:
        fd = os.open(local, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    except OSError as error:
        if error.errno != errno.ELOOP:
            raise
        partial = partial_name(local, "inline")  # a symlink there is replaced, as a streamed output replaces it
        _write_whole(partial, data, mode)
        os.replace(partial, local)
        return
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fchmod(fd, mode)  # whatever the umask took away, or an older file's bits
    finally:
        os.close(fd)


def finish_outputs(record: Any, missing: List[str]) -> List[str]:
    """Rename a task's received outputs into place; return the names whose transfer did not complete."""
    failed = []
    for name, (incoming, local, mode) in record.incoming.items():
        if incoming.digest is None:
            incoming.abort()
            if name not in missing:
                failed.append(name)
            continue
        incoming.finish(local, output_mode(mode))
    record.incoming.clear()
    return failed


def abort_outputs(record: Any) -> None:
    """Remove a task's partly received outputs."""
    for incoming, _, _ in record.incoming.values():
        incoming.abort()
    record.incoming.clear()
