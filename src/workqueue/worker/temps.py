"""A task's temporary outputs on the worker: taken into the cache, named by their content, and
reported to the master in the task's result instead of being sent back."""
from __future__ import annotations

import logging
import os
from typing import List, Optional, Set, Tuple

from ..data.cache import Cache
from ..ratelimit import LimitedLog

log = logging.getLogger("workqueue.worker")


def keep_temps(cache: Cache, task_id: int, temp_names: List[str], present: List[Tuple[str, str]],
               missing: List[str], complain: Optional[LimitedLog] = None
               ) -> Tuple[List[Tuple[str, str]], List[list], List[str]]:
    """Move the temporary outputs among ``present`` into the cache. Returns the outputs left to
    send, ``[name, digest, size]`` per temporary file kept, and the digests evicted to make room.
    A temporary output that is a directory, or cannot be kept, is added to ``missing``."""
    wanted: Set[str] = set(temp_names)
    rest, temps, evicted = [], [], []
    for name, path in present:
        if name not in wanted:
            if name.split("/", 1)[0] in wanted:  # a file below a temporary output that is a directory
                if name.split("/", 1)[0] not in missing:
                    missing.append(name.split("/", 1)[0])
                continue
            rest.append((name, path))
            continue
        try:
            digest, size, gone = cache.adopt(path, os.stat(path).st_mode)
        except OSError as error:
            (complain or LimitedLog(log))("temp-failed", logging.WARNING, "task %d: temporary output %r: %s",
                                          task_id, name, error)
            missing.append(name)
            continue
        temps.append([name, digest, size])
        evicted.extend(gone)
    return rest, temps, evicted
