"""Dispatch decisions per second of the pure scheduler, as the waiting queue grows.

Usage: python bench/scheduler.py [--workers 200] [--sizes 1000,100000] [--algorithm files]

Each round books every task that fits on 200 simulated workers of mixed sizes, then finishes what it
booked, the way a busy master churns. The figure is decisions (bookings) per second; the ratio between
the largest and smallest queue shows whether cost grows with the queue (1.0 = flat). It is run with
Python's cyclic garbage collector on and off: with 100k live task entries, the collector's full passes
are most of what grows with the queue. Under FILES (the default) every task is scored as the master
scores one without cached inputs: one call that answers None.
"""
from __future__ import annotations

import argparse
import gc
import random
import time
from typing import Dict, List

from workqueue.scheduling.scheduler import ALGORITHMS, FILES, Scheduler

SHAPES = [
    {"cores": 1, "memory": 1000, "disk": 100, "gpus": None},
    {"cores": 2, "memory": 4000, "disk": 100, "gpus": None},
    {"cores": 4, "memory": 8000, "disk": 1000, "gpus": None},
    {"cores": 1, "memory": None, "disk": None, "gpus": None},
    {"cores": None, "memory": 2000, "disk": None, "gpus": None},
    {"cores": None, "memory": None, "disk": None, "gpus": 1},
]


def no_cached_inputs(task_id: int) -> None:
    return None


def build(n_tasks: int, n_workers: int, algorithm: str = FILES, seed: int = 1) -> Scheduler:
    rng = random.Random(seed)
    s = Scheduler(algorithm=algorithm, seed=seed)
    for w in range(n_workers):
        cores = rng.choice([4, 8, 16])
        s.add_worker(w, {"cores": cores, "memory": cores * 4000, "disk": 100000, "gpus": rng.choice([0, 0, 1])})
    for t in range(n_tasks):
        s.submit(t, rng.choice(SHAPES), priority=rng.randint(0, 3))
    return s


def decisions_per_second(n_tasks: int, n_workers: int, algorithm: str = FILES, decisions: int = 50_000) -> float:
    s = build(n_tasks, n_workers, algorithm)
    next_id = n_tasks
    done = 0
    elapsed = 0.0
    while done < decisions:
        t0 = time.perf_counter()
        booked = s.schedule(cached_bytes=no_cached_inputs)
        elapsed += time.perf_counter() - t0
        if not booked:
            break
        for a in booked:
            s.finish(a.task_id)
            s.submit(next_id, SHAPES[next_id % len(SHAPES)])  # keep the queue at its size
            next_id += 1
        done += len(booked)
    return done / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=200)
    parser.add_argument("--sizes", default="1000,100000")
    parser.add_argument("--algorithm", default=FILES, choices=ALGORITHMS)
    args = parser.parse_args()
    sizes: List[int] = [int(x) for x in args.sizes.split(",")]
    for label, collector in (("gc on", gc.enable), ("gc off", gc.disable)):
        collector()
        results: Dict[int, float] = {n: decisions_per_second(n, args.workers, args.algorithm) for n in sizes}
        for n, rate in results.items():
            print(f"[{label}] {n:>8} waiting, {args.workers} workers: {rate:>10,.0f} decisions/s")
        small, large = results[sizes[0]], results[sizes[-1]]
        print(f"[{label}] ratio {sizes[-1]} / {sizes[0]} waiting: {large / small:.2f} (1.00 = flat)")
    gc.enable()


if __name__ == "__main__":
    main()
