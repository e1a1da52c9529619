"""Lineage: a temporary file that exists nowhere any more (its workers died, or it was removed)
while a pending task needs it is made again by running its producer again, and so on up the
chain, since the producer's own temporary inputs may be gone too (TaskVine's recovery tasks).
Pure: the master's data plane submits what this decides.

A recovery task is a copy of the producer that writes only its temporary outputs (the master's
own files it wrote are not written twice), under an id from a range users' tasks never reach; its
outcome is not handed to the user.
"""
from __future__ import annotations

import itertools
from typing import Any, Dict, Optional, Set

from .temp_files import TempFile

RECOVERY_IDS = 1 << 62  # recovery tasks' ids start here: a user's never do


class Lineage:
    def __init__(self) -> None:
        self._ids = itertools.count(RECOVERY_IDS)
        self.recovering: Set[int] = set()  # recovery tasks pending
        self.recovered = 0

    def is_recovery(self, task_id: int) -> bool:
        return task_id >= RECOVERY_IDS

    def recovery(self, temp: TempFile, pending: Any) -> Optional[tuple]:
        """(task id, spec) of the task that makes ``temp`` again, or None when it needs none: its
        producer is pending (``pending``: task ids still in the queue) or it can never exist."""
        if temp.failed is not None or temp.spec is None:
            return None
        if temp.producer is not None and temp.producer in pending:
            return None
        task_id = next(self._ids)
        spec: Dict[str, Any] = dict(temp.spec)
        spec["outputs"] = [f for f in temp.spec["outputs"] if f.temp_id is not None]
        self.recovering.add(task_id)
        self.recovered += 1
        return task_id, spec

    def done(self, task_id: int) -> None:
        self.recovering.discard(task_id)
