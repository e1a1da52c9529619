"""The performance log (``WorkQueue.specify_log``, CCTools' ``stats_log``) read back: a header line
``# timestamp name name ...`` and one line of numbers per sample, the time in microseconds since
the epoch. CCTools' own performance logs have the same shape, so both can be plotted. Pure."""
from __future__ import annotations

from typing import Dict, Iterable, List

US = 1_000_000
BOOLEANS = {"True": 1.0, "False": 0.0}  # the skin writes bool figures (hungry) as Python prints them


class PerformanceLog:
    def __init__(self, columns: Dict[str, List[float]]) -> None:
        self.columns = columns

    @property
    def seconds(self) -> List[float]:
        """Seconds since the first sample."""
        stamps = self.columns["timestamp"]
        return [(t - stamps[0]) / US for t in stamps] if stamps else []

    def get(self, name: str) -> List[float]:
        return self.columns.get(name, [])

    def rate(self, name: str) -> List[float]:
        """Per second, of a growing count (one value per sample; the first is 0)."""
        values, seconds = self.get(name), self.seconds
        out = [0.0]
        for i in range(1, len(values)):
            elapsed = seconds[i] - seconds[i - 1]
            out.append((values[i] - values[i - 1]) / elapsed if elapsed > 0 else 0.0)
        return out


def parse(lines: Iterable[str], where: str = "the log") -> PerformanceLog:
    """Raises ValueError naming the line when the log is not a performance log."""
    names: List[str] = []
    columns: Dict[str, List[float]] = {}
    for number, line in enumerate(lines, 1):
        if line.startswith("#"):
            words = line.lstrip("#").split()
            if words and words[0] == "timestamp":
                names = words
                columns = {name: [] for name in names}
            continue
        words = line.split()
        if not words:
            continue
        if not names:
            raise ValueError(f"{where}, line {number}: no '# timestamp ...' header before the first sample: "
                             "is this a performance log (specify_log)?")
        if len(words) != len(names):
            raise ValueError(f"{where}, line {number}: {len(words)} values for {len(names)} columns")
        try:
            values = [BOOLEANS[w] if w in BOOLEANS else float(w) for w in words]
        except ValueError:
            raise ValueError(f"{where}, line {number}: not all numbers: {line.strip()[:80]!r}") from None
        for name, value in zip(names, values):
            columns[name].append(value)
    if not names:
        raise ValueError(f"{where}: no '# timestamp ...' header: is this a performance log (specify_log)?")
    return PerformanceLog(columns)


def read(path: str) -> PerformanceLog:
    with open(path) as f:
        return parse(f, path)
