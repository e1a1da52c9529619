"""GPUs on a worker: each task that declares gpus=n is told n devices no other running task holds."""
import os
import sys
import time

import pytest
from conftest import drain, start_worker, stop

import workqueue as wq
from workqueue.constants import Result
from workqueue.worker.gpus import (
    GpuAllocator,
    device_env,
    devices_needed,
    worker_device_ids,
)

ECHO_DEVICES = "sleep 1; echo $CUDA_VISIBLE_DEVICES/$HIP_VISIBLE_DEVICES"


# --- the pure allocator ---------------------------------------------------------------------

def test_worker_ids_are_its_visible_devices_else_counted_from_zero():
    assert worker_device_ids(None, 4) == ["0", "1", "2", "3"]
    assert worker_device_ids("", 2) == ["0", "1"]
    assert worker_device_ids("2,5", 2) == ["2", "5"]
    assert worker_device_ids(" 2, 5 ,", 1) == ["2"]
    assert worker_device_ids("GPU-aaaa,GPU-bbbb", 2) == ["GPU-aaaa", "GPU-bbbb"]
    assert worker_device_ids("1", 3) == ["1", "0", "2"], "offering more than it sees: unused numbers"
    assert worker_device_ids("0,1", 0) == []


def test_whole_requests_get_distinct_devices_and_give_them_back():
    gpus = GpuAllocator(["2", "5", "7", "9"])
    assert gpus.take(1, 1) == ("2",)
    assert gpus.take(2, 2) == ("5", "7")
    assert gpus.take(3, 1) == ("9",)
    assert gpus.free() == []
    gpus.release(2)
    assert gpus.free() == ["5", "7"]
    assert gpus.take(4, 2) == ("5", "7")
    gpus.release(99)  # holds nothing: no effect
    gpus.release_all()
    assert gpus.free() == ["2", "5", "7", "9"]


def test_no_gpus_holds_nothing_and_a_task_holds_one_set():
    gpus = GpuAllocator(["0", "1"])
    assert gpus.take(1, 0) == () and gpus.held_by(1) == ()
    assert gpus.take(1, 1) == ("0",)
    assert gpus.take(1, 1) == ("0",), "taking again replaces, never adds"
    assert gpus.free() == ["1"]
    assert GpuAllocator([]).take(1, 1) == ()


def test_fractions_need_a_device_and_share_the_least_held():
    assert [devices_needed(a) for a in (0, 0.5, 1, 1.0, 1.5, 2)] == [0, 1, 1, 1, 2, 2]
    gpus = GpuAllocator(["0", "1"])
    assert gpus.take(1, 0.5) == ("0",)
    assert gpus.take(2, 0.5) == ("1",)
    assert gpus.take(3, 0.5) == ("0",)


def test_the_variables_name_the_same_ids():
    assert device_env(("2", "5")) == {"CUDA_VISIBLE_DEVICES": "2,5", "HIP_VISIBLE_DEVICES": "2,5"}


# --- a real worker with --gpus 4 and no device ----------------------------------------------

@pytest.fixture
def four_gpu_worker(manager, monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    process = start_worker(manager.port, "--cores", "2", "--gpus", "4")
    yield process
    stop(process)


def _devices(task):
    cuda, hip = task.output.strip().split("/")
    assert cuda == hip, f"vendor variables differ: {task.output!r}"
    return cuda.split(",")


def _spans_overlap(tasks):
    spans = [(t.resources_measured["start"], t.resources_measured["end"]) for t in tasks]
    return max(s for s, _ in spans) < min(e for _, e in spans)


def test_four_one_gpu_tasks_run_at_once_on_four_distinct_devices(manager, four_gpu_worker):
    tasks = [wq.Task(ECHO_DEVICES, gpus=1) for _ in range(4)]
    for t in tasks:
        manager.submit(t)
    drain(manager)
    assert all(t.result == Result.SUCCESS for t in tasks), [t.output for t in tasks]
    assert _spans_overlap(tasks), "the four tasks did not run at the same time"
    assert sorted(sum((_devices(t) for t in tasks), [])) == ["0", "1", "2", "3"]


def test_two_two_gpu_tasks_get_disjoint_pairs(manager, four_gpu_worker):
    tasks = [wq.Task(ECHO_DEVICES, gpus=2) for _ in range(2)]
    for t in tasks:
        manager.submit(t)
    drain(manager)
    first, second = (set(_devices(t)) for t in tasks)
    assert len(first) == len(second) == 2 and not first & second, (first, second)
    assert _spans_overlap(tasks)


def test_devices_come_back_after_exit_failure_limit_and_cancel(manager, four_gpu_worker):
    over_time = wq.Task("sleep 30", gpus=4, max_run_time=1)
    failing = wq.Task("exit 3", gpus=4)
    for t in (over_time, failing):
        manager.submit(t)
    drain(manager, timeout=40)
    assert over_time.result == Result.TASK_MAX_RUN_TIME and failing.return_status == 3
    canceled = wq.Task("sleep 30", gpus=4)
    manager.submit(canceled)
    time.sleep(1.5)  # long enough to start on the idle worker
    manager.cancel(canceled.id)
    after = wq.Task(ECHO_DEVICES, gpus=4)
    manager.submit(after)
    drain(manager)
    assert after.result == Result.SUCCESS and sorted(_devices(after)) == ["0", "1", "2", "3"]


def test_a_task_without_gpus_keeps_the_workers_own_value(manager):
    """As CCTools: only a task that declares GPUs is given CUDA_VISIBLE_DEVICES."""
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="2,5")
    import subprocess
    process = subprocess.Popen([sys.executable, "-m", "workqueue.worker", "localhost", str(manager.port),
                                "-t", "60", "--cores", "1", "--gpus", "2"], env=env)
    try:
        plain = wq.Task("echo $CUDA_VISIBLE_DEVICES", cores=1)
        one = wq.Task("echo $CUDA_VISIBLE_DEVICES", gpus=1)
        both = wq.Task("echo $CUDA_VISIBLE_DEVICES", gpus=2)
        for t in (plain, one, both):
            manager.submit(t)
        drain(manager)
        assert plain.output.strip() == "2,5"
        assert one.output.strip() in ("2", "5")
        assert both.output.strip() == "2,5"
    finally:
        stop(process)


def test_a_function_task_sees_its_devices_for_its_call_only(manager, four_gpu_worker):
    def look():
        return os.environ.get("CUDA_VISIBLE_DEVICES"), os.environ.get("HIP_VISIBLE_DEVICES")

    with_gpus = wq.PythonTask(look)
    with_gpus.set_resources(gpus=2)
    manager.submit(with_gpus)
    drain(manager)
    cuda, hip = with_gpus.output
    assert cuda == hip and len(cuda.split(",")) == 2
    without = wq.PythonTask(look)
    without.set_resources(cores=1)
    manager.submit(without)
    drain(manager)
    assert without.output == (None, None), "the next call in a pooled process is given none"


def test_function_calls_that_overlap_hold_disjoint_devices(manager, four_gpu_worker):
    """Calls with GPUs are never queued in a busy process's pipe, where they would wait with
    devices that a running call holds."""
    def hold():
        time.sleep(0.5)
        return os.environ["CUDA_VISIBLE_DEVICES"]

    tasks = [wq.PythonTask(hold) for _ in range(5)]
    for t in tasks:
        t.set_resources(gpus=2, cores=1)
        manager.submit(t)
    drain(manager)
    assert all(t.result == Result.SUCCESS for t in tasks), [t.output for t in tasks]
    for a in tasks:
        for b in tasks:
            overlap = (a is not b and a.resources_measured["start"] < b.resources_measured["end"]
                       and b.resources_measured["start"] < a.resources_measured["end"])
            if overlap:
                assert not set(a.output.split(",")) & set(b.output.split(",")), (a.output, b.output)
    assert any(a is not b and a.resources_measured["start"] < b.resources_measured["end"]
               and b.resources_measured["start"] < a.resources_measured["end"] for a in tasks for b in tasks)


class _FakePool:
    def __init__(self):
        self.submitted = []

    def has_room(self, size, queued=False):
        return True

    def submit(self, task_id, call, cwd, queued, env):
        self.submitted.append(task_id)
        return True


def _fake_call(task_id, allocation):
    from types import SimpleNamespace
    return SimpleNamespace(task_id=task_id, allocation=allocation, in_pool=False, task={"kind": "function"},
                           dir="/nonexistent", call=lambda: b"", task_env=lambda: {})


@pytest.mark.parametrize("allocation, queued", [((("cores", 1.0), ("gpus", 0.0)), True),
                                                ((("cores", 1.0), ("gpus", 2.0)), False)])
def test_only_calls_without_gpus_wait_in_a_busy_process_pipe(allocation, queued):
    """A call waiting in a pipe starts with the environment it was sent with, before these books
    give it devices: so only calls that need none are sent ahead."""
    from workqueue.worker.tasks import TaskRunner
    runner = TaskRunner.__new__(TaskRunner)
    runner.functions = _FakePool()
    runner.running = {1: _fake_call(1, allocation)}
    runner.queued = [_fake_call(2, allocation)]
    runner._queue_calls(session=None)
    assert runner.functions.submitted == (["2"] if queued else [])
