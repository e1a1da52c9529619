"""File specs for tasks: what travels, under which name, and whether the worker keeps it.

Remote names are checked here, once, at submit: a name that is absolute or climbs out of the
sandbox is refused before anything is sent.
"""
from __future__ import annotations

import dataclasses
import os
import stat
import uuid
from dataclasses import dataclass
from typing import Dict, Optional, Tuple, Union

from .data import fastio
from .wire.names import check_remote_name  # defined there; still importable from here


@dataclass(frozen=True)
class File:
    """One input or output of a task.

    ``local`` is the path on the master; ``remote`` the name inside the task's sandbox (default:
    the basename of ``local``); ``cache`` keeps an input on the worker for later tasks.
    ``data`` makes an input from memory instead of a local file (CCTools' ``specify_buffer``).
    ``temp_id`` names a temporary file (``File.temp()``): it lives only in workers' caches, written by
    one task's output and read by later tasks' inputs, never passing through the master.
    """

    local: Optional[str]
    remote: str = ""
    cache: bool = False
    data: Optional[bytes] = None
    temp_id: Optional[str] = None
    source_url: Optional[str] = None
    unpack: bool = False  # a tar archive the worker unpacks once, the task seeing its directory
    until_pruned: bool = False  # a temporary file kept after its readers are done, until Manager.prune

    def __post_init__(self) -> None:
        if not self.remote:
            if self.temp_id is not None:
                object.__setattr__(self, "remote", self.temp_id)
            elif self.source_url is not None:
                name = self.source_url.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
                object.__setattr__(self, "remote", name if name and ":" not in name else "url-input")
            elif self.local is None:
                raise ValueError("a buffer input needs a remote name")
            else:
                object.__setattr__(self, "remote", os.path.basename(self.local.rstrip("/")))
        object.__setattr__(self, "remote", check_remote_name(self.remote))


    @classmethod
    def temp(cls, remote: str = "", until_pruned: bool = False) -> "File":
        """A new temporary file (TaskVine's ``declare_temp``); give it to a task as an output, then to
        later tasks as an input. ``remote``: its name in the sandboxes (default: its own id).
        ``until_pruned``: its copies stay once the tasks reading it are done, until ``Manager.prune``
        (for a caller that submits readers only as they become ready, as the Dask runner does);
        by default they go as soon as it has been read and no pending task reads it."""
        return cls(None, remote, cache=True, temp_id=f"temp-{uuid.uuid4().hex[:16]}",
                   until_pruned=bool(until_pruned))

    @classmethod
    def url(cls, url: str, remote: str = "", cache: bool = True) -> "File":
        """An input the worker downloads itself (http:// or https://), never through the master; kept
        in its cache, named by its content, unless ``cache`` is False. A worker that cannot get it
        fails the task with INPUT_MISSING and the reason (the HTTP status)."""
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ValueError(f"File.url: {str(url)[:200]!r} is not an http:// or https:// URL")
        return cls(None, remote, cache=cache, source_url=url)

    @classmethod
    def untar(cls, archive: "FileLike", remote: str = "") -> "File":
        """A tar archive (a local path, a File, or a temporary file) that each worker unpacks once
        into its cache; tasks see the unpacked directory, read-only, under ``remote`` (TaskVine's
        ``declare_untar``). Not for URLs yet."""
        source = as_file(archive)
        if source.source_url is not None or source.data is not None:
            raise ValueError("File.untar: the archive must be a local file or a temporary file (not a URL "
                             "or a buffer)")
        name = remote or source.remote.split(".tar")[0].split(".tgz")[0] or "unpacked"
        return dataclasses.replace(source, remote=check_remote_name(name), cache=True, unpack=True)

    def named(self, remote: str) -> "File":
        """The same file under another name in the sandbox."""
        return dataclasses.replace(self, remote=remote)

    @property
    def is_local(self) -> bool:
        """A file of the master's (a path or a buffer), as opposed to a temporary file."""
        return self.temp_id is None and self.source_url is None


FileLike = Union[str, "os.PathLike[str]", File, Tuple[str, str]]


def as_file(spec: FileLike, cache: bool = False) -> File:
    if isinstance(spec, File):
        return spec
    if isinstance(spec, tuple) and isinstance(spec[0], File):
        return spec[0].named(spec[1])
    if isinstance(spec, tuple):
        local, remote = spec
        return File(os.fspath(local), remote, cache=cache)
    return File(os.fspath(spec), cache=cache)


class DigestMemo:
    """Content digests of local files, computed once per file version.

    A version is (path, size, mtime_ns, inode): a file rewritten in place gets a new digest, so a
    worker never runs a task against a stale cached copy.
    """

    def __init__(self) -> None:
        self._known: Dict[str, Tuple[Tuple[int, int, int], str]] = {}

    def digest(self, path: str) -> Tuple[str, int, int]:
        """Return (digest, size, mode) of ``path``; raises FileNotFoundError if it is gone."""
        st = os.stat(path)
        if stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError(path)
        version = (st.st_size, st.st_mtime_ns, st.st_ino)
        known = self._known.get(path)
        if known is None or known[0] != version:
            known = (version, fastio.hash_file(path))
            self._known[path] = known
        return known[1], st.st_size, stat.S_IMODE(st.st_mode)
