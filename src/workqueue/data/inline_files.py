"""Small files that travel inside a task or a result message instead of streamed beside it.

A Parsl app over Work Queue sends two small files per call (its pickled function and its map of
file names, a few hundred bytes to a few KiB, used once) and gets one back (its pickled result).
Streamed, each costs a ``put`` or ``output`` message, a chunk and its acknowledgement, a digest on
each side, and on the worker a file in its cache and a link into the sandbox; on this project's
test machine creating a file on its disk costs 0.1 to 0.8 ms of CPU, which made those copies the
largest cost of such a task. Inline, an input costs a read on the master and one write in the
sandbox; an output, one read on the worker and one write on the master.

Only files nobody keeps go inline: an input the worker is to cache is sent once and then found
there, which inlining would undo. The bounds (``wire_checks``: INLINE_FILE_MAX a file,
INLINE_FILES_MAX files and INLINE_BYTES_MAX bytes a message) keep the message small; larger files
go the usual way.
"""
from __future__ import annotations

import os
import stat
from typing import Optional

from ..files import File
from ..wire.checks import INLINE_BYTES_MAX, INLINE_FILE_MAX, INLINE_FILES_MAX

InlineFile = list  # [remote name, mode, bytes], as the "files" field of a task or a result carries it


class Budget:
    """What one message may still carry inline."""

    def __init__(self) -> None:
        self.files = INLINE_FILES_MAX
        self.bytes = INLINE_BYTES_MAX

    def room_for(self, size: int) -> bool:
        return self.files > 0 and size <= INLINE_FILE_MAX and size <= self.bytes

    def take(self, entry: InlineFile) -> InlineFile:
        self.files -= 1
        self.bytes -= len(entry[2])
        return entry


def read_input(f: File, budget: Budget) -> Optional[InlineFile]:
    """The inline entry of an input the worker will not keep (a local file or a buffer) if it is
    small enough; None for the usual way (which also reports a file that cannot be read)."""
    if f.cache or f.unpack or not f.is_local:
        return None
    if f.data is not None:
        data = bytes(f.data)
        return budget.take([f.remote, 0o644, data]) if budget.room_for(len(data)) else None
    data_mode = _read_small(f.local, budget)
    if data_mode is None:
        return None
    return budget.take([f.remote, data_mode[1], data_mode[0]])


def read_output(name: str, path: str, budget: Budget) -> Optional[InlineFile]:
    """The inline entry of a task's output at ``path`` (in its sandbox) if it is small enough."""
    data_mode = _read_small(path, budget, os.O_NOFOLLOW)
    if data_mode is None:
        return None
    return budget.take([name, data_mode[1], data_mode[0]])


def _read_small(path: Optional[str], budget: Budget, flags: int = 0) -> Optional[tuple]:
    """(bytes, permission bits) of a regular file that fits the budget, else None. One open, one
    fstat and one read: the size is the one the read saw, not one from an earlier stat."""
    if path is None:
        return None
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | flags)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or not budget.room_for(st.st_size):
            return None
        data = os.read(fd, st.st_size + 1)  # one byte more shows a file that grew meanwhile
        if len(data) != st.st_size:
            return None
        return data, stat.S_IMODE(st.st_mode)
    except OSError:
        return None
    finally:
        os.close(fd)
