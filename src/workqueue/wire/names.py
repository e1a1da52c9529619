"""Remote names: where a task's files go inside its sandbox. Pure: no files, no state.

The user's side *normalizes* a name once, at submit (``check_remote_name``); the wire then carries
only normalized names, so a receiver needs no normalizing, only a strict yes or no
(``is_clean_remote_name``): a name from a peer that is not exactly what ``check_remote_name``
would have produced is refused, never "repaired" into something the sender did not mean.
"""
from __future__ import annotations

import posixpath
from typing import Any

MAX_REMOTE_NAME = 4096  # characters: PATH_MAX, which no path inside a sandbox can exceed anyway


def check_remote_name(name: str) -> str:
    """Return ``name`` normalized, or raise ValueError if it would land outside the sandbox."""
    if not isinstance(name, str) or not name or "\0" in name:
        raise ValueError(f"invalid remote file name {name!r}")
    if name.startswith("/"):
        raise ValueError(f"remote file name {name!r} is absolute: it must stay inside the task's sandbox")
    normal = posixpath.normpath(name)
    if normal == ".." or normal.startswith("../") or normal == ".":
        raise ValueError(f"remote file name {name!r} escapes the task's sandbox")
    if len(normal) > MAX_REMOTE_NAME:
        raise ValueError(f"remote file name of {len(normal)} characters: at most {MAX_REMOTE_NAME}")
    return normal


def is_clean_remote_name(name: Any) -> bool:
    """True if ``name`` is a relative POSIX path, already normalized, that stays in the sandbox.

    That is: a non-empty ``str`` of at most MAX_REMOTE_NAME characters, without NUL, not absolute,
    whose ``/``-separated components are neither empty (no ``//``, no trailing ``/``) nor ``.`` nor
    ``..``. Such a name is its own ``posixpath.normpath`` and ``check_remote_name`` returns it
    unchanged; every name ``check_remote_name`` returns is clean.
    """
    if type(name) is not str or not name or len(name) > MAX_REMOTE_NAME or "\0" in name or name[0] == "/":
        return False
    parts = name.split("/")
    return "" not in parts and "." not in parts and ".." not in parts
