"""Many simulated workers against one real master: what the master's loop costs per worker and per task.

A simulated worker is a DEALER socket that speaks the real protocol (hello, then a result for each
task the moment it arrives, without running anything), so the master's dispatch, books and socket
work are measured alone. Several processes hold the sockets (``python -m bench.simulated_workers
HOST PORT COUNT``), each polling its share; the master is a real ``Manager`` in this process.

Run alone: ``python -m bench.simulated_workers --scale 1000 100000`` (or ``--raw 1000 100000``, the
bare-ROUTER reference) prints one JSON line.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from typing import Dict, List

import psutil
import zmq

import workqueue as wq
from workqueue.constants import Result
from workqueue.wire import protocol

RESOURCES = {"cores": 1.0, "memory": 1000.0, "disk": 1000.0, "gpus": 0.0}
SOCKETS_PER_PROCESS = 250


def serve(host: str, port: int, count: int) -> None:
    """Hold ``count`` simulated workers until the master says goodbye to all of them."""
    context = zmq.Context()
    context.setsockopt(zmq.MAX_SOCKETS, count + 16)
    poller = zmq.Poller()
    sockets = []
    for i in range(count):
        sock = context.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(f"tcp://{host}:{port}")
        sock.send_multipart(protocol.hello(f"sim-{os.getpid()}-{i}", "simulated", RESOURCES))
        poller.register(sock, zmq.POLLIN)
        sockets.append(sock)
    alive = set(sockets)
    success = int(Result.SUCCESS)
    while alive:
        for sock, _ in poller.poll(1000):
            while True:
                try:
                    frames = sock.recv_multipart(zmq.NOBLOCK, copy=False)
                except zmq.Again:
                    break
                replies = []
                for part in protocol.split(frames):
                    message = protocol.decode(part)
                    if message.type == "task":
                        replies.append(protocol.encode(
                            "result", [b""], task_id=message["task_id"], attempt=message["attempt"], result=success,
                            exit_code=0, measured={"wall_time": 0.0}))
                    elif message.type in ("bye", "shutdown", "reject"):
                        alive.discard(sock)
                if replies:
                    sock.send_multipart(protocol.bundle(replies))
    for sock in sockets:
        sock.close(0)
    context.term()


def scale(workers: int, tasks: int) -> Dict[str, float]:
    """Master figures with ``workers`` simulated workers: memory per connected worker, CPU while
    they idle, and tasks/s through the master (submit to last result)."""
    me = psutil.Process()
    with wq.Manager(port=0, host="127.0.0.1") as m:
        time.sleep(0.2)
        rss_before = me.memory_info().rss
        simulators = _start(m.port, workers)
        try:
            _wait_connected(m, workers)
            time.sleep(1.0)
            rss_connected = me.memory_info().rss
            me.cpu_percent()
            time.sleep(3.0)
            idle_cpu = me.cpu_percent()
            started = time.perf_counter()
            for _ in range(tasks):
                m.submit(wq.Task("true", cores=1))
            submitted = time.perf_counter()
            done = 0
            while done < tasks:
                if m.wait(10) is None:
                    raise RuntimeError(f"no result for 10 s after {done} of {tasks} tasks")
                done += 1
            elapsed = time.perf_counter() - started
        finally:
            m.close()
            for process in simulators:
                try:
                    process.wait(30)
                except subprocess.TimeoutExpired:
                    process.kill()
    return {
        "workers": workers, "tasks": tasks, "tasks_per_second": tasks / elapsed,
        "submit_per_second": tasks / (submitted - started),
        "idle_master_cpu_percent": idle_cpu,
        "master_kib_per_worker": (rss_connected - rss_before) / workers / 1024,
    }


def raw_router(workers: int, tasks: int, window: int = 64) -> float:
    """The reference: the same simulated workers fed by a bare ROUTER socket that sends each a
    pre-encoded task (``window`` at a time) whenever one of its results comes back, with no books,
    no scheduling and no records: tasks/s of the sockets and the simulators alone."""
    context = zmq.Context.instance()
    router = context.socket(zmq.ROUTER)
    router.setsockopt(zmq.LINGER, 0)
    port = router.bind_to_random_port("tcp://127.0.0.1")
    simulators = _start(port, workers)
    welcome = protocol.encode("welcome", version=wq.PROTOCOL_VERSION, keepalive=60.0, timeout=600.0)
    task = protocol.encode("task", [b""], task_id=1, attempt=1, command="true", resources=RESOURCES)
    identities: List[bytes] = []
    try:
        while len(identities) < workers:
            identity, *_ = router.recv_multipart()
            identities.append(identity)
            router.send_multipart([identity, *welcome])
        started = time.perf_counter()
        sent = done = 0
        for identity in identities:
            for _ in range(min(window, tasks - sent)):
                router.send_multipart([identity, *task])
                sent += 1
        while done < tasks:
            identity, header, *rest = router.recv_multipart()
            finished = len(protocol.split([header, *rest]))
            done += finished
            for _ in range(min(finished, tasks - sent)):
                router.send_multipart([identity, *task])
                sent += 1
        elapsed = time.perf_counter() - started
        for identity in identities:
            router.send_multipart([identity, *protocol.encode("bye", reason="done")])
    finally:
        for process in simulators:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
        router.close(0)
    return tasks / elapsed


def _start(port: int, workers: int) -> List[subprocess.Popen]:
    counts = [SOCKETS_PER_PROCESS] * (workers // SOCKETS_PER_PROCESS)
    if workers % SOCKETS_PER_PROCESS:
        counts.append(workers % SOCKETS_PER_PROCESS)
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [here, os.environ.get("PYTHONPATH")])))
    return [subprocess.Popen([sys.executable, "-m", "bench.simulated_workers", "127.0.0.1", str(port), str(n)],
                             env=env) for n in counts]


def _wait_connected(m: wq.Manager, workers: int, timeout: float = 120) -> None:
    from .workloads import _connected
    _connected(m, workers, timeout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", nargs=2, type=int, metavar=("WORKERS", "TASKS"))
    parser.add_argument("--raw", nargs=2, type=int, metavar=("WORKERS", "TASKS"))
    parser.add_argument("rest", nargs="*")
    args = parser.parse_args()
    if args.scale:
        print(json.dumps(scale(*args.scale)))
    elif args.raw:
        print(json.dumps({"raw_router_tasks_per_second": raw_router(*args.raw)}))
    else:
        host, port, count = args.rest
        serve(host, int(port), int(count))


if __name__ == "__main__":
    main()
