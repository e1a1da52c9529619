"""The machine's own limits, measured in the same run as the workloads they judge."""
from __future__ import annotations

import multiprocessing
import statistics
import subprocess
import threading
import time
from typing import Dict

import zmq


def spawn_rate(n: int, parallel: int = 1) -> float:
    """``sh -c true`` started from Python with subprocess, per second, from ``parallel`` threads."""
    def spawn(count: int) -> None:
        for _ in range(count):
            subprocess.run(["sh", "-c", "true"])

    threads = [threading.Thread(target=spawn, args=(n // parallel,)) for _ in range(parallel)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return (n // parallel) * parallel / (time.perf_counter() - start)


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
