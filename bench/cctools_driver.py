"""Runs one workload on CCTools Work Queue (Debian's coop-computing-tools), under Debian's python3.

    /usr/bin/python3 bench/cctools_driver.py '{"workload": "throughput", "n": 1000, "workers": 2}'

prints the figures as JSON on stdout. Kept free of workqueue imports: it must run where only
Debian's ``work_queue`` module is importable. What both sides of a comparison must do alike (the
files they make, the command that makes an output) lives here, and ``workloads`` imports it.
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


SMALL_INPUTS = 100  # tasks, each with its own 1 MiB input
QUICK_RUNS = 9  # a cache hit and an empty task: the median of this many (one run is ~1 ms of noise)


def write_random(path, size):
    """A file of ``size`` random bytes (incompressible, and each file different), flushed to disk
    so that ``evict`` can drop it from the page cache."""
    with open(path, "wb") as f:
        for _ in range(max(1, size >> 20)):
            f.write(os.urandom(min(size, 1 << 20)))
        f.flush()
        os.fsync(f.fileno())
    return path


def evict(path):
    """Drop a clean file's pages from the page cache, so that the next read comes from the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def remove(path):
    """Remove the previous run's output before the next run: replacing a file frees its pages
    (46 ms for 256 MiB on tmpfs), which would be timed with the transfer."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def disk_dir():
    """A directory on a disk (not tmpfs), for files read with a cold page cache."""
    return "/var/tmp" if os.path.isdir("/var/tmp") else None


def memory_dir():
    """A directory in memory (tmpfs), where large transfers are not decided by the disk's speed."""
    return "/dev/shm" if os.path.isdir("/dev/shm") else None


def transfer(spec, q, tmp):
    size, repeats = spec["size"], spec.get("repeats", 3)
    src = write_random(os.path.join(tmp, "in.bin"), size)
    best_in = min(run_all(q, [task("true", [(src, "in.bin", False)])]) for _ in range(repeats))
    run_all(q, [task("true", [(src, "in.bin", True)])])
    figures = {"in": size / best_in,
               "cache_hit_seconds": statistics.median(
                   run_all(q, [task("true", [(src, "in.bin", True)])]) for _ in range(QUICK_RUNS)),
               "empty_task_seconds": statistics.median(run_all(q, [task("true")]) for _ in range(QUICK_RUNS))}
    with tempfile.TemporaryDirectory(dir=disk_dir()) as disk:
        cold = write_random(os.path.join(disk, "in.bin"), size)
        figures["in_cold"] = size / min(_cold_run(q, cold) for _ in range(repeats))
    small = [write_random(os.path.join(tmp, f"small.{i}"), 1 << 20) for i in range(SMALL_INPUTS)]
    figures["small_inputs"] = SMALL_INPUTS * (1 << 20) / min(
        run_all(q, [task("true", [(path, "in.bin", False)]) for path in small]) for _ in range(repeats))
    out = os.path.join(tmp, "out.bin")
    figures["out"] = size / min(_output_run(q, src, out) for _ in range(repeats))
    return figures


def transfer_in(spec, q, tmp):
    """Only the input figures of ``transfer`` (warm and cold), for bench/input_path.py."""
    size, repeats = spec["size"], spec.get("repeats", 3)
    src = write_random(os.path.join(tmp, "in.bin"), size)
    figures = {"in": size / min(run_all(q, [task("true", [(src, "in.bin", False)])]) for _ in range(repeats))}
    remove(src)
    with tempfile.TemporaryDirectory(dir=disk_dir()) as disk:
        cold = write_random(os.path.join(disk, "in.bin"), size)
        figures["in_cold"] = size / min(_cold_run(q, cold) for _ in range(repeats))
    return figures


def _output_run(q, src, out):
    remove(out)
    return run_all(q, [task(make_output(src), outputs=[(out, "out.bin")])])


def _cold_run(q, path):
    evict(path)
    return run_all(q, [task("true", [(path, "in.bin", False)])])


def main():
    spec = json.loads(sys.argv[1])
    in_memory = spec["workload"] in ("transfer", "transfer_in") and memory_dir() is not None
    with tempfile.TemporaryDirectory(dir=memory_dir() if in_memory else None) as tmp:
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
