"""Where an output arriving from a worker lands on the master, if anywhere.

The worker names each file it sends; the name is the worker's word, not the task's. It is accepted
only if it is a declared output, or a clean relative path below a declared output (a directory),
and the resulting path must stay under that output's local path: ``out.txt//etc/passwd`` or
``dir/../../x`` lead nowhere.
"""
from __future__ import annotations

import os
import posixpath
from typing import Iterable, Optional

from .files import File

PARTIAL_MODE_BITS = 0o755  # a worker may make an output executable, never writable by others


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
