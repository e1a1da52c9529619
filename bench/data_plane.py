"""``python -m bench.data_plane [--producers N] [--mib M] [--workers W] [--repeats R] [--fanout MIB]``

A two-stage workflow: N producers each write M MiB, N consumers each read one of those files,
on W local workers, run in turn with the intermediates as temporary files (they stay on the
workers) and as ordinary outputs (back to the master, then out again as inputs). Prints, for each,
the master's bytes sent and received, the bytes moved worker to worker, and the wall time; the
ratio of the wall times is the figure to compare (both measured in the same run).

``--fanout MIB``: one cached input of MIB MiB used by one task on each of W workers (started and
connected before the clock starts), against the same input for one task on one worker: the
master's bytes sent, and the ratio of the wall times.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import tempfile
import time
from typing import Dict, Iterator, List

import workqueue as wq
from workqueue.data.peer_sources import Transfers
from workqueue.manager.staging import Staging

MiB = 1 << 20


def produce(i: int, mib: int) -> str:
    return f"{{ echo {i}; head -c {mib * MiB} /dev/zero; }} > out"


def run_temporary(n: int, mib: int, workers: int) -> Dict[str, float]:
    with wq.Manager(port=0) as m, wq.local_workers(workers, m, cores=1):
        started = time.perf_counter()
        temps = [m.declare_temp() for _ in range(n)]
        for i, temp in enumerate(temps):
            m.submit(wq.Task(produce(i, mib), outputs=[(temp, "out")], cores=1))
        for temp in temps:
            m.submit(wq.Task("wc -c < in", inputs=[(temp, "in")], cores=1))
        _drain(m, 2 * n)
        return _figures(m, time.perf_counter() - started)


def run_killed(n: int, mib: int, workers: int) -> Dict[str, float]:
    """Temporary files, one worker killed (SIGKILL) once the producers are done: every consumer must
    still read the right bytes (their producers run again, lineage)."""
    with wq.Manager(port=0, keepalive_interval=0.5, keepalive_timeout=3) as m, \
            wq.local_workers(workers, m, cores=1) as pool:
        started = time.perf_counter()
        temps = [m.declare_temp() for _ in range(n)]
        for i, temp in enumerate(temps):
            m.submit(wq.Task(produce(i, mib), outputs=[(temp, "out")], cores=1))
        _drain(m, n)
        pool.processes[0].kill()
        expected = {m.submit(wq.Task("wc -c < in", inputs=[(temp, "in")], cores=1)): len(f"{i}\n") + mib * MiB
                    for i, temp in enumerate(temps)}
        for _ in range(n):
            task = m.wait(600)
            if task is None or not task.succeeded or int(task.output) != expected[task.id]:
                raise RuntimeError(f"a consumer failed or read the wrong bytes: {task!r}")
        figures = _figures(m, time.perf_counter() - started)
        figures["recovered"] = m.stats["tasks_recovered"]
        return figures


def run_ordinary(n: int, mib: int, workers: int) -> Dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="wq-bench-") as directory, wq.Manager(port=0) as m, \
            wq.local_workers(workers, m, cores=1):
        started = time.perf_counter()
        paths = [os.path.join(directory, f"part-{i}") for i in range(n)]
        for i, path in enumerate(paths):
            m.submit(wq.Task(produce(i, mib), outputs=[(path, "out")], cores=1))
        _drain(m, n)
        for path in paths:
            m.submit(wq.Task("wc -c < in", inputs=[(path, "in")], cores=1))
        _drain(m, n)
        return _figures(m, time.perf_counter() - started)


def run_fanout(workers: int, path: str) -> Dict[str, float]:
    with wq.Manager(port=0) as m, wq.local_workers(workers, m, cores=1):
        deadline = time.monotonic() + 120
        while m.stats["workers_connected"] < workers and time.monotonic() < deadline:
            time.sleep(0.05)
        started = time.perf_counter()
        for _ in range(workers):
            m.submit(wq.Task("wc -c < in; sleep 1", inputs=[wq.File(path, "in", cache=True)], cores=1))
        _drain(m, workers)
        return _figures(m, time.perf_counter() - started)


@contextlib.contextmanager
def master_only() -> Iterator[None]:
    """The reference: the master sends every copy itself (peer sources switched off in this process)."""
    saved = Transfers.pick, Staging._master_sends
    Transfers.pick = lambda self, holders, destination, now: None
    Staging._master_sends = lambda self, digest, destination: True
    try:
        yield
    finally:
        Transfers.pick, Staging._master_sends = saved


def fanout(mib: int, workers: int, repeats: int) -> None:
    with tempfile.TemporaryDirectory(prefix="wq-bench-") as directory:
        path = os.path.join(directory, "input.bin")
        with open(path, "wb") as f:
            f.write(os.urandom(mib * MiB))
        one, many, reference = "1 worker", f"{workers} workers", f"{workers} workers, master only"
        runs: Dict[str, List[Dict[str, float]]] = {one: [], many: [], reference: []}
        for _ in range(repeats):  # in turn
            runs[one].append(run_fanout(1, path))
            runs[many].append(run_fanout(workers, path))
            with master_only():
                runs[reference].append(run_fanout(workers, path))
    for count, figures in runs.items():
        seconds = statistics.median(f["seconds"] for f in figures)
        print(f"{mib} MiB cached input, {count}: wall {seconds:6.2f} s  master sent "
              f"{figures[-1]['sent'] / MiB:7.1f} MiB  worker to worker {figures[-1]['peer'] / MiB:7.1f} MiB  "
              f"all wall times {[round(f['seconds'], 2) for f in figures]}")
    def median(key: str) -> float:
        return statistics.median(f["seconds"] for f in runs[key])
    print(f"{many} take {median(many) / median(one):.2f}x the wall time of one, "
          f"{median(reference) / median(one):.2f}x when the master sends every copy "
          f"(each task sleeps 1 s after reading)")


def _drain(m: wq.Manager, count: int) -> None:
    for _ in range(count):
        task = m.wait(600)
        if task is None or not task.succeeded:
            raise RuntimeError(f"a task failed or none came back: {task!r} {task.output if task else ''}")


def _figures(m: wq.Manager, seconds: float) -> Dict[str, float]:
    stats = m.stats
    return {"seconds": seconds, "sent": stats["bytes_sent"], "received": stats["bytes_received"],
            "peer": stats.get("bytes_peer", 0), "peer_transfers": stats.get("peer_transfers", 0)}


def main(argv: List[str] = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.data_plane")
    parser.add_argument("--producers", type=int, default=20)
    parser.add_argument("--mib", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--fanout", type=int, help="MiB of one cached input for one task per worker")
    parser.add_argument("--kill", action="store_true", help="kill a worker between the stages (temporary files)")
    args = parser.parse_args(argv)
    if args.kill:
        f = run_killed(args.producers, args.mib, args.workers)
        print(f"{args.producers} producers x {args.mib} MiB, {args.workers} workers, one killed between the stages: "
              f"every consumer read the right bytes; {f['recovered']:.0f} producers ran again; wall "
              f"{f['seconds']:.2f} s; master sent {f['sent'] / MiB:.1f} MiB, received {f['received'] / MiB:.1f} MiB; "
              f"worker to worker {f['peer'] / MiB:.1f} MiB")
        return
    if args.fanout:
        fanout(args.fanout, args.workers, args.repeats)
        return
    runs: Dict[str, List[Dict[str, float]]] = {"temporary": [], "ordinary": []}
    for _ in range(args.repeats):  # in turn: this VM's speed drifts within a run
        runs["temporary"].append(run_temporary(args.producers, args.mib, args.workers))
        runs["ordinary"].append(run_ordinary(args.producers, args.mib, args.workers))
    print(f"{args.producers} producers x {args.mib} MiB, {args.producers} consumers, {args.workers} workers, "
          f"median of {args.repeats}")
    for kind, figures in runs.items():
        seconds = statistics.median(f["seconds"] for f in figures)
        last = figures[-1]
        print(f"{kind:10s} wall {seconds:7.2f} s  master sent {last['sent'] / MiB:8.1f} MiB  received "
              f"{last['received'] / MiB:8.1f} MiB  worker to worker {last['peer'] / MiB:8.1f} MiB "
              f"({last['peer_transfers']:.0f} transfers)  all wall times {[round(f['seconds'], 2) for f in figures]}")
    ratio = statistics.median(f["seconds"] for f in runs["ordinary"]) / \
        statistics.median(f["seconds"] for f in runs["temporary"])
    print(f"temporary files are {ratio:.2f}x as fast as ordinary outputs")


if __name__ == "__main__":
    main()
