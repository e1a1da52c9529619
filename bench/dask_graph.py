"""A Dask graph of many small tasks (``dask.array`` sum of N one-chunk blocks: N chunk tasks and a tree
reduce) through ``workqueue.dask.get`` on 2 one-core workers, beside Dask distributed's
``LocalCluster(n_workers=2, threads_per_worker=1, processes=True)`` and Dask's synchronous scheduler
(one thread in this process), in turn in the same run.

Each figure is the graph's tasks divided by the wall time of ``x.sum().compute(...)``: building and
optimizing the graph is in it for every scheduler alike. Workers and clusters are started, and warmed
with a small graph, before the clock starts.

A second figure runs a graph of 100 tasks whose inner results are large (50 NumPy blocks of
``MIB`` MiB, summed pairwise, then totalled) with worker transfers (the default: the blocks and sums
stay on the workers, as temporary files read peer to peer) and with ``worker_transfers=False``
(every result back to the master and out again), in turn on the same workers, and reports the
bytes each moved through the master.

``python -m bench.dask_graph [CHUNKS [MIB]]`` runs both alone.
"""
from __future__ import annotations

import functools
import logging
import sys
import time
from typing import Callable, Dict, Optional, Tuple

WORKERS = 2
CHUNK = 10
BLOCKS = 50  # the large-results graph: 50 blocks, 49 pairwise sums, 1 total
MIB = 16  # its blocks' size: 64 MiB would be over what a result may carry back (worker_transfers=False)


def graph(chunks: int):
    import dask.array as da
    return da.ones(chunks * CHUNK, chunks=CHUNK).sum()


def tasks_in(chunks: int) -> int:
    """Tasks the scheduler receives (after Dask's optimization), counted with a scheduler that only counts."""
    import dask
    from dask._task_spec import convert_legacy_graph
    seen = {}

    def count(dsk, keys, **_):
        seen["n"] = len(convert_legacy_graph(dsk if isinstance(dsk, dict) else dsk.__dask_graph__()))
        return dask.get(dsk, keys)

    graph(min(chunks, 10)).compute(scheduler=count)  # warms Dask's imports
    dask.compute(graph(chunks), scheduler=count)
    return seen["n"]


def _timed(compute: Callable[[], float], chunks: int) -> float:
    start = time.perf_counter()
    total = compute()
    elapsed = time.perf_counter() - start
    if total != chunks * CHUNK:
        raise RuntimeError(f"the sum came out as {total}, not {chunks * CHUNK}")
    return elapsed


def ours(chunks: int) -> Tuple[float, float]:
    """Seconds with worker transfers (the default) and with every result returned, in turn."""
    import workqueue as wq
    import workqueue.dask
    with wq.Manager(port=0, host="127.0.0.1") as m, wq.local_workers(WORKERS, m, cores=1):
        get = functools.partial(workqueue.dask.get, manager=m)
        returned = functools.partial(workqueue.dask.get, manager=m, worker_transfers=False)
        graph(100).compute(scheduler=get)
        graph(100).compute(scheduler=returned)
        return (_timed(lambda: graph(chunks).compute(scheduler=get), chunks),
                _timed(lambda: graph(chunks).compute(scheduler=returned), chunks))


def local_cluster(chunks: int) -> float:
    from dask.distributed import Client, LocalCluster
    logging.getLogger("distributed").setLevel(logging.CRITICAL)
    with LocalCluster(n_workers=WORKERS, threads_per_worker=1, processes=True, dashboard_address=None,
                      silence_logs=logging.CRITICAL) as cluster, Client(cluster) as client:
        graph(100).compute(scheduler=client)
        return _timed(lambda: graph(chunks).compute(scheduler=client), chunks)


def synchronous(chunks: int) -> float:
    graph(100).compute(scheduler="sync")
    return _timed(lambda: graph(chunks).compute(scheduler="sync"), chunks)


def measure(chunks: int) -> Dict[str, Optional[float]]:
    """Tasks per second for each scheduler (None: distributed is not installed)."""
    n = tasks_in(chunks)
    transfers, returned = ours(chunks)
    rates: Dict[str, Optional[float]] = {"tasks": n, "ours": n / transfers, "returned": n / returned,
                                         "synchronous": n / synchronous(chunks)}
    try:
        import distributed  # noqa: F401
    except ImportError:
        rates["local_cluster"] = None
    else:
        rates["local_cluster"] = n / local_cluster(chunks)
    return rates


def _block(i: int, mib: int):
    import numpy as np
    return np.full(mib << 17, float(i))


def _add(a, b):
    return a + b


def _total(a) -> float:
    return float(a.sum())


def large_graph(blocks: int, mib: int):
    from dask import delayed
    parts = [delayed(_block)(i, mib) for i in range(blocks)]
    while len(parts) > 1:
        parts = [delayed(_add)(*parts[i:i + 2]) if i + 1 < len(parts) else parts[i] for i in range(0, len(parts), 2)]
    return delayed(_total)(parts[0])


def large_results(blocks: int = BLOCKS, mib: int = MIB) -> Dict[str, float]:
    """Seconds and bytes through the master for the large-results graph, with worker transfers and
    with every result returned, in turn on the same two workers (their order alternates)."""
    import cloudpickle

    import workqueue as wq
    import workqueue.dask
    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the workers need not import bench/
    expected = float((mib << 17) * sum(range(blocks)))
    figures: Dict[str, float] = {}

    class CountingManager(wq.Manager):
        """Counts the bytes of the function outcomes (the results) it hands back."""
        outcome_bytes = 0

        def wait(self, timeout=None):
            task = super().wait(timeout)
            if task is not None:
                self.outcome_bytes += len(task._outcome.get("stdout") or b"")
            return task

    with CountingManager(port=0, host="127.0.0.1") as m, wq.local_workers(WORKERS, m, cores=1):
        graph(100).compute(scheduler=functools.partial(workqueue.dask.get, manager=m))
        for name, transfers in (("transfers", True), ("returned", False), ("returned", False), ("transfers", True)):
            before, outcomes_before = m.stats, m.outcome_bytes
            start = time.perf_counter()
            answer = large_graph(blocks, mib).compute(scheduler=functools.partial(
                workqueue.dask.get, manager=m, worker_transfers=transfers))
            seconds = time.perf_counter() - start
            if answer != expected:
                raise RuntimeError(f"the large-results graph came out as {answer}, not {expected}")
            after = m.stats
            moved = after["bytes_sent"] - before["bytes_sent"] + after["bytes_received"] - before["bytes_received"]
            figures[name] = figures.get(name, 0.0) + seconds / 2
            figures[name + "_bytes"] = moved + m.outcome_bytes - outcomes_before
    figures["tasks"] = 2 * blocks
    return figures


def report(report_to, profile: Dict) -> None:
    """Rows for ``python -m bench``'s table: our rate as a ratio to LocalCluster's and the synchronous one's,
    and with worker transfers against every result returned."""
    try:
        import dask  # noqa: F401
        import numpy  # noqa: F401
    except ImportError:
        report_to.note("dask skipped: Dask is not installed (pip install 'dask[array]' distributed)")
        return
    full = profile["functions_n"] >= 1000
    chunks = 10_000 if full else 200  # smoke: 200
    rates = measure(chunks)
    if rates["local_cluster"] is None:
        report_to.note("dask: LocalCluster skipped: distributed is not installed")
    report_to.add("dask", f"array sum of {chunks:,} chunks ({rates['tasks']:,} tasks), {WORKERS} workers", rates["ours"],
                  "tasks/s", {f"Dask LocalCluster, {WORKERS} processes": rates["local_cluster"],
                              "Dask synchronous, in-process": rates["synchronous"],
                              "ours, every result returned": rates["returned"]})
    blocks, mib = (BLOCKS, MIB) if full else (8, 1)
    large = large_results(blocks, mib)
    report_to.add("dask", f"{large['tasks']:.0f} tasks, {mib} MiB results, {WORKERS} workers",
                  large["tasks"] / large["transfers"], "tasks/s",
                  {"ours, every result returned": large["tasks"] / large["returned"]})
    report_to.note(f"dask, {mib} MiB results: {large['transfers_bytes'] / 2**10:.1f} KiB through the master with "
                   f"worker transfers, {large['returned_bytes'] / 2**20:.0f} MiB with every result returned")


def _print(figures: Dict[str, Optional[float]]) -> None:
    print({name: None if value is None else round(value, 1) for name, value in figures.items()})


if __name__ == "__main__":
    figures = measure(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000)
    _print(figures)
    for name in ("local_cluster", "synchronous", "returned"):
        if figures[name]:
            print(f"ours / {name}: {figures['ours'] / figures[name]:.2f}")
    large = large_results(BLOCKS, int(sys.argv[2]) if len(sys.argv) > 2 else MIB)
    _print(large)
    print(f"large results, seconds with worker transfers / returned: {large['transfers'] / large['returned']:.2f}")
