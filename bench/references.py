"""The machine's own limits, measured in the same run as the workloads they judge."""
from __future__ import annotations

import multiprocessing
import statistics
import subprocess
import time
from typing import Dict

import zmq


def _spawn_many(count: int, ready, go, ends) -> None:
    ready.put(True)
    go.wait()
    for _ in range(count):
        subprocess.run(["sh", "-c", "true"])
    ends.put(time.perf_counter())  # CLOCK_MONOTONIC on Linux: comparable across processes


def spawn_rate(n: int, parallel: int = 1) -> float:
    """``sh -c true`` started from Python with subprocess, per second, from ``parallel`` processes.

    Separate processes, like our workers: threads of one interpreter would share its GIL and fork path,
    and understate what two cores can spawn.
    """
    if parallel == 1:
        start = time.perf_counter()
        for _ in range(n):
            subprocess.run(["sh", "-c", "true"])
        return n / (time.perf_counter() - start)
    ctx = multiprocessing.get_context("spawn")
    ready, go, ends = ctx.Queue(), ctx.Event(), ctx.Queue()
    count = n // parallel
    procs = [ctx.Process(target=_spawn_many, args=(count, ready, go, ends)) for _ in range(parallel)]
    for p in procs:
        p.start()
    for _ in procs:  # the interpreters start before the clock does
        ready.get(timeout=60)
    start = time.perf_counter()
    go.set()
    last = max(ends.get(timeout=600) for _ in procs)
    for p in procs:
        p.join()
    return count * parallel / (last - start)


def _zmq_sink(port: int, frames: int) -> None:
    ctx = zmq.Context()
    sock = ctx.socket(zmq.PULL)
    sock.connect(f"tcp://127.0.0.1:{port}")
    for _ in range(frames):
        sock.recv(copy=False)
    sock.close(0)
    ctx.term()


def zmq_throughput(total_bytes: int, frame_bytes: int = 1 << 20) -> float:
    """Bytes per second of 1 MiB frames from this process to another one over loopback TCP."""
    frames = max(1, total_bytes // frame_bytes)
    ctx = zmq.Context()
    sock = ctx.socket(zmq.PUSH)
    sock.setsockopt(zmq.LINGER, -1)
    port = sock.bind_to_random_port("tcp://127.0.0.1")
    sink = multiprocessing.get_context("spawn").Process(target=_zmq_sink, args=(port, frames))
    sink.start()
    payload = bytes(frame_bytes)
    start = time.perf_counter()
    for _ in range(frames):
        sock.send(payload, copy=False)
    sink.join()
    elapsed = time.perf_counter() - start
    sock.close()
    ctx.term()
    return frames * frame_bytes / elapsed


def _zmq_echo(port: int, n: int) -> None:
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.connect(f"tcp://127.0.0.1:{port}")
    sock.send(b"hello")
    for _ in range(n):
        sock.send_multipart(sock.recv_multipart())
    sock.close(0)
    ctx.term()


def zmq_round_trip(n: int) -> Dict[str, float]:
    """Median and p99 seconds of a small message there and back between two processes."""
    ctx = zmq.Context()
    sock = ctx.socket(zmq.ROUTER)
    port = sock.bind_to_random_port("tcp://127.0.0.1")
    echo = multiprocessing.get_context("spawn").Process(target=_zmq_echo, args=(port, n))
    echo.start()
    identity, _ = sock.recv_multipart()
    times = []
    for _ in range(n):
        start = time.perf_counter()
        sock.send_multipart([identity, b"ping"])
        sock.recv_multipart()
        times.append(time.perf_counter() - start)
    echo.join()
    sock.close(0)
    ctx.term()
    return {"median": statistics.median(times), "p99": _percentile(times, 0.99), "samples": times}


def _percentile(values, q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]
