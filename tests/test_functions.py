"""Python functions as tasks on real workers, and the futures Executor."""
import concurrent.futures
import os

import pytest

import workqueue as wq
from workqueue.constants import Result

from conftest import drain, start_worker, stop


def test_a_function_runs_remotely_and_its_value_comes_back(manager, worker):
    def add(a, b=0):
        return a + b, os.getpid()

    t = wq.PythonTask(add, 2, b=3)
    manager.submit(t)
    drain(manager)
    value, pid = t.output
    assert value == 5 and pid != os.getpid()
    assert t.result == Result.SUCCESS and t.succeeded


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
