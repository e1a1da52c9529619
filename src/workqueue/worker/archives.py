"""Archives a worker unpacks once for every task that uses them (``File.untar``): the unpacking, in
a fetcher thread (never in the worker's loop), into ``cache/unpacked/<digest of the archive>``,
its files read-only; and a task's view of it, a symlink in its sandbox. Its directories stay
writable by the worker's user, so that removing the workspace never needs special care."""
from __future__ import annotations

import os
import shutil
import stat
import tarfile
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..data.cache import Cache


class NotAnArchive(Exception):
    """The file is not a tar archive, or a damaged one."""


def unpack(archive: str, target: str) -> None:
    """Unpack the tar archive (any compression tarfile reads) into the new directory ``target``,
    refusing members that would land outside it, links out of it, and device files (tarfile's
    "data" filter); then make its files read-only."""
    os.makedirs(target)
    try:
        with tarfile.open(archive) as tar:
            tar.extractall(target, filter="data")
    except (tarfile.TarError, EOFError, OSError) as error:
        remove_tree(target)
        why = str(error).splitlines()[0].rstrip(":") if str(error) else type(error).__name__
        raise NotAnArchive(f"not a tar archive, or a damaged one ({why})") from None
    _read_only(target)


def _read_only(root: str) -> None:
    for parent, _, files in os.walk(root):
        for name in files:
            path = os.path.join(parent, name)
            if not os.path.islink(path):
                os.chmod(path, stat.S_IMODE(os.lstat(path).st_mode) & ~0o222)


def remove_tree(path: str) -> None:
    shutil.rmtree(path, ignore_errors=True)


def link_unpacked(cache: "Cache", digest: str, target: str) -> bool:
    """Show the unpacked archive at ``target`` in a sandbox; False if it is not unpacked here."""
    source = cache.unpacked_path(digest)
    if not os.path.isdir(source):
        return False
    os.makedirs(os.path.dirname(target), exist_ok=True)
    os.symlink(source, target)
    return True
