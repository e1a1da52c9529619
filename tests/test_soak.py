"""Soak: short tasks on four workers while one of them is killed and replaced every two seconds."""
import os
import random
import signal
import time

import pytest
from conftest import start_worker, stop

import workqueue as wq
from workqueue.constants import Result

SCALE = {"ci": 1000, "full": 5000}


@pytest.mark.slow
def test_every_result_exactly_once_while_workers_die(tmp_path):
    n_tasks = SCALE.get(os.environ.get("WORKQUEUE_SOAK_SCALE", "ci"), 1000)
    rng = random.Random(7)
    m = wq.Manager(port=0, keepalive_interval=0.5, keepalive_timeout=2)
    workers = [start_worker(m.port, "--cores", "1", "-i", "0.2", "-b", "1") for _ in range(4)]
    kills = 0
    try:
        for i in range(n_tasks):
            m.submit(wq.Task(f"echo {i} > out; sleep 0.0{rng.randint(0, 3)}", cores=1,
                             outputs=[(str(tmp_path / f"out.{i}"), "out")], tag=str(i)))
        seen = {}
        next_kill = time.monotonic() + 2
        deadline = time.monotonic() + 600
        while not m.empty():
            assert time.monotonic() < deadline, f"stuck with {len(m.tasks())} tasks left"
            t = m.wait(0.2)
            if t is not None:
                assert t.tag not in seen, f"task {t.tag} returned twice"
                seen[t.tag] = t
            if time.monotonic() > next_kill:
                victim = rng.randrange(len(workers))
                workers[victim].send_signal(signal.SIGKILL)
                workers[victim].wait()
                workers[victim] = start_worker(m.port, "--cores", "1", "-i", "0.2", "-b", "1")
                kills += 1
                next_kill = time.monotonic() + 2
        assert len(seen) == n_tasks
        for tag, t in seen.items():
            assert t.result == Result.SUCCESS and t.return_status == 0, (tag, t.result, t.output)
            assert (tmp_path / f"out.{tag}").read_text() == f"{tag}\n"
        assert not [p for p in os.listdir(tmp_path) if "partial" in p], "a half-received output was left behind"
        stats = m.stats
        print(f"\nsoak: {n_tasks} tasks, {kills} workers killed, {stats['tasks_requeued']} requeued, "
              f"{stats['workers_lost']} declared lost")
        assert kills >= 2 and stats["tasks_requeued"] >= 1
    finally:
        for w in workers:
            stop(w)
        m.close()
