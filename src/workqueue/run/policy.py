"""When a failed job runs again, when a run stops early, and what the run exits with.

GNU parallel's rules: ``--retries N`` gives a failing job N tries in all; ``--halt now,fail=N``
kills what runs and stops once N jobs have failed, ``soon,fail=N`` lets the running ones finish
but starts no more, ``fail=P%`` counts P percent of the run's jobs (at least one); the exit
status is the number of jobs that failed, 101 at most (so 101 means "101 or more"). Pure.
"""
from __future__ import annotations

import math
import re
from typing import Dict, NamedTuple, Optional

from .commands import BadInput

EXIT_CAP = 101
_HALT = re.compile(r"^(now|soon|never),fail=(\d+)(%?)$")


class Halt(NamedTuple):
    when: str  # "now", "soon" or "never"
    count: int = 0
    percent: bool = False

    def threshold(self, total: int) -> int:
        """How many failed jobs stop the run."""
        if self.percent:
            return max(1, math.ceil(total * self.count / 100))
        return self.count


NEVER = Halt("never")


def parse_halt(spec: Optional[str]) -> Halt:
    """``now|soon,fail=N`` or ``now|soon,fail=P%``; also GNU parallel's short forms 0 (never),
    1 (soon,fail=1) and 2 (now,fail=1)."""
    if spec is None or spec in ("0", "never"):
        return NEVER
    if spec in ("1", "2"):
        return Halt("soon" if spec == "1" else "now", 1)
    match = _HALT.match(spec.strip())
    if not match:
        raise BadInput(f"--halt must be now|soon,fail=N or now|soon,fail=P% (as GNU parallel), got {spec!r}")
    count, percent = int(match.group(2)), bool(match.group(3))
    if count < 1 or (percent and count > 100):
        raise BadInput(f"--halt: fail= must be at least 1{' and at most 100%' if percent else ''}, got {spec!r}")
    return Halt(match.group(1), count, percent)


class Policy:
    """Counts a run's outcomes and says, for each failure, whether the job runs again."""

    def __init__(self, total: int, retries: int = 1, halt: Halt = NEVER) -> None:
        if retries < 0:
            raise BadInput(f"--retries must be 0 or more (tries per job in all), got {retries}")
        self.total = total
        self.tries = max(1, retries)
        self.halt = halt
        self._threshold = halt.threshold(total) if halt.when != "never" else 0
        self._tries: Dict[int, int] = {}
        self.succeeded = 0
        self.failed = 0
        self.retried = 0
        self.halting: Optional[str] = None  # "now" or "soon" once the halt rule is met

    def finished(self, seq: int, ok: bool) -> bool:
        """Book one try of job ``seq``; True if the job is over (success or no tries left)."""
        if ok:
            self.succeeded += 1
            self._tries.pop(seq, None)
            return True
        tried = self._tries.get(seq, 0) + 1
        if tried < self.tries and self.halting is None:
            self._tries[seq] = tried
            self.retried += 1
            return False
        self._tries.pop(seq, None)
        self.failed += 1
        if self._threshold and self.failed >= self._threshold and self.halting is None:
            self.halting = self.halt.when
        return True

    def exit_status(self) -> int:
        return min(self.failed, EXIT_CAP)
