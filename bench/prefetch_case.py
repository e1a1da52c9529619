"""Issue 15's prefetch case, timed: six quick tasks first (on a worker that then leaves), then
three ``sleep 3`` tasks submitted as four one-core workers start, which connect a moment apart.
Wall time from the long tasks' submit to the last one's result: the ideal is 3 s plus the start of
a worker. With prefetching that could not be taken back, all three could queue on the first
worker to connect (9 s; CCTools 9.9: 3.0 s).

Two variants: the quick tasks run another program (``echo``: prefetching learns per program, so the
long ones are not prefetched at all), or the same program (``sh -c 'sleep 0'`` then
``sh -c 'sleep 3'``: they are prefetched and taken back when the other workers join).

``python -m bench.prefetch_case [RUNS]`` prints one JSON line per variant.
"""
from __future__ import annotations

import json
import statistics
import sys
import time
from typing import Dict, List

import workqueue as wq

VARIANTS = {"other program": ("echo quick", "sleep 3"), "same program": ("sh -c 'sleep 0'", "sh -c 'sleep 3'")}


def one_run(quick: str, long: str) -> float:
    with wq.Manager(port=0, host="127.0.0.1") as m:
        with wq.local_workers(1, m, cores=1):
            for _ in range(6):
                m.submit(wq.Task(quick, cores=1))
            for _ in range(6):
                m.wait(30)
        while m.stats["workers_connected"]:
            time.sleep(0.05)
        with wq.local_workers(4, m, cores=1):
            started = time.perf_counter()
            for _ in range(3):
                m.submit(wq.Task(long, cores=1))
            for _ in range(3):
                if m.wait(60) is None:
                    raise RuntimeError("a long task did not finish within 60 s")
            return time.perf_counter() - started


def measure(runs: int) -> Dict[str, Dict[str, float]]:
    figures = {}
    for name, (quick, long) in VARIANTS.items():
        times: List[float] = [one_run(quick, long) for _ in range(runs)]
        figures[name] = {"runs": runs, "median_s": statistics.median(times), "max_s": max(times),
                         "under_5s": sum(t < 5 for t in times)}
    return figures


if __name__ == "__main__":
    for variant, figure in measure(int(sys.argv[1]) if len(sys.argv) > 1 else 20).items():
        print(json.dumps({"variant": variant, **figure}))
