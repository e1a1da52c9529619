"""How many workers this master could keep busy: CCTools' capacity estimate (``estimate_capacity``,
``stats["capacity_*"]``). Pure: the loop hands in each finished task's times.

A task spends ``exec`` seconds running on its worker and ``overhead`` seconds on the master's side of
the link (from its dispatch to its result, minus its run: sending inputs, returning outputs, the
master's own turn). While one task runs, the master can serve about ``exec / overhead`` others, so
that many workers, at the least ``DEFAULT_TASKS``, could be kept busy:

- ``capacity_tasks``: that ratio over the latest ``WINDOW`` tasks, at least ``DEFAULT_TASKS``;
- ``capacity_cores`` / ``_memory`` / ``_disk``: ``capacity_tasks`` times the mean allocation of those tasks;
- ``capacity_instantaneous``: the ratio itself (no floor);
- ``capacity_weighted``: an exponential average of the instantaneous ratio (weight ``ALPHA`` per task),
  which the factory's ``--capacity`` caps its pool at.

Tasks that waited queued on a busy worker (prefetched) are left out: their wait is neither run nor
overhead. The master's clock alone is used, never a worker's.
"""
from __future__ import annotations

import math
from collections import deque
from typing import Deque, Dict, Optional, Tuple

WINDOW = 50
DEFAULT_TASKS = 10
ALPHA = 0.05
FIGURES = ("capacity_tasks", "capacity_cores", "capacity_memory", "capacity_disk", "capacity_instantaneous",
           "capacity_weighted")


def _ceil(value: float) -> int:
    """Rounded up, but a float a hair above a whole number (200.00000000000003) stays that number."""
    return math.ceil(value - 1e-9)


class Capacity:
    def __init__(self) -> None:
        self._samples: Deque[Tuple[float, float, float, float, float]] = deque(maxlen=WINDOW)
        self._weighted: Optional[float] = None

    def add(self, exec_seconds: float, turnaround_seconds: float, allocated: Dict[str, float]) -> None:
        """One finished task: its run on the worker, and the time from its dispatch to its result."""
        exec_seconds = max(0.0, exec_seconds)
        overhead = max(turnaround_seconds - exec_seconds, 1e-6)
        self._samples.append((exec_seconds, overhead, float(allocated.get("cores") or 0),
                              float(allocated.get("memory") or 0), float(allocated.get("disk") or 0)))
        instantaneous = self._ratio()
        self._weighted = instantaneous if self._weighted is None else \
            ALPHA * instantaneous + (1 - ALPHA) * self._weighted

    def figures(self) -> Dict[str, float]:
        if not self._samples:
            return dict.fromkeys(FIGURES, 0)
        n = len(self._samples)
        tasks = max(DEFAULT_TASKS, _ceil(self._ratio()))
        return {
            "capacity_tasks": tasks,
            "capacity_cores": _ceil(tasks * sum(s[2] for s in self._samples) / n),
            "capacity_memory": _ceil(tasks * sum(s[3] for s in self._samples) / n),
            "capacity_disk": _ceil(tasks * sum(s[4] for s in self._samples) / n),
            "capacity_instantaneous": _ceil(self._ratio()),
            "capacity_weighted": _ceil(self._weighted or 0),
        }

    def _ratio(self) -> float:
        exec_total = sum(s[0] for s in self._samples)
        overhead_total = sum(s[1] for s in self._samples)
        return exec_total / overhead_total
