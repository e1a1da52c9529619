"""Trivial function calls per second through a FunctionPool (poll + collect loop, calls queued in the
processes' pipes as the worker queues them) vs. a plain call."""
import select
import sys
import tempfile
import time

import cloudpickle

from workqueue.worker.pyfunc import FunctionPool


def add(a, b):
    return a + b


def through_pool(size: int, n: int) -> float:
    with tempfile.TemporaryDirectory() as root, FunctionPool(size, root) as pool:
        payload = cloudpickle.dumps((add, (1, 2), {}))
        submitted = done = 0
        start = time.perf_counter()
        while done < n:
            with pool.batch():
                while submitted < n and (pool.submit(str(submitted), payload, root, {"CORES": "1"}) or
                                         pool.submit(str(submitted), payload, root, {"CORES": "1"}, queued=True)):
                    submitted += 1
            select.select([pool.fileno()], [], [], 1)
            for _, status, reply, _ in pool.collect():
                assert status == "ok" and cloudpickle.loads(reply)[:2] == ("ok", 3)
                done += 1
        return n / (time.perf_counter() - start)


def in_process(n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        payload = cloudpickle.dumps((add, (1, 2), {}))
        fn, args, kwargs = cloudpickle.loads(payload)
        cloudpickle.dumps(("ok", fn(*args, **kwargs), None, b""))
    pickled = n / (time.perf_counter() - start)
    start = time.perf_counter()
    for _ in range(n):
        add(1, 2)
    return pickled, n / (time.perf_counter() - start)


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
    for size in (1, 2, 4):
        print(f"pool size={size}: {through_pool(size, n):,.0f} calls/s")
    pickled, plain = in_process(n)
    print(f"in-process with the same pickling: {pickled:,.0f} calls/s; plain call: {plain:,.0f} calls/s")
