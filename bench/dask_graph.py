"""A Dask graph of many small tasks (``dask.array`` sum of N one-chunk blocks: N chunk tasks and a tree
reduce) through ``workqueue.dask.get`` on 2 one-core workers, beside Dask distributed's
``LocalCluster(n_workers=2, threads_per_worker=1, processes=True)`` and Dask's synchronous scheduler
(one thread in this process), in turn in the same run.

Each figure is the graph's tasks divided by the wall time of ``x.sum().compute(...)``: building and
optimizing the graph is in it for every scheduler alike. Workers and clusters are started, and warmed
with a small graph, before the clock starts.

``python -m bench.dask_graph [CHUNKS]`` runs it alone.
"""
from __future__ import annotations

import functools
import logging
import sys
import time
from typing import Callable, Dict, Optional

WORKERS = 2
CHUNK = 10


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


def ours(chunks: int) -> float:
    import workqueue as wq
    import workqueue.dask
    with wq.Manager(port=0, host="127.0.0.1") as m, wq.local_workers(WORKERS, m, cores=1):
        get = functools.partial(workqueue.dask.get, manager=m)
        graph(100).compute(scheduler=get)
        return _timed(lambda: graph(chunks).compute(scheduler=get), chunks)


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
    rates: Dict[str, Optional[float]] = {"tasks": n, "ours": n / ours(chunks), "synchronous": n / synchronous(chunks)}
    try:
        import distributed  # noqa: F401
    except ImportError:
        rates["local_cluster"] = None
    else:
        rates["local_cluster"] = n / local_cluster(chunks)
    return rates


def report(report_to, profile: Dict) -> None:
    """Rows for ``python -m bench``'s table: our rate as a ratio to LocalCluster's and the synchronous one's."""
    try:
        import dask  # noqa: F401
    except ImportError:
        report_to.note("dask skipped: Dask is not installed (pip install 'dask[array]' distributed)")
        return
    chunks = 10_000 if profile["functions_n"] >= 1000 else 200  # smoke: 200
    rates = measure(chunks)
    if rates["local_cluster"] is None:
        report_to.note("dask: LocalCluster skipped: distributed is not installed")
    report_to.add("dask", f"array sum of {chunks:,} chunks ({rates['tasks']:,} tasks), {WORKERS} workers", rates["ours"],
                  "tasks/s", {f"Dask LocalCluster, {WORKERS} processes": rates["local_cluster"],
                              "Dask synchronous, in-process": rates["synchronous"]})


if __name__ == "__main__":
    figures = measure(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000)
    print({name: None if rate is None else round(rate, 1) for name, rate in figures.items()})
    for name in ("local_cluster", "synchronous"):
        if figures[name]:
            print(f"ours / {name}: {figures['ours'] / figures[name]:.2f}")
