"""Our side of each comparison, through the native API only (Manager, Task, local_workers)."""
from __future__ import annotations

import gc
import os
import statistics
import tempfile
import time
from typing import Any, Dict, List

import psutil

import workqueue as wq

from .cctools_driver import (
    QUICK_RUNS,
    SMALL_INPUTS,
    disk_dir,
    evict,
    make_output,
    memory_dir,
    remove,
    write_random,
)
from .references import _percentile


def _run_all(manager: wq.Manager, tasks: List[wq.Task]) -> float:
    """Submit every task, wait for all; return the elapsed seconds. Raises if any failed."""
    start = time.perf_counter()
    for task in tasks:
        manager.submit(task)
    failed = 0
    while not manager.empty():
        done = manager.wait(30)
        if done is not None and not done.succeeded:
            failed += 1
    elapsed = time.perf_counter() - start
    if failed:
        raise RuntimeError(f"{failed} of {len(tasks)} tasks failed")
    return elapsed


def _connected(manager: wq.Manager, n: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while manager.stats["workers_connected"] < n:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {manager.stats['workers_connected']} of {n} workers connected")
        time.sleep(0.05)


def throughput(n: int, workers: int, with_files: bool = False) -> float:
    """Trivial command tasks per second on ``workers`` local one-core workers."""
    with tempfile.TemporaryDirectory() as tmp, wq.Manager(port=0, host="127.0.0.1") as m, \
            wq.local_workers(workers, m, cores=1):
        _connected(m, workers)
        tasks = []
        for i in range(n):
            if with_files:
                src = os.path.join(tmp, f"in.{i}")
                with open(src, "w") as f:
                    f.write(f"{i}\n")
                tasks.append(wq.Task("cat in > out", cores=1, inputs=[(src, "in")],
                                     outputs=[(os.path.join(tmp, f"out.{i}"), "out")]))
            else:
                tasks.append(wq.Task("true", cores=1))
        return n / _run_all(m, tasks)


def latency(n: int) -> Dict[str, float]:
    """Seconds from submit to wait() returning, one task at a time, on one worker."""
    with wq.Manager(port=0, host="127.0.0.1") as m, wq.local_workers(1, m, cores=1):
        _connected(m, 1)
        times = []
        for _ in range(n):
            start = time.perf_counter()
            m.submit(wq.Task("true", cores=1))
            while m.wait(30) is None:
                pass
            times.append(time.perf_counter() - start)
        return {"median": statistics.median(times), "p99": _percentile(times, 0.99), "samples": times}


def transfer(size: int, repeats: int = 3) -> Dict[str, float]:
    """Bytes per second (each the best of ``repeats``) of an input sent to a task, warm and from a
    cold page cache, of ``SMALL_INPUTS`` tasks each with its own 1 MiB input, and of an output of
    ``size`` brought back; and the seconds of a task whose input is in the worker's cache. Files and
    the worker's workspace live in memory (/dev/shm), except the cold input, so that the machine's
    disk, whose write speed swings widely on virtual machines, does not decide the figures."""
    with tempfile.TemporaryDirectory(dir=memory_dir()) as tmp, wq.Manager(port=0, host="127.0.0.1") as m, \
            wq.local_workers(1, m, cores=1, extra=["-s", tmp]):
        _connected(m, 1)
        src = write_random(os.path.join(tmp, "in.bin"), size)
        best_in = min(_run_all(m, [_task_with(src)]) for _ in range(repeats))
        cached = wq.File(src, "in.bin", cache=True)
        _run_all(m, [wq.Task("true", cores=1, inputs=[cached])])
        figures = {"in": size / best_in,
                   "cache_hit_seconds": statistics.median(
                       _run_all(m, [wq.Task("true", cores=1, inputs=[cached])]) for _ in range(QUICK_RUNS)),
                   "empty_task_seconds": statistics.median(
                       _run_all(m, [wq.Task("true", cores=1)]) for _ in range(QUICK_RUNS))}
        with tempfile.TemporaryDirectory(dir=disk_dir()) as disk:
            cold = write_random(os.path.join(disk, "in.bin"), size)
            figures["in_cold"] = size / min(_cold_run(m, cold) for _ in range(repeats))
        small = [write_random(os.path.join(tmp, f"small.{i}"), 1 << 20) for i in range(SMALL_INPUTS)]
        figures["small_inputs"] = SMALL_INPUTS * (1 << 20) / min(
            _run_all(m, [_task_with(path) for path in small]) for _ in range(repeats))
        out_path = os.path.join(tmp, "out.bin")
        figures["out"] = size / min(_output_run(m, src, out_path) for _ in range(repeats))
        return figures


def transfer_in(size: int, repeats: int = 3) -> Dict[str, float]:
    """Only the input figures of ``transfer`` (warm and cold), as CCTools' ``transfer_in``."""
    with tempfile.TemporaryDirectory(dir=memory_dir()) as tmp, wq.Manager(port=0, host="127.0.0.1") as m, \
            wq.local_workers(1, m, cores=1, extra=["-s", tmp]):
        _connected(m, 1)
        src = write_random(os.path.join(tmp, "in.bin"), size)
        figures = {"in": size / min(_run_all(m, [_task_with(src)]) for _ in range(repeats))}
        remove(src)
        with tempfile.TemporaryDirectory(dir=disk_dir()) as disk:
            cold = write_random(os.path.join(disk, "in.bin"), size)
            figures["in_cold"] = size / min(_cold_run(m, cold) for _ in range(repeats))
        return figures


def _task_with(path: str) -> wq.Task:
    return wq.Task("true", cores=1, inputs=[(path, "in.bin")])


def _output_run(manager: wq.Manager, src: str, out_path: str) -> float:
    remove(out_path)
    return _run_all(manager, [wq.Task(make_output(src), cores=1, outputs=[(out_path, "out.bin")])])


def _cold_run(manager: wq.Manager, path: str) -> float:
    evict(path)
    return _run_all(manager, [_task_with(path)])


def scale_submit(n: int) -> Dict[str, float]:
    """Submits per second and master memory per queued task, with no worker to drain the queue."""
    gc.collect()
    process = psutil.Process()
    with wq.Manager(port=0, host="127.0.0.1") as m:
        before = process.memory_info().rss
        start = time.perf_counter()
        for _ in range(n):
            m.submit(wq.Task("true", cores=1))
        rate = n / (time.perf_counter() - start)
        while m.stats["tasks_waiting"] < n:
            time.sleep(0.05)
        per_task = (process.memory_info().rss - before) / n
    return {"submit_rate": rate, "bytes_per_task": per_task}


def many_workers(workers: int, tasks: int) -> Dict[str, float]:
    """Master CPU share with ``workers`` connected and idle, then tasks/s with all of them busy."""
    with wq.Manager(port=0, host="127.0.0.1") as m, \
            wq.local_workers(workers, m, cores=1, extra=["--memory", "50", "--disk", "50"]):
        _connected(m, workers, timeout=120)
        me = psutil.Process()
        me.cpu_percent()
        time.sleep(2)
        idle_cpu = me.cpu_percent()
        rate = tasks / _run_all(m, [wq.Task("true", cores=1) for _ in range(tasks)])
    return {"idle_master_cpu_percent": idle_cpu, "busy_tasks_per_second": rate}


def _noop(x: Any) -> Any:
    return x


def functions(n: int, workers: int) -> float:
    """Trivial Python function tasks per second on local workers."""
    import sys

    import cloudpickle
    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the workers cannot import bench/
    with wq.Manager(port=0, host="127.0.0.1") as m, wq.local_workers(workers, m, cores=1):
        _connected(m, workers)
        warm_up = [wq.PythonTask(_noop, -1) for _ in range(workers)]
        for task in warm_up:
            task.set_resources(cores=1)  # one per one-core worker: each starts its function process
        _run_all(m, warm_up)  # as Dask's workers are started before its clock does
        tasks = []
        for i in range(n):
            t = wq.PythonTask(_noop, i)
            t.set_resources(cores=1)
            tasks.append(t)
        return n / _run_all(m, tasks)


def dask_functions(n: int, workers: int) -> float:
    """The same trivial functions through Dask distributed (processes, one thread each)."""
    import logging

    from dask.distributed import Client, LocalCluster
    # CRITICAL, not WARNING: at teardown Dask's worker processes may log a heartbeat to the closed
    # scheduler at ERROR with a traceback, which says nothing about the figure
    logging.getLogger("distributed").setLevel(logging.CRITICAL)
    with LocalCluster(silence_logs=logging.CRITICAL, n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        client.submit(_noop, 0).result()
        start = time.perf_counter()
        futures = client.map(_noop, range(n), pure=False)
        client.gather(futures)
        return n / (time.perf_counter() - start)
