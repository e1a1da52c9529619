"""What the user sees of a run besides the jobs' output: a live line on stderr (done, failed,
running, rate, ETA), redrawn at most a few times a second so a run of short jobs is not slowed
by its own progress, and a closing line: done, failed, retried, skipped, time, tasks/s, bytes."""
from __future__ import annotations

import sys
import time
from typing import Optional, TextIO

REDRAW_EVERY = 0.2  # seconds between redraws of the live line


def duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


class Progress:
    """Counts of a run and, if ``live``, a line on ``stream`` that shows them as they change."""

    def __init__(self, total: int, *, live: bool, stream: Optional[TextIO] = None) -> None:
        self.total = total  # the jobs this run will run (skipped ones left out)
        self.live = live
        self.stream = stream or sys.stderr
        self.started = time.monotonic()
        self.done = 0
        self.failed = 0
        self.retried = 0
        self.bytes_moved = 0
        self._next_draw = 0.0
        self._drawn = False

    def finished(self, ok: bool, moved: int = 0) -> None:
        self.done += ok
        self.failed += not ok
        self.bytes_moved += moved
        if self.live:
            self.tick()

    def tick(self) -> None:
        """Redraw the live line if it is due."""
        if not self.live:
            return
        now = time.monotonic()
        if now >= self._next_draw:
            self._next_draw = now + REDRAW_EVERY
            self.draw(now)

    def rate(self, now: Optional[float] = None) -> float:
        elapsed = (now or time.monotonic()) - self.started
        return (self.done + self.failed) / elapsed if elapsed > 0 else 0.0

    def line(self, now: float) -> str:
        ended = self.done + self.failed
        rate = self.rate(now)
        eta = duration((self.total - ended) / rate) if rate > 0 else "?"
        percent = 100 * ended / self.total if self.total else 100
        return (f"{ended}/{self.total} ({percent:.0f}%) done {self.done} failed {self.failed} "
                f"{rate:.1f} tasks/s ETA {eta}")

    def draw(self, now: float) -> None:
        self.stream.write("\r" + self.line(now) + "\x1b[K")
        self.stream.flush()
        self._drawn = True

    def clear(self) -> None:
        """Take the live line away before other text is written to the same terminal."""
        if self._drawn:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self._drawn = False

    def closing_line(self, skipped: int, halted: Optional[str]) -> str:
        elapsed = time.monotonic() - self.started
        ended = self.done + self.failed
        text = (f"{self.done} done, {self.failed} failed, {self.retried} retried, {skipped} skipped (in the job log), "
                f"{ended} tasks in {elapsed:.2f} s ({ended / elapsed if elapsed > 0 else 0:.1f} tasks/s), "
                f"{size(self.bytes_moved)} moved")
        if halted:
            text += f"; halted ({halted}): {self.total - ended} not run"
        return text
