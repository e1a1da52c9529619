"""What ends a worker whatever it is doing: its wall time (``--wall-time``: a batch job's length,
so that the worker leaves, saying goodbye, before the batch system kills it mid-task) or the death
of the process that started it (``--parent-death``: a factory or a script that is gone)."""
from __future__ import annotations

import math
import os
from typing import Optional


class Lifetime:
    def __init__(self, started: float, wall_time: Optional[float] = None, parent_death: bool = False) -> None:
        self.wall_time = wall_time
        self.ends_at = started + wall_time if wall_time else math.inf
        self.parent = os.getppid() if parent_death else None

    def time_left(self, now: float) -> float:
        """Seconds until the wall time is over (for running_time_min); 0.0: no wall time."""
        return max(self.ends_at - now, 1e-3) if self.wall_time else 0.0

    def over(self, now: float) -> Optional[str]:
        """Why the worker must end now, or None."""
        if now >= self.ends_at:
            return f"its wall time of {self.wall_time:g} s is over"
        if self.parent is not None and os.getppid() != self.parent:
            return f"the process that started it (pid {self.parent}) is gone"
        return None
