"""The results of a run: a table on the terminal, a JSON file, and PNG plots."""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Optional


@dataclass
class Row:
    workload: str
    figure: str
    value: float
    unit: str
    reference: str = ""
    reference_value: Optional[float] = None

    @property
    def ratio(self) -> Optional[float]:
        if not self.reference_value:
            return None
        return self.value / self.reference_value


@dataclass
class Report:
    machine: Dict[str, Any]
    rows: List[Row] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)
    series: Dict[str, Any] = field(default_factory=dict)

    def add(self, workload: str, figure: str, value: float, unit: str, references: Dict[str, Optional[float]] = None) -> None:
        """One row per reference (or one bare row when there is none)."""
        if not references:
            self.rows.append(Row(workload, figure, value, unit))
        for name, ref in (references or {}).items():
            self.rows.append(Row(workload, figure, value, unit, name, ref))

    def note(self, text: str) -> None:
        self.notes.append(text)
        print(f"  note: {text}", flush=True)

    def table(self) -> str:
        """The rows as aligned columns; widths follow the longest cell so long figure names stay in line."""
        head = ("workload", "figure", "ours", "unit", "reference", "ref", "ratio")
        cells = [head] + [(r.workload, r.figure, _fmt(r.value), r.unit, r.reference,
                           "" if r.reference_value is None else _fmt(r.reference_value),
                           "" if r.ratio is None else f"{r.ratio:.2f}") for r in self.rows]
        widths = [max(len(c[i]) for c in cells) for i in range(len(head))]
        right = {2, 5, 6}
        return "\n".join(" ".join(c[i].rjust(widths[i]) if i in right else c[i].ljust(widths[i])
                                   for i in range(len(head))).rstrip() for c in cells)

    def to_json(self) -> Dict[str, Any]:
        return {"machine": self.machine, "notes": self.notes, "series": self.series,
                "rows": [dict(asdict(r), ratio=r.ratio) for r in self.rows]}

    def save(self, folder: str, plots: bool = True) -> List[str]:
        os.makedirs(folder, exist_ok=True)
        written = [os.path.join(folder, "results.json")]
        with open(written[0], "w") as f:
            json.dump(self.to_json(), f, indent=2)
        if plots:
            written += self._plots(folder)
        return written

    def _plots(self, folder: str) -> List[str]:
        try:
            import matplotlib
            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            self.note("matplotlib is not installed: no plots (pip install 'workqueue[bench]')")
            return []
        written = []
        throughput = self.series.get("throughput", {})
        if throughput:
            fig, ax = plt.subplots(figsize=(6, 4))
            for label, points in sorted(throughput.items()):
                xs, ys = zip(*sorted((int(n), v) for n, v in points.items()))
                ax.plot(xs, ys, marker="o", label=label)
            ax.set_xscale("log")
            written.append(_finish(plt, fig, ax, os.path.join(folder, "throughput.png"), "Trivial task throughput",
                                   "tasks in the run", "tasks per second"))
        latency = self.series.get("latency", {})
        if latency:
            fig, ax = plt.subplots(figsize=(6, 4))
            for label, samples in sorted(latency.items()):
                ax.hist([s * 1000 for s in samples], bins=40, alpha=0.6, label=label)
            written.append(_finish(plt, fig, ax, os.path.join(folder, "latency.png"), "Single-task round trip",
                                   "submit to wait() return, ms", "tasks"))
        return written


def _finish(plt: Any, fig: Any, ax: Any, path: str, title: str, xlabel: str, ylabel: str) -> str:
    """Label, save and close one figure; return where it went."""
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _fmt(value: float) -> str:
    if value >= 1e9:
        return f"{value / 1e9:.2f}G"
    if value >= 1e6:
        return f"{value / 1e6:.2f}M"
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 1:
        return f"{value:.2f}"
    return f"{value:.4f}"
