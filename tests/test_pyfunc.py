"""FunctionPool: persistent Python processes driven by poll + collect, no threads."""
import os
import select
import time

import cloudpickle
import psutil
import pytest

from workqueue.worker.pyfunc import FunctionPool


def call(fn, *args, **kwargs):
    return cloudpickle.dumps((fn, args, kwargs))


def wait_for(pool, n, timeout=30):
    """Poll the pool's one fd like the worker's loop would, until n outcomes arrived."""
    outcomes = []
    deadline = time.monotonic() + timeout
    while len(outcomes) < n and time.monotonic() < deadline:
        ready, _, _ = select.select([pool.fileno()], [], [], 1)
        if ready:
            outcomes.extend(pool.collect())
    assert len(outcomes) == n, outcomes
    return {task_id: (status, cloudpickle.loads(payload)) for task_id, status, payload, _ in outcomes}


@pytest.fixture
def pool(tmp_path):
    p = FunctionPool(2, str(tmp_path))
    yield p
    p.close()


def test_runs_a_function_and_returns_its_value(pool, tmp_path):
    assert pool.submit("1", call(pow, 2, 10), str(tmp_path), {})
    assert wait_for(pool, 1) == {"1": ("ok", ("ok", 1024, None, b""))}


def test_processes_are_reused(pool, tmp_path):
    pids = set(pool.pids())
    for i in range(6):
        assert pool.submit(str(i), call(os.getpid), str(tmp_path), {})
        status, (_, pid, _, _) = wait_for(pool, 1)[str(i)]
        assert status == "ok" and pid in pids
    assert set(pool.pids()) == pids


def test_busy_pool_refuses(pool, tmp_path):
    assert pool.submit("a", call(time.sleep, 0.5), str(tmp_path), {})
    assert pool.submit("b", call(time.sleep, 0.5), str(tmp_path), {})
    assert pool.idle() == 0
    assert not pool.submit("c", call(time.sleep, 0), str(tmp_path), {})
    assert set(wait_for(pool, 2)) == {"a", "b"}
    assert pool.idle() == 2


def test_exception_comes_back_with_traceback(pool, tmp_path):
    def boom():
        raise ValueError("no good")
    pool.submit("1", call(boom), str(tmp_path), {})
    status, (tag, exc, tb, _) = wait_for(pool, 1)["1"]
    assert status == "error" and tag == "error"
    assert isinstance(exc, ValueError) and "no good" in str(exc)
    assert "boom" in tb


def test_unpicklable_result_is_an_error(pool, tmp_path):
    pool.submit("1", call(lambda: (i for i in range(3))), str(tmp_path), {})
    status, (tag, exc, tb, _) = wait_for(pool, 1)["1"]
    assert status == "error" and tag == "error"


def test_cwd_env_and_what_a_call_prints(pool, tmp_path):
    sandbox = tmp_path / "t.7"
    sandbox.mkdir()
    (sandbox / "helper_mod_pyfunc.py").write_text("VALUE = 41\n")

    def task():
        import helper_mod_pyfunc
        print("hello from the task")
        with open("out.txt", "w") as f:
            f.write("x")
        return os.getcwd(), os.environ["CORES"], helper_mod_pyfunc.VALUE + 1

    pool.submit("7", call(task), str(sandbox), {"CORES": 3})
    status, (_, value, _, printed) = wait_for(pool, 1)["7"]
    assert status == "ok"
    assert value == (str(sandbox), "3", 42)
    assert (sandbox / "out.txt").read_text() == "x"
    assert printed == b"hello from the task\n"
    # the next call sees neither the env nor the cwd of the last one
    pool.submit("8", call(lambda: (os.getcwd(), os.environ.get("CORES"))), str(tmp_path), {})
    assert wait_for(pool, 1)["8"][1][1] == (str(tmp_path), None)


def test_each_call_gets_what_it_printed_and_nothing_else(pool, tmp_path):
    def noisy(n):
        import sys
        print("out", n)
        print("err", n, file=sys.stderr)
        os.system(f"echo child {n}")
        return n
    for n in range(3):
        pool.submit(str(n), call(noisy, n), str(tmp_path), {})
        status, (_, value, _, printed) = wait_for(pool, 1)[str(n)]
        assert (status, value) == ("ok", n)
        assert sorted(printed.decode().splitlines()) == sorted([f"out {n}", f"err {n}", f"child {n}"])
    pool.submit("quiet", call(pow, 3, 2), str(tmp_path), {})
    assert wait_for(pool, 1)["quiet"] == ("ok", ("ok", 9, None, b""))


def test_a_call_that_replaces_or_closes_sys_stdout_spoils_nothing_for_the_next(pool, tmp_path):
    def rude():
        import io
        import sys
        print("before")
        sys.stdout.close()
        sys.stderr = io.StringIO()
        return "done"

    def polite():
        print("hello again")
        return 1

    for task_id, fn in (("rude", rude), ("polite", polite)):
        pool.submit(task_id, call(fn), str(tmp_path), {}, queued=False)
        outcomes = wait_for(pool, 1)
        assert outcomes[task_id][0] == "ok", outcomes
    assert outcomes["polite"] == ("ok", ("ok", 1, None, b"hello again\n"))


def counter_in_a_closure():
    """A function sent by value (a closure) that counts its calls in its own globals-like cell."""
    calls = []

    def count():
        calls.append(1)
        return len(calls)
    return count


def test_each_call_gets_the_state_its_function_was_sent_with(tmp_path):
    """What one call does to its closure is not seen by the next call of the same function in
    the same process: each call is a fresh copy, whichever process runs it."""
    with FunctionPool(1, str(tmp_path)) as pool:
        count = counter_in_a_closure()
        for i in range(3):
            pool.submit(str(i), call(count), str(tmp_path), {})
            assert wait_for(pool, 1)[str(i)] == ("ok", ("ok", 1, None, b""))


def test_a_value_of_a_class_only_the_function_knows_comes_back(pool, tmp_path):
    """The standard pickler would name the class for import; cloudpickle must send it by value."""
    def make():
        class Point:
            def __init__(self, x):
                self.x = x
        return Point(7)
    pool.submit("1", call(make), str(tmp_path), {})
    status, (_, value, _, _) = wait_for(pool, 1)["1"]
    assert status == "ok" and type(value).__name__ == "Point" and value.x == 7


def test_a_value_holding_a_bound_method_comes_back_loadable(pool, tmp_path):
    """The standard pickler saves a bound method as its object plus the method's name, which this
    object's class does not have; cloudpickle saves the function itself."""
    def make():
        import collections
        import types

        def helper(self):
            return len(self)
        value = collections.OrderedDict(a=1)
        value.callback = types.MethodType(helper, value)
        return value
    pool.submit("1", call(make), str(tmp_path), {})
    status, (_, value, _, _) = wait_for(pool, 1)["1"]
    assert status == "ok" and value.callback() == 1


def test_calls_submitted_in_a_batch_reach_each_process_together(tmp_path):
    with FunctionPool(1, str(tmp_path), depth=4) as pool:
        with pool.batch():
            assert pool.submit("a", call(pow, 2, 1), str(tmp_path), {})
            assert pool.submit("b", call(pow, 2, 2), str(tmp_path), {}, queued=True)
            select.select([pool.fileno()], [], [], 0.3)
            assert pool.collect() == [], "nothing was written before the batch ended"
        assert {k: v[1][1] for k, v in wait_for(pool, 2).items()} == {"a": 2, "b": 4}


def test_a_task_can_unset_an_inherited_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("PYFUNC_TEST_VAR", "inherited")
    with FunctionPool(1, str(tmp_path)) as pool:
        get = call(lambda: os.environ.get("PYFUNC_TEST_VAR"))
        pool.submit("1", get, str(tmp_path), {})
        assert wait_for(pool, 1)["1"][1][1] == "inherited"
        pool.submit("2", get, str(tmp_path), {"PYFUNC_TEST_VAR": None})
        assert wait_for(pool, 1)["2"][1][1] is None
        pool.submit("3", get, str(tmp_path), {})
        assert wait_for(pool, 1)["3"][1][1] == "inherited"


def test_os_exit_fails_the_task_and_the_pool_recovers(pool, tmp_path):
    before = set(pool.pids())
    pool.submit("1", call(os._exit, 3), str(tmp_path), {})
    status, (tag, exc, _, _) = wait_for(pool, 1)["1"]
    assert status == "died" and isinstance(exc, ChildProcessError) and "status 3" in str(exc)
    assert pool.size == 2 and len(set(pool.pids()) - before) == 1
    for i in range(4):
        pool.submit(f"n{i}", call(abs, -i), str(tmp_path), {})
        assert wait_for(pool, 1)[f"n{i}"] == ("ok", ("ok", i, None, b""))


def test_segfault_fails_the_task_and_the_pool_recovers(pool, tmp_path):
    def crash():
        import ctypes
        ctypes.string_at(0)
    pool.submit("1", call(crash), str(tmp_path), {})
    pool.submit("2", call(pow, 3, 2), str(tmp_path), {})
    outcomes = wait_for(pool, 2)
    assert outcomes["1"][0] == "died" and "signal" in str(outcomes["1"][1][1])
    assert outcomes["2"] == ("ok", ("ok", 9, None, b""))
    pool.submit("3", call(pow, 2, 2), str(tmp_path), {})
    assert wait_for(pool, 1)["3"][0] == "ok"


def test_kill_stops_a_call_and_replaces_its_process(pool, tmp_path):
    pool.submit("long", call(time.sleep, 60), str(tmp_path), {})
    pool.submit("short", call(pow, 2, 3), str(tmp_path), {})
    assert wait_for(pool, 1) == {"short": ("ok", ("ok", 8, None, b""))}
    old = set(pool.pids())
    assert pool.kill("long")
    assert not pool.kill("long")
    assert pool.idle() == 2 and pool.size == 2 and set(pool.pids()) != old
    pool.submit("after", call(pow, 2, 4), str(tmp_path), {})
    assert wait_for(pool, 1) == {"after": ("ok", ("ok", 16, None, b""))}


def write_mark(path, text):
    """Appends ``text`` to ``path`` (a closure, so cloudpickle sends it by value)."""
    def write():
        with open(path, "a") as f:
            f.write(text)
        return text
    return write


def test_queued_calls_wait_behind_a_busy_process_and_run_in_order(tmp_path):
    with FunctionPool(1, str(tmp_path), depth=2) as pool:
        assert not pool.submit("q0", call(pow, 2, 1), str(tmp_path), {}, queued=True), "no busy process to queue behind"
        mark = str(tmp_path / "order")
        assert pool.submit("a", call(write_mark(mark, "a")), str(tmp_path), {})
        assert pool.submit("b", call(write_mark(mark, "b")), str(tmp_path), {}, queued=True)
        assert not pool.submit("c", call(write_mark(mark, "c")), str(tmp_path), {}, queued=True), "depth 2 is full"
        outcomes = []
        while len(outcomes) < 2:
            select.select([pool.fileno()], [], [], 5)
            outcomes.extend(pool.collect())
    assert [o[:2] for o in outcomes] == [("a", "ok"), ("b", "ok")]
    assert open(mark).read() == "ab"
    (_, _, _, (a_start, a_end)), (_, _, _, (b_start, b_end)) = outcomes
    assert a_start <= a_end <= b_start <= b_end


def test_room_in_a_pipe_comes_back_as_queued_calls_run(tmp_path):
    from workqueue.worker.pyfunc import (
        CANCEL_ROOM,
        HEADER_SIZE,
        QUEUED_BYTES_MAX,
        REQUEST_OVERHEAD,
    )
    largest = QUEUED_BYTES_MAX - REQUEST_OVERHEAD - HEADER_SIZE - CANCEL_ROOM
    with FunctionPool(1, str(tmp_path), depth=8) as pool:
        for round_ in range(3):
            pool.submit(f"r{round_}", call(time.sleep, 0.2), str(tmp_path), {})
            assert pool.has_room(largest, queued=True), f"round {round_}: room leaked"
            for i in range(7):
                assert pool.submit(f"q{round_}.{i}", call(pow, 2, i), str(tmp_path), {}, queued=True)
            assert not pool.has_room(largest, queued=True)
            assert len(wait_for(pool, 8)) == 8


def test_a_canceled_queued_call_never_runs(tmp_path):
    with FunctionPool(1, str(tmp_path)) as pool:
        mark = str(tmp_path / "ran")
        pool.submit("slow", call(time.sleep, 0.5), str(tmp_path), {})
        pool.submit("queued", call(write_mark(mark, "x")), str(tmp_path), {}, queued=True)
        assert pool.kill("queued")
        assert wait_for(pool, 1) == {"slow": ("ok", ("ok", None, None, b""))}
        pool.submit("after", call(pow, 3, 2), str(tmp_path), {})
        assert wait_for(pool, 1) == {"after": ("ok", ("ok", 9, None, b""))}
    assert not os.path.exists(mark)


def test_a_cancel_that_comes_too_late_spoils_no_later_call_of_the_same_id(tmp_path):
    """Task ids start again at 1 with each manager, while function processes live on."""
    with FunctionPool(1, str(tmp_path)) as pool:
        pool.submit("a", call(pow, 2, 1), str(tmp_path), {})
        pool.submit("b", call(pow, 2, 2), str(tmp_path), {}, queued=True)
        time.sleep(0.5)  # both have run; their outcomes wait unread in the pipe
        assert pool.kill("b")
        pool.submit("b", call(pow, 2, 3), str(tmp_path), {}, queued=True)
        assert wait_for(pool, 2) == {"a": ("ok", ("ok", 2, None, b"")), "b": ("ok", ("ok", 8, None, b""))}


def test_killing_a_running_call_lets_the_call_queued_behind_it_run(tmp_path):
    with FunctionPool(1, str(tmp_path)) as pool:
        pool.submit("long", call(time.sleep, 60), str(tmp_path), {})
        pool.submit("next", call(pow, 2, 5), str(tmp_path), {}, queued=True)
        assert pool.kill("long")
        assert wait_for(pool, 1) == {"next": ("ok", ("ok", 32, None, b""))}


def test_a_crash_fails_only_its_own_call_not_the_one_queued_behind(tmp_path):
    with FunctionPool(1, str(tmp_path)) as pool:
        pool.submit("crash", call(os._exit, 3), str(tmp_path), {})
        pool.submit("next", call(pow, 2, 6), str(tmp_path), {}, queued=True)
        outcomes = wait_for(pool, 2)
    assert outcomes["crash"][0] == "died" and outcomes["next"] == ("ok", ("ok", 64, None, b""))


def test_close_leaves_no_processes(tmp_path):
    pool = FunctionPool(3, str(tmp_path))

    def spawn_grandchild():
        import subprocess
        return subprocess.Popen(["sleep", "60"]).pid

    pool.submit("g", call(spawn_grandchild), str(tmp_path), {})
    grandchild = wait_for(pool, 1)["g"][1][1]
    pool.submit("busy", call(time.sleep, 60), str(tmp_path), {})
    pids = pool.pids() + [grandchild]
    pool.close()
    for pid in pids:
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_large_payload_both_ways(pool, tmp_path):
    blob = os.urandom(5 << 20)
    pool.submit("big", call(lambda b: b[::-1], blob), str(tmp_path), {})
    assert wait_for(pool, 1)["big"][1][1] == blob[::-1]


def test_processes_die_with_a_killed_worker(tmp_path):
    """SIGKILL of the pool's owner leaves no function process behind, even a busy one."""
    import subprocess
    import sys
    script = (f"import sys, time, cloudpickle; sys.path[:0] = {sys.path!r}\n"
              f"from workqueue.worker.pyfunc import FunctionPool\n"
              f"pool = FunctionPool(2, {str(tmp_path)!r})\n"
              f"pool.submit('busy', cloudpickle.dumps((time.sleep, (60,), {{}})), {str(tmp_path)!r}, {{}})\n"
              f"print(*pool.pids(), flush=True); time.sleep(60)\n")
    owner = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)
    pids = [int(p) for p in owner.stdout.readline().split()]
    assert len(pids) == 2 and all(psutil.pid_exists(p) for p in pids)
    owner.kill()
    owner.wait()
    deadline = time.monotonic() + 10
    def alive():
        return [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
    while alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert alive() == []
