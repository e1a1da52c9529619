"""Python functions as tasks on real workers, and the futures Executor."""
import concurrent.futures
import os

import pytest
from conftest import drain, start_worker, stop

import workqueue as wq
from workqueue.constants import Result


def test_a_function_runs_remotely_and_its_value_comes_back(manager, worker):
    def add(a, b=0):
        return a + b, os.getpid()

    t = wq.PythonTask(add, 2, b=3)
    assert t.output is None, "no value before the task has run"
    manager.submit(t)
    drain(manager)
    value, pid = t.output
    assert value == 5 and pid != os.getpid()
    assert t.result == Result.SUCCESS and t.succeeded
    assert t.output is t.output, "unpickled once, the same object each time"
    import copy
    import pickle
    for twin in (copy.deepcopy(t), pickle.loads(pickle.dumps(t))):
        assert twin.output[0] == 5 and twin.succeeded


def test_a_function_task_sees_the_environment_it_asked_for(manager, worker, monkeypatch):
    def look():
        return os.environ.get("WQ_TEST_SET"), os.environ.get("HOME"), os.environ["CORES"]

    t = wq.PythonTask(look)
    t.set_env("WQ_TEST_SET", "yes")
    t.set_env("HOME", None)  # unset for this task only
    t.set_resources(cores=1)
    manager.submit(t)
    drain(manager)
    assert t.output == ("yes", None, "1")
    after = wq.PythonTask(look)
    manager.submit(after)
    drain(manager)
    assert after.output[0] is None and after.output[1] == os.environ["HOME"]


def test_a_call_past_its_max_run_time_is_stopped_and_the_worker_goes_on(manager, worker):
    import time
    slow = wq.PythonTask(time.sleep, 60)
    slow.set_resources(cores=1)
    slow.set_max_run_time(1)
    started = time.monotonic()
    manager.submit(slow)
    drain(manager)
    assert slow.result == Result.TASK_MAX_RUN_TIME and time.monotonic() - started < 30
    assert isinstance(slow.output, wq.FunctionTaskFailed) and not slow.succeeded
    after = [wq.PythonTask(pow, 2, n) for n in range(4)]
    for t in after:
        manager.submit(t)
    drain(manager)
    assert [t.output for t in after] == [1, 2, 4, 8]


def test_what_a_function_prints_comes_back_beside_its_value(manager, worker):
    def chatty(n):
        print("working on", n)
        return n + 1

    tasks = [wq.PythonTask(chatty, n) for n in range(4)]
    for t in tasks:
        manager.submit(t)
    drain(manager)
    assert [t.output for t in tasks] == [1, 2, 3, 4]
    assert [t.printed for t in tasks] == [f"working on {n}\n" for n in range(4)]


def test_a_call_longer_than_the_idle_timeout_still_reports_before_the_worker_leaves(manager):
    import time
    worker = start_worker(manager.port, "--cores", "1", "--timeout", "1")
    try:
        t = wq.PythonTask(time.sleep, 2)
        manager.submit(t)
        drain(manager, timeout=60)
        assert t.result == Result.SUCCESS and t.attempts == 1
    finally:
        stop(worker)


def test_processes_are_reused_across_calls(manager, worker):
    for _ in range(20):
        manager.submit(wq.PythonTask(os.getpid))
    pids = {t.output for t in drain(manager)}
    assert 1 <= len(pids) <= 2  # the two-core worker keeps one process per core


def test_a_raised_exception_comes_back_with_its_remote_traceback(manager, worker):
    def fail():
        raise KeyError("missing thing")

    t = wq.PythonTask(fail)
    manager.submit(t)
    drain(manager)
    assert isinstance(t.output, KeyError) and not t.succeeded
    assert "missing thing" in t.output.remote_traceback and "fail" in t.output.remote_traceback


def test_a_function_that_kills_its_process_fails_clearly_and_the_worker_goes_on(manager, worker):
    t = wq.PythonTask(os._exit, 3)
    manager.submit(t)
    drain(manager)
    assert t.result == Result.SIGNAL
    assert isinstance(t.output, ChildProcessError)
    manager.submit(wq.PythonTask(sum, [1, 2, 3]))
    assert drain(manager)[0].output == 6


def test_large_arguments_travel_as_a_file(manager, worker):
    blob = os.urandom(3 << 20)
    t = wq.PythonTask(len, blob)
    manager.submit(t)
    drain(manager)
    assert t.output == len(blob)
    assert manager.stats["bytes_sent"] >= len(blob)


def test_many_short_calls_queued_in_pooled_processes_all_come_back_right(manager, worker, tmp_path):
    """Short calls are prefetched and queued behind running ones in the pool; canceled ones never
    come back, every other one comes back once with its own value, and the books end balanced."""
    def square(x, mark):
        with open(mark, "a") as f:
            f.write(f"{x}\n")
        return x * x

    mark = str(tmp_path / "ran")
    for i in range(10):  # teaches the master that this category is short
        manager.submit(wq.PythonTask(square, -1, mark))
    drain(manager)
    ids = {}
    for i in range(400):
        t = wq.PythonTask(square, i, mark)
        t.set_resources(cores=1)
        ids[manager.submit(t)] = i
    canceled = {tid for n, tid in enumerate(ids) if n % 37 == 5}
    for tid in canceled:
        assert manager.cancel(tid) is not None
    done = drain(manager)
    assert sorted(t.id for t in done) == sorted(set(ids) - canceled)
    assert all(t.output == ids[t.id] ** 2 for t in done)
    ran = [int(line) for line in open(mark).read().split()]
    assert sorted(x for x in ran if x >= 0 and ids_of(ids, x) not in canceled) == sorted(ids[t.id] for t in done)
    assert manager.stats["tasks_prefetched"] > 0
    stats = wait_for_idle(manager)
    assert stats["free_cores"] == stats["total_cores"] == 2


def ids_of(ids, value):
    return next(tid for tid, v in ids.items() if v == value)


def wait_for_idle(manager, timeout=10):
    import time
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stats = manager.stats
        if stats["tasks_running"] == 0 and stats["free_cores"] == stats["total_cores"]:
            return stats
        time.sleep(0.05)
    return manager.stats


def test_executor_map_cancel_and_exceptions():
    with wq.Executor(workers=2) as ex:
        assert list(ex.map(pow, [2, 3, 4], [2, 2, 2])) == [4, 9, 16]
        future = ex.submit(divmod, 7, 0)
        with pytest.raises(ZeroDivisionError):
            future.result(timeout=60)
        import time
        slow = ex.submit(time.sleep, 60)
        assert slow.cancel() and slow.cancelled()
        done = []
        quick = ex.submit(abs, -5)
        quick.add_done_callback(lambda f: done.append(f.result()))
        assert quick.result(timeout=60) == 5
        concurrent.futures.wait([quick])
        assert done == [5]
