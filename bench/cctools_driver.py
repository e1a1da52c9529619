"""Runs one workload on CCTools Work Queue (Debian's coop-computing-tools), under Debian's python3.

    /usr/bin/python3 bench/cctools_driver.py '{"workload": "throughput", "n": 1000, "workers": 2}'

prints the figures as JSON on stdout. Kept free of workqueue imports: it must run where only
Debian's ``work_queue`` module is importable.
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import work_queue as wq

WORKER = "/usr/bin/work_queue_worker"


def start_workers(port, n, workdir=None):
    extra = ["-s", workdir] if workdir else []
    return [subprocess.Popen([WORKER, "-t", "60", "--cores", "1", *extra, "localhost", str(port)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(n)]


def stop_workers(workers):
    for w in workers:
        w.terminate()
    for w in workers:
        w.wait()


def run_all(q, tasks):
    start = time.perf_counter()
    for t in tasks:
        q.submit(t)
    failed = 0
    while not q.empty():
        t = q.wait(1)
        if t is not None and (t.result != wq.WORK_QUEUE_RESULT_SUCCESS or t.return_status != 0):
            failed += 1
    if failed:
        raise RuntimeError(f"{failed} tasks failed")
    return time.perf_counter() - start


def task(command, inputs=(), outputs=()):
    t = wq.Task(command)
    t.specify_cores(1)
    for local, remote, cache in inputs:
        t.specify_file(local, remote, wq.WORK_QUEUE_INPUT, cache=cache)
    for local, remote in outputs:
        t.specify_file(local, remote, wq.WORK_QUEUE_OUTPUT, cache=False)
    return t


def wait_for_workers(q, n, timeout=60):
    deadline = time.time() + timeout
    while q.stats.workers_connected < n and time.time() < deadline:
        q.wait(1)


def throughput(spec, q, tmp):
    tasks = []
    for i in range(spec["n"]):
        if spec.get("files"):
            src = os.path.join(tmp, f"in.{i}")
            with open(src, "w") as f:
                f.write(f"{i}\n")
            tasks.append(task("cat in > out", [(src, "in", False)], [(os.path.join(tmp, f"out.{i}"), "out")]))
        else:
            tasks.append(task("true"))
    return {"tasks_per_second": spec["n"] / run_all(q, tasks)}


def latency(spec, q, tmp):
    times = []
    for _ in range(spec["n"]):
        start = time.perf_counter()
        q.submit(task("true"))
        while q.wait(1) is None:
            pass
        times.append(time.perf_counter() - start)
    ordered = sorted(times)
    return {"median": statistics.median(times), "p99": ordered[min(len(times) - 1, int(0.99 * len(times)))],
            "samples": times}


def make_output(src):
    """A command that makes ``out.bin`` at once (a hard link to the input), so that the output
    figure times the transfer back, not the writing of the file."""
    return f"ln {src} out.bin 2>/dev/null || cp {src} out.bin"


def transfer(spec, q, tmp):
    size, repeats = spec["size"], spec.get("repeats", 3)
    src = os.path.join(tmp, "in.bin")
    with open(src, "wb") as f:
        for _ in range(size >> 20):
            f.write(os.urandom(1 << 20))
    best_in = min(run_all(q, [task("true", [(src, "in.bin", False)])]) for _ in range(repeats))
    run_all(q, [task("true", [(src, "in.bin", True)])])
    figures = {"in": size / best_in,
               "cache_hit_seconds": run_all(q, [task("true", [(src, "in.bin", True)])]),
               "empty_task_seconds": run_all(q, [task("true")])}
    out = os.path.join(tmp, "out.bin")
    best_out = min(run_all(q, [task(make_output(src), outputs=[(out, "out.bin")])]) for _ in range(repeats))
    figures["out"] = size / best_out
    return figures


def main():
    spec = json.loads(sys.argv[1])
    in_memory = spec["workload"] == "transfer" and os.path.isdir("/dev/shm")
    with tempfile.TemporaryDirectory(dir="/dev/shm" if in_memory else None) as tmp:
        os.chdir(tmp)
        q = wq.WorkQueue(0)
        workers = start_workers(q.port, spec.get("workers", 1), tmp if in_memory else None)
        try:
            wait_for_workers(q, spec.get("workers", 1))
            figures = globals()[spec["workload"]](spec, q, tmp)
        finally:
            stop_workers(workers)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
