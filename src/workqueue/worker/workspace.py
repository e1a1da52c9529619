"""A worker's workspace: its own directory under the parent given by ``-s``, held by a lock for the
worker's whole life, and the removal of the workspaces that dead workers left behind.

A worker removes its workspace when it exits, but one killed by SIGKILL (or by a crash, or the
machine's out-of-memory killer) cannot. So each worker holds an exclusive ``flock`` on a file in
its workspace, which the kernel releases when the process dies however it dies; a worker starting
in the same parent removes every ``worker-<uid>-*`` workspace whose lock nobody holds.

A workspace appears under its final name with its lock already held (it is made under a hidden
name and renamed), so a starting worker's workspace is never mistaken for a dead one's.
"""
from __future__ import annotations

import fcntl
import logging
import os
import re
import shutil
import tempfile
from typing import List, Optional, Tuple

log = logging.getLogger("workqueue.worker")

LOCK_NAME = "worker.lock"
MEMORY_PARENT = "/dev/shm"
MEMORY_FREE_MIN = 1 << 30  # bytes free there, or coprocess sandboxes stay in the workspace
KEEP_NAME = "keep-cache"  # left by --keep-cache: the user wants this workspace, never swept


def _pattern(uid: int) -> "re.Pattern[str]":
    return re.compile(rf"worker-{uid}-[0-9]+(-[0-9]+)?")


class Workspace:
    def __init__(self, parent: str, keep: bool = False) -> None:
        self.parent = os.path.abspath(parent)
        self.keep = keep
        self.path = os.path.join(self.parent, f"worker-{os.getuid()}-{os.getpid()}")
        self._lock = -1

    def claim(self) -> str:
        """Remove dead workers' workspaces, then make ours, locked; return its path."""
        os.makedirs(self.parent, exist_ok=True)
        remove_stale(self.parent)
        staging = tempfile.mkdtemp(prefix=f".worker-{os.getuid()}-{os.getpid()}.", dir=self.parent)
        lock = -1
        try:
            lock = _locked(os.path.join(staging, LOCK_NAME))
            if self.keep:
                open(os.path.join(staging, KEEP_NAME), "w").close()
            self.path = _rename_to_free_name(staging, self.path)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            if lock >= 0:
                os.close(lock)
            raise
        self._lock = lock
        return self.path

    def release(self) -> None:
        """Remove the workspace (unless it is to be kept), then let go of its lock."""
        if self._lock < 0:
            return
        if not self.keep:
            shutil.rmtree(self.path, ignore_errors=True)
        os.close(self._lock)
        self._lock = -1


def memory_parent(path: str = MEMORY_PARENT, free_min: int = MEMORY_FREE_MIN) -> Optional[str]:
    """A RAM-backed directory for coprocess calls' sandboxes, if there is one with room: each call
    makes and removes a few small files, which cost 7 us each on tmpfs against 0.1 to 0.8 ms of CPU
    on this project's test machine's disk."""
    try:
        st = os.statvfs(path)
    except OSError:
        return None
    if not os.path.isdir(path) or not os.access(path, os.W_OK | os.X_OK) or st.f_bavail * st.f_frsize < free_min:
        return None
    return path


def coprocess_root(choice: Optional[str], workspace: str) -> Tuple[str, Optional[Workspace]]:
    """Where coprocess calls' sandboxes live, and the scratch workspace holding them (locked and
    swept like a workspace; to be released at exit): one of their own in memory (``memory_parent``)
    or under ``choice`` (--coprocess-scratch), else the workspace itself (``choice`` "workspace",
    or no room in memory)."""
    parent = None if choice == "workspace" else choice or memory_parent()
    if parent is None:
        return workspace, None
    scratch = Workspace(parent)
    try:
        return scratch.claim(), scratch
    except OSError as error:
        log.warning("coprocess sandboxes stay in the workspace: %s: %s", parent, error)
        return workspace, None


def _locked(path: str) -> int:
    """A new lock file, locked by us for as long as the descriptor stays open (not inherited by
    the tasks we start: O_CLOEXEC)."""
    fd = os.open(path, os.O_CREAT | os.O_RDWR | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _rename_to_free_name(staging: str, path: str) -> str:
    """``path``, or ``path-<n>`` when a live worker has it (a worker with our pid on another host
    sharing the parent directory)."""
    for candidate in [path] + [f"{path}-{n}" for n in range(1, 100)]:
        try:
            os.rename(staging, candidate)
            return candidate
        except OSError as error:
            if not os.path.exists(candidate):
                raise error
    raise FileExistsError(f"no free workspace name beside {path}")


def remove_stale(parent: str) -> List[str]:
    """Remove this user's workspaces in ``parent`` whose worker is dead (its lock is free); return
    their paths. A workspace without a lock file (made by an older worker, which may be alive), one
    kept with --keep-cache, another user's, or anything not named like a workspace is left alone."""
    uid = os.getuid()
    pattern = _pattern(uid)
    removed = []
    try:
        entries = list(os.scandir(parent))
    except OSError:
        return removed
    for entry in entries:
        if pattern.fullmatch(entry.name) and _remove_if_dead(entry, uid):
            removed.append(entry.path)
            log.warning("removed %s, the workspace of a worker that is gone", entry.path)
    return removed


def _remove_if_dead(entry: os.DirEntry, uid: int) -> bool:
    try:
        if not entry.is_dir(follow_symlinks=False) or entry.stat(follow_symlinks=False).st_uid != uid:
            return False
        if os.path.lexists(os.path.join(entry.path, KEEP_NAME)):
            return False
        lock = _try_lock(os.path.join(entry.path, LOCK_NAME))
    except OSError:
        return False
    if lock is None:
        return False
    try:
        shutil.rmtree(entry.path, ignore_errors=True)
    finally:
        os.close(lock)
    return not os.path.lexists(entry.path)


def _try_lock(path: str) -> Optional[int]:
    """The lock file's descriptor, locked by us; None if a live worker holds it."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd
