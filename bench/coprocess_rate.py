"""Round trips per second through a CoprocessPool against Parsl's real parsl_coprocess.py.

Each call is a full protocol round trip (header + JSON, chdir into t.<id>, reply); the function
called is `name` with a wrong argument, so Parsl's coprocess answers 500 without doing any work.
"direct" as Parsl sends it: without it Parsl's coprocess forks per call, and a forked child whose
call raised goes on serving as a second coprocess (a fork chain; seen here, do not do that).
"""
import os
import select
import signal
import sys
import tempfile
import time

from workqueue.worker.coprocess import CoprocessPool

EVENT = '{"fn_args": [], "fn_kwargs": {}, "remote_task_exec_method": "direct"}'


def rate(size: int, n: int) -> float:
    with tempfile.TemporaryDirectory() as root:
        for i in range(size * 2):
            os.mkdir(os.path.join(root, f"t.{i}"))
        with CoprocessPool("parsl_coprocess.py", root, size) as pool:
            submitted = done = 0
            start = time.perf_counter()
            while done < n:
                while submitted < n and pool.submit(str(submitted % (size * 2)), "name", EVENT):
                    submitted += 1
                select.select([pool.fileno()], [], [], 1)
                done += len(pool.collect())
            return n / (time.perf_counter() - start)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # so that `timeout` still closes the pool
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    for size in (1, 2):
        print(f"parsl_coprocess.py x{size}: {rate(size, n):,.0f} calls/s")
