"""The machine's own limits, measured in the same run as the workloads they judge."""
from __future__ import annotations

import multiprocessing
import os
import statistics
import subprocess
import tempfile
import time
from typing import Dict, List, Optional

import zmq

from .cctools_driver import memory_dir, write_random

FRAME_BYTES = 1 << 20


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


def _zmq_sink(port: int, frames: int, target: Optional[str]) -> None:
    ctx = zmq.Context()
    sock = ctx.socket(zmq.PAIR)
    sock.connect(f"tcp://127.0.0.1:{port}")
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600) if target else -1
    sock.send(b"ready")
    for _ in range(frames):
        frame = sock.recv(copy=False)
        if fd >= 0:
            os.write(fd, frame.buffer)
    if fd >= 0:
        os.close(fd)
    sock.send(b"done")
    sock.close()
    ctx.term()


def zmq_throughput(total_bytes: int, files: bool = False, repeats: int = 3) -> float:
    """Bytes per second (best of ``repeats``) of 1 MiB frames from this process to another one over
    loopback TCP: from memory to nowhere, or with ``files``, read from a file and written to another
    (in /dev/shm, as the transfer workload's files) with plain ``read`` and ``write`` calls and
    nothing else (no protocol, no digest): the ceiling of a file transfer over ZeroMQ. The clock
    starts once the receiver is running and stops when it has the last byte (or has closed its
    file), so neither interpreter's start-up nor its exit is timed."""
    frames = max(1, total_bytes // FRAME_BYTES)
    if not files:
        return max(_zmq_stream(frames, None, None) for _ in range(repeats))
    with tempfile.TemporaryDirectory(dir=memory_dir()) as tmp:
        source = write_random(os.path.join(tmp, "source"), frames * FRAME_BYTES)
        target = os.path.join(tmp, "target")
        return max(_zmq_stream(frames, source, target) for _ in range(repeats))


def _zmq_stream(frames: int, source: Optional[str], target: Optional[str]) -> float:
    ctx = zmq.Context()
    sock = ctx.socket(zmq.PAIR)
    sock.setsockopt(zmq.SNDHWM, 8)  # as our transfers' window: memory stays bounded
    port = sock.bind_to_random_port("tcp://127.0.0.1")
    sink = multiprocessing.get_context("spawn").Process(target=_zmq_sink, args=(port, frames, target))
    sink.start()
    sock.recv()
    start = time.perf_counter()
    if source:
        _send_file(sock, source, frames)
    else:
        payload = bytes(FRAME_BYTES)
        for _ in range(frames):
            sock.send(payload, copy=False)
    sock.recv()
    elapsed = time.perf_counter() - start
    sink.join()
    sock.close()
    ctx.term()
    return frames * FRAME_BYTES / elapsed


def _send_file(sock: zmq.Socket, path: str, frames: int, ring: int = 16) -> None:
    """Read into a ring of reused buffers, each sent without a copy and refilled once ZeroMQ is done
    with it: the fastest of the plain ways tried here (a fresh buffer per read, or one buffer sent
    with a copy, were 5-20% slower)."""
    buffers = [bytearray(FRAME_BYTES) for _ in range(ring)]
    trackers: List[Optional[zmq.MessageTracker]] = [None] * ring
    with open(path, "rb", buffering=0) as f:
        for i in range(frames):
            slot = i % ring
            if trackers[slot] is not None:
                trackers[slot].wait()
            f.readinto(buffers[slot])
            trackers[slot] = sock.send(buffers[slot], copy=False, track=True)


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
