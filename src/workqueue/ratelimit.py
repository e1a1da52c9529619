"""How often a kind of event may be logged, and how much peers may make us spend.
``Throttle`` and ``Budget`` are pure (the caller passes the time); ``LimitedLog`` puts a
``Throttle`` between a logger and a clock.

A peer can make the same complaint happen thousands of times a second; the log must still be
readable and must not fill the disk. Each kind of event gets a few lines per interval; the rest are
counted, and the count goes out with the next line that is allowed.
"""
from __future__ import annotations

import logging
import time
from typing import Any, Callable, Dict, Hashable, Optional, Tuple

KINDS_MAX = 1024  # kinds remembered: callers use a few fixed kinds, never a peer's identity


class Throttle:
    def __init__(self, per_interval: int = 10, interval: float = 60.0) -> None:
        self.per_interval = per_interval
        self.interval = interval
        self._windows: Dict[Hashable, Tuple[float, int]] = {}  # kind -> (window start, events allowed)
        self._suppressed: Dict[Hashable, int] = {}

    def allow(self, kind: Hashable, now: float) -> bool:
        """True if an event of this kind may be logged now; otherwise it is counted as suppressed."""
        start, allowed = self._windows.get(kind, (now, 0))
        if now - start >= self.interval:
            start, allowed = now, 0
        if allowed >= self.per_interval:
            self._suppressed[kind] = self._suppressed.get(kind, 0) + 1
            return False
        if len(self._windows) >= KINDS_MAX and kind not in self._windows:
            self._windows.clear()
        self._windows[kind] = (start, allowed + 1)
        return True

    def take_suppressed(self, kind: Hashable) -> int:
        """How many events of this kind were suppressed since the last call; the count restarts."""
        return self._suppressed.pop(kind, 0)


class LimitedLog:
    """A logger whose lines of each kind go through a ``Throttle``; the count of the lines left
    out goes with the next line of that kind that is let through."""

    def __init__(self, logger: logging.Logger, throttle: Optional[Throttle] = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.logger = logger
        self.throttle = throttle or Throttle()
        self.clock = clock

    def __call__(self, kind: Hashable, level: int, message: str, *args: Any, **kwargs: Any) -> None:
        """``logger.log(level, message, *args, **kwargs)`` unless ``kind`` is over its budget."""
        if not self.throttle.allow(kind, self.clock()):
            return
        suppressed = self.throttle.take_suppressed(kind)
        if suppressed:
            message += f" ({suppressed} similar message(s) not logged)"
        self.logger.log(level, message, *args, **kwargs)


class Budget:
    """A token bucket: ``rate`` units a second, at most ``burst`` saved. Pure: the caller passes the
    time. Bytes for what may be sent (``spend``: all or nothing), seconds for what may be done
    (``available`` before, ``charge`` after, since the cost is known only then)."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.burst = burst
        self._tokens = burst
        self._last: Optional[float] = None
        self.refused = 0

    def spend(self, amount: float, now: float) -> bool:
        """Take ``amount`` if the bucket holds it; False (nothing taken) if not."""
        self._refill(now)
        if amount > self._tokens:
            self.refused += 1
            return False
        self._tokens -= amount
        return True

    def available(self, now: float) -> bool:
        """True while the bucket is not empty; counts a refusal otherwise."""
        self._refill(now)
        if self._tokens > 0:
            return True
        self.refused += 1
        return False

    def charge(self, amount: float, now: float) -> None:
        """Take ``amount`` after the fact; the bucket may go below empty, and refills from there."""
        self._refill(now)
        self._tokens -= amount

    def _refill(self, now: float) -> None:
        if self._last is not None:
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
        self._last = now
