"""Removing files off the worker's loop.

Unlinking a large file frees its pages in the caller's time: 46 ms or more for a 256 MiB input on
tmpfs, longer on a busy machine. Done by the loop, that delay falls between a task's result and
the first chunk of the next transfer, which waits unacknowledged (measured on a busy 2-core VM:
the first ``ack`` of a 256 MiB input came 42-112 ms after its chunk when the previous input was
removed in line, 7-21 ms with this reaper). So a file to remove is renamed into a trash directory at once (its name is
free again, and a file of the same name may arrive meanwhile) and a thread of its own unlinks it
there; ``os.unlink`` releases the GIL while the kernel frees the pages. The thread runs at the
lowest priority, so on a busy machine the transfers go first; what waits in the trash is bounded
(``PENDING_MAX``), past which files are removed in line again, so disk space is never held long.
"""
from __future__ import annotations

import itertools
import logging
import os
import queue
import shutil
import threading
from typing import Optional, Tuple

log = logging.getLogger(__name__)

REAPER_NICENESS = 19
PENDING_MAX = 1 << 30  # bytes waiting in the trash at most


def remove_now(path: str) -> None:
    """Remove a file or a directory tree; a path already gone is not an error."""
    try:
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            os.unlink(path)
    except FileNotFoundError:
        pass


class Reaper:
    """Removes what it is given in the background; ``close`` waits for what is queued."""

    def __init__(self, trash: str) -> None:
        self.trash = trash
        remove_now(trash)  # what a previous worker left there
        os.makedirs(trash, exist_ok=True)
        self._names = itertools.count()
        self._queue: "queue.SimpleQueue[Optional[Tuple[str, int]]]" = queue.SimpleQueue()
        self._thread: Optional[threading.Thread] = None
        self._pending = 0  # bytes queued and not yet removed
        self._lock = threading.Lock()

    def remove(self, path: str) -> None:
        """``path`` is gone from its place when this returns; its bytes go later."""
        try:
            size = os.lstat(path).st_size
        except OSError:
            return
        with self._lock:
            full = self._pending + size > PENDING_MAX
            if not full:
                self._pending += size
        if full:
            remove_now(path)
            return
        target = os.path.join(self.trash, str(next(self._names)))
        try:
            os.rename(path, target)
        except OSError as error:  # gone already; or the trash is on another file system, or closed
            self._done(size)
            if os.path.lexists(path):
                log.debug("could not move %s to the trash (%s): removing it in line", path, error)
                remove_now(path)
            return
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="workqueue-reaper", daemon=True)
            self._thread.start()
        self._queue.put((target, size))

    def _done(self, size: int) -> None:
        with self._lock:
            self._pending -= size

    def _run(self) -> None:
        try:  # Linux: a thread's own niceness; the loop's transfers go first on a busy machine
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), REAPER_NICENESS)
        except (AttributeError, OSError):
            pass
        while True:
            item = self._queue.get()
            if item is None:
                return
            try:
                remove_now(item[0])
            except OSError as error:  # a permission changed under us: the trash is emptied at close
                log.warning("could not remove %s: %s", item[0], error)
            self._done(item[1])

    def close(self) -> None:
        """Let the queued removals finish, then empty the trash."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None
        remove_now(self.trash)
