"""Declared resources: packing on real workers, limits enforced, usage measured."""
import sys

import pytest
from conftest import drain, start_worker, stop, wait_for

import workqueue as wq
from workqueue.constants import Result

PY = sys.executable


@pytest.fixture
def two_core_worker(manager):
    process = start_worker(manager.port, "--cores", "2", "--memory", "4000", "--disk", "4000")
    yield process
    stop(process)


def test_tasks_pack_by_cores_and_never_overcommit(manager, two_core_worker):
    for _ in range(4):
        manager.submit(wq.Task("sleep 1", cores=1))
    done = drain(manager)
    spans = sorted((t.resources_measured["start"], t.resources_measured["end"]) for t in done)
    concurrency = [sum(1 for s, e in spans if s <= start < e) for start, _ in spans]
    assert max(concurrency) == 2, f"expected two one-core tasks at a time on two cores: {spans}"


def test_memory_over_the_declaration_is_killed_with_resource_exhaustion(manager, two_core_worker):
    t = wq.Task(f"{PY} -c 'import time; x = bytearray(300 << 20); x[::4096] = b\"1\" * len(x[::4096]); time.sleep(30)'",
                cores=1, memory=100)
    manager.submit(t)
    drain(manager, timeout=40)
    assert t.result == Result.RESOURCE_EXHAUSTION
    assert t.limits_exceeded == {"memory": 100}
    assert t.resources_measured["memory"] > 100
    assert t.resources_measured["wall_time"] < 20


def test_disk_over_the_declaration_is_killed(manager, two_core_worker):
    t = wq.Task("head -c 5000000 /dev/zero > big; sleep 30", cores=1, disk=2)
    manager.submit(t)
    drain(manager, timeout=40)
    assert t.result == Result.RESOURCE_EXHAUSTION
    assert t.limits_exceeded == {"disk": 2}


def test_max_run_time_kills_the_whole_process_tree(manager, two_core_worker):
    t = wq.Task("sleep 30 & sleep 31", cores=1, max_run_time=1)
    manager.submit(t)
    drain(manager, timeout=40)
    assert t.result == Result.TASK_MAX_RUN_TIME
    assert t.resources_measured["wall_time"] < 10


def test_usage_is_measured(manager, two_core_worker):
    t = wq.Task(f"{PY} -c 'x = bytearray(80 << 20); sum(range(3_000_000))'; head -c 3000000 /dev/zero > f",
                cores=1)
    manager.submit(t)
    drain(manager)
    measured = t.resources_measured
    assert measured["memory"] >= 80
    assert measured["cpu_time"] > 0
    assert 2.5 < measured["disk"] < 10
    assert t.resources_allocated["cores"] == 1


def test_a_task_no_worker_can_hold_is_reported_then_runs_when_one_joins(manager, caplog):
    small = start_worker(manager.port, "--cores", "1")
    try:
        big = wq.Task("echo big", cores=2)
        manager.submit(big)
        manager.submit(wq.Task("echo small", cores=1))
        done = []
        while not done:
            t = manager.wait(1)
            if t:
                done.append(t)
        assert done[0].output.strip() == "small"
        assert manager.stats["tasks_unfit"] == 1
        assert any("more than any connected worker" in r.message for r in caplog.records)
        large = start_worker(manager.port, "--cores", "2")
        try:
            (t,) = drain(manager)
            assert t is big and t.output.strip() == "big"
        finally:
            stop(large)
    finally:
        stop(small)


def test_higher_priority_runs_first_then_arrival_order(manager):
    for name, priority in (("low", 0), ("high-1", 10), ("mid", 5), ("high-2", 10)):
        manager.submit(wq.Task(f"echo {name}", cores=1, priority=priority))
    worker = start_worker(manager.port, "--cores", "1")  # joins after all four wait
    try:
        order = [t.output.strip() for t in drain(manager)]
    finally:
        stop(worker)
    assert order == ["high-1", "high-2", "mid", "low"]


def test_short_tasks_are_prefetched_and_all_complete(manager):
    worker = start_worker(manager.port, "--cores", "1")
    try:
        for i in range(60):
            manager.submit(wq.Task(f"echo {i}", cores=1, category="short"))
        done = drain(manager)
    finally:
        stop(worker)
    assert sorted(int(t.output) for t in done) == list(range(60))
    assert manager.stats["tasks_prefetched"] > 0


def test_long_or_unknown_tasks_never_wait_behind_a_busy_worker(manager):
    first = start_worker(manager.port, "--cores", "1")
    second = None
    try:
        for _ in range(2):
            manager.submit(wq.Task("sleep 2", cores=1))
        assert wait_for(lambda: manager.stats["tasks_running"] == 1, timeout=20)
        second = start_worker(manager.port, "--cores", "1")
        done = drain(manager)
    finally:
        stop(first)
        if second is not None:
            stop(second)
    assert manager.stats["tasks_prefetched"] == 0
    assert len({t.worker_id for t in done}) == 2, "the second task should have gone to the idle worker"
