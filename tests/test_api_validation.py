"""Every argument may be wrong: the API refuses a bad one at the call, naming it, and a manager whose
loop thread died says so at once instead of returning None for ever (issue 14)."""
import math
import threading
import time

import pytest
from click.testing import CliRunner
from conftest import drain, wait_for

import work_queue
import workqueue as wq
from workqueue import validation
from workqueue.cli.worker import main as worker_main
from workqueue.manager.loop import ManagerLoop


# -- Task: the command, text fields and numbers -------------------------------------------------
@pytest.mark.parametrize("command", [None, 123, b"echo bytes", ["echo", "list"]])
def test_a_command_that_is_not_a_str_is_refused(command):
    with pytest.raises(TypeError, match=r"Task: command must be a str, got"):
        wq.Task(command)


@pytest.mark.parametrize("command", ["echo \0 nul", "echo \udcff lone surrogate"])
def test_a_command_that_cannot_travel_is_refused(command):
    with pytest.raises(ValueError, match="Task: command must be"):
        wq.Task(command)


@pytest.mark.parametrize("arguments, error, message", [
    ({"memory": "abc"}, TypeError, "Task: memory must be a finite number >= 0 (MB), got 'abc'"),
    ({"disk": -5}, ValueError, "Task: disk must be a finite number >= 0 (MB), got -5"),
    ({"cores": -1}, ValueError, "Task: cores must be a finite number >= 0, got -1"),
    ({"cores": True}, TypeError, "Task: cores must be a finite number >= 0, got True"),
    ({"gpus": math.nan}, ValueError, "Task: gpus must be a finite number >= 0, got nan"),
    ({"cores": math.inf}, ValueError, "Task: cores must be a finite number >= 0, got inf"),
    ({"priority": "high"}, TypeError, "Task: priority must be a finite number, got 'high'"),
    ({"priority": math.nan}, ValueError, "Task: priority must be a finite number, got nan"),
    ({"max_run_time": "10s"}, TypeError, "Task: max_run_time must be a finite number > 0 (seconds), got '10s'"),
    ({"max_run_time": 0}, ValueError, "Task: max_run_time must be a finite number > 0 (seconds), got 0"),
    ({"max_retries": -1}, ValueError, "Task: max_retries must be a whole number >= 0, got -1"),
    ({"max_retries": 2.5}, TypeError, "Task: max_retries must be a whole number >= 0, got 2.5"),
    ({"max_retries": True}, TypeError, "Task: max_retries must be a whole number >= 0, got True"),
    ({"tag": 5}, TypeError, "Task: tag must be a str or None, got 5"),
    ({"category": None}, TypeError, "Task: category must be a str, got None"),
    ({"inputs": "data.txt"}, TypeError, "Task: inputs must be a list of files, got 'data.txt'"),
    ({"outputs": [42]}, TypeError, "Task: an output must be a non-empty path (str or os.PathLike), got 42"),
])
def test_the_constructor_refuses_a_bad_argument_naming_it(arguments, error, message):
    with pytest.raises(error) as refused:
        wq.Task("true", **arguments)
    assert str(refused.value) == message


@pytest.mark.parametrize("setter, value, error", [
    ("set_resources", {"memory": "abc"}, TypeError),
    ("set_resources", {"cores": -1}, ValueError),
    ("set_resources", {"ram": 100}, ValueError),
    ("set_priority", "high", TypeError),
    ("set_max_run_time", "10s", TypeError),
    ("set_end_time", -3, ValueError),
    ("set_max_retries", "3", TypeError),
    ("set_command", None, TypeError),
    ("set_tag", b"bytes", TypeError),
    ("set_category", 7, TypeError),
])
def test_setters_refuse_what_the_constructor_refuses_and_change_nothing(setter, value, error):
    task = wq.Task("true", cores=1, priority=2)
    before = task.to_spec()
    with pytest.raises(error):
        if isinstance(value, dict):
            getattr(task, setter)(**value)
        else:
            getattr(task, setter)(value)
    assert task.to_spec() == before


def test_numbers_from_the_callers_library_become_plain_numbers():
    from fractions import Fraction
    task = wq.Task("true", cores=Fraction(1, 2), memory=100, disk=2.5, priority=Fraction(3))
    assert task.resources == {"cores": 0.5, "memory": 100, "disk": 2.5, "gpus": None}
    assert type(task.priority) is float and task.priority == 3
    assert wq.Task("true", cores=0).resources["cores"] == 0  # 0 is a declaration, not an error


# -- Task: the environment ----------------------------------------------------------------------
@pytest.mark.parametrize("env, error", [
    ({1: "x"}, TypeError),
    ({"": "x"}, ValueError),
    ({"A=B": "x"}, ValueError),
    ({"A\0B": "x"}, ValueError),
    ({"A": 1}, TypeError),
    ({"A": "x\0y"}, ValueError),
    ([("A", "x")], TypeError),
])
def test_a_bad_environment_variable_is_refused(env, error):
    with pytest.raises(error, match="Task: "):
        wq.Task("true", env=env)
    if isinstance(env, dict):
        task = wq.Task("true")
        with pytest.raises(error, match="Task: "):
            task.set_env(*next(iter(env.items())))
        assert task.to_spec()["env"] == {}


def test_the_environment_is_bounded_in_all_and_per_variable():
    with pytest.raises(ValueError, match=r"Task: the environment must be at most 1048576 bytes in all"):
        wq.Task("true", env={f"V{i}": "x" * 100_000 for i in range(11)})
    task = wq.Task("true", env={f"V{i}": "x" * 100_000 for i in range(10)})
    with pytest.raises(ValueError, match="in all"):
        task.set_env("ONE_MORE", "x" * 100_000)
    task.set_env("V0", "short")  # replacing a variable frees its room
    task.set_env("ONE_MORE", "x" * 100_000)
    with pytest.raises(ValueError, match=r"environment variable 'BIG' must be at most 131071 bytes"):
        wq.Task("true", env={"BIG": "x" * 200_000})
    assert wq.Task("true", env={"GONE": None}).to_spec()["env"] == {"GONE": None}


# -- Task: files --------------------------------------------------------------------------------
def test_two_outputs_with_one_remote_name_are_refused(tmp_path):
    with pytest.raises(ValueError, match=r"Task: the remote name of each output must be unique .*got 'out.txt'"):
        wq.Task("true", outputs=[(str(tmp_path / "a"), "out.txt"), (str(tmp_path / "b"), "out.txt")])
    task = wq.Task("true", outputs=[(str(tmp_path / "a"), "out.txt")])
    with pytest.raises(ValueError, match="unique"):
        task.add_output((str(tmp_path / "b"), "out.txt"))
    assert [f.local for f in task.outputs] == [str(tmp_path / "a")]


def test_two_outputs_written_to_one_local_path_are_refused_as_cctools_does(tmp_path):
    with pytest.raises(ValueError, match=r"a path no other output writes \(output 'one' writes it\)"):
        wq.Task("true", outputs=[(str(tmp_path / "x"), "one"), (str(tmp_path / "x"), "two")])


def test_two_inputs_with_one_remote_name_are_refused(tmp_path):
    with pytest.raises(ValueError, match=r"Task: the remote name of each input must be unique"):
        wq.Task("true", inputs=[(str(tmp_path / "a"), "in"), (str(tmp_path / "b"), "in")])
    task = wq.Task("true")
    task.add_input(wq.File(None, "in", data=b"one"))
    with pytest.raises(ValueError, match="unique"):
        task.add_input(wq.File(None, "in", data=b"two"))


def test_the_same_file_declared_twice_is_kept_once_as_cctools_takes_it(tmp_path):
    path = str(tmp_path / "same.txt")
    task = wq.Task("true", inputs=[path, (path, "same.txt")], outputs=[path + ".out", path + ".out"])
    assert [f.remote for f in task.inputs] == ["same.txt"]
    assert [f.remote for f in task.outputs] == ["same.txt.out"]


def test_an_input_and_an_output_may_share_a_remote_name(tmp_path):
    task = wq.Task("true", inputs=[(str(tmp_path / "in"), "data")], outputs=[(str(tmp_path / "out"), "data")])
    assert task.inputs[0].remote == task.outputs[0].remote == "data"


@pytest.mark.parametrize("spec, error", [
    (None, TypeError), (b"bytes-path", TypeError), (("a", "b", "c"), TypeError), (("a", 5), TypeError),
    ((None, "x"), TypeError), (wq.File(None, "x", data="text, not bytes"), TypeError),
])
def test_an_input_that_is_not_a_file_is_refused(spec, error):
    with pytest.raises(error, match="Task: "):
        wq.Task("true", inputs=[spec])


def test_a_local_name_that_is_not_utf8_needs_a_remote_name_that_is(tmp_path):
    undecodable = tmp_path / "bad\udcffname"  # what os.listdir gives for a name that is not UTF-8
    undecodable.write_text("x")
    with pytest.raises(ValueError, match="Task: the remote name of an input must be a str of valid Unicode"):
        wq.Task("cat *", inputs=[str(undecodable)])  # it used to stop the manager's loop at dispatch
    assert wq.Task("cat in", inputs=[(str(undecodable), "in")]).inputs[0].remote == "in"


def test_function_and_coprocess_tasks_check_what_they_are_given():
    with pytest.raises(TypeError, match="PythonTask: func must be callable, got 123"):
        wq.PythonTask(123)
    with pytest.raises(TypeError, match="RemoteTask: fn_name must be a str"):
        wq.RemoteTask(5, "coprocess")
    with pytest.raises(ValueError, match="RemoteTask: exec method must be one of"):
        wq.RemoteTask("f", "coprocess").set_exec_method("spawn")
    assert wq.PythonTask(pow, 2, 3).command == "pow"


# -- Manager ------------------------------------------------------------------------------------
@pytest.mark.parametrize("timeout", ["x", True, [1], b"1"])
def test_wait_says_what_it_takes(manager, timeout):
    with pytest.raises(TypeError, match=r"Manager.wait: timeout must be a number of seconds \(None, or a negative"):
        manager.wait(timeout)


def test_the_cctools_wait_says_what_it_takes_too():
    q = work_queue.WorkQueue(0)
    try:
        with pytest.raises(TypeError, match=r"Manager.wait: timeout must be a number of seconds"):
            q.wait("5")
    finally:
        q.close()


def test_wait_refuses_nan_and_still_takes_zero_none_negative_and_infinity(manager):
    with pytest.raises(ValueError, match="Manager.wait: timeout"):
        manager.wait(math.nan)
    manager.submit(wq.Task("true", cores=1))
    assert manager.wait(0) is None and manager.wait(0.01) is None
    waiters = [threading.Thread(target=manager.wait, args=(forever,), daemon=True) for forever in (None, -1, math.inf)]
    for waiter in waiters:
        waiter.start()
    time.sleep(0.5)
    assert all(waiter.is_alive() for waiter in waiters), "with no worker, waiting for ever blocks"
    manager.close()
    for waiter in waiters:
        waiter.join(5)
        assert not waiter.is_alive(), "a wait blocked for ever returns once the manager is closed"


@pytest.mark.parametrize("arguments, error, message", [
    ({"port": "9123"}, TypeError, "Manager: port must be a port number"),
    ({"port": -1}, ValueError, "Manager: port must be a port number"),
    ({"port": 70000}, ValueError, "Manager: port must be a port number"),
    ({"port": True}, TypeError, "Manager: port must be a port number"),
    ({"port": (9200, 9100)}, ValueError, "Manager: port must be"),
    ({"keepalive_interval": 0}, ValueError, "Manager: keepalive_interval must be a finite number > 0"),
    ({"keepalive_timeout": "30"}, TypeError, "Manager: keepalive_timeout must be a finite number > 0"),
    ({"password": 1234}, TypeError, "Manager: password must be a str, bytes or None"),
    ({"name": 5}, TypeError, "Manager: name must be a str or None"),
    ({"transactions_log": 3}, TypeError, "Manager: transactions_log must be a non-empty path"),
])
def test_the_manager_constructor_refuses_a_bad_argument(arguments, error, message):
    arguments.setdefault("port", 0)
    with pytest.raises(error, match=message.replace("(", r"\(")):
        wq.Manager(**arguments)


@pytest.mark.parametrize("call, error", [
    (lambda m: m.cancel("1"), TypeError),
    (lambda m: m.cancel(None), TypeError),
    (lambda m: m.cancel_by_tag(5), TypeError),
    (lambda m: m.cancel_by_category(None), TypeError),
    (lambda m: m.shutdown_workers(-1), ValueError),
    (lambda m: m.shutdown_workers("all"), TypeError),
    (lambda m: m.tune("keepalive-interval", "abc"), TypeError),
    (lambda m: m.tune("keepalive-interval", 0), ValueError),
    (lambda m: m.tune("hungry-minimum", math.inf), ValueError),
    (lambda m: m.tune(5, 1), TypeError),
    (lambda m: m.set_password(1234), TypeError),
    (lambda m: m.set_transactions_log(5), TypeError),
    (lambda m: m.set_category_max_resources("c", {"cores": "x"}), TypeError),
    (lambda m: m.set_category_max_resources("c", {"cores": -1}), ValueError),
    (lambda m: m.set_category_max_resources(None, {"cores": 1}), TypeError),
    (lambda m: m.status(5), TypeError),
    (lambda m: m.invalidate_cache_file(None), TypeError),
    (lambda m: m.submit("echo not a task"), TypeError),
])
def test_manager_calls_refuse_bad_arguments_and_the_loop_lives_on(manager, call, error):
    with pytest.raises(error, match="Manager"):
        call(manager)
    assert manager.status("queue") is not None  # the loop still answers
    manager.submit(wq.Task("true", cores=1))
    assert not manager.empty()


def test_a_transactions_log_that_cannot_be_written_fails_at_the_call(manager, tmp_path):
    with pytest.raises(OSError):
        manager.set_transactions_log(str(tmp_path / "no-such-dir" / "tx.log"))
    assert manager.status("queue") is not None


def test_good_manager_arguments_still_work(manager, tmp_path):
    manager.tune("keepalive-interval", 1)
    manager.tune("prefetch", False)
    manager.tune("category-steady-n-tasks", 20)  # a CCTools name Parsl sets: taken, no effect
    manager.set_category_max_resources("c", {"cores": 1, "memory": None})
    manager.set_transactions_log(str(tmp_path / "tx.log"))
    manager.shutdown_workers(0)
    assert manager.cancel(12345) is None


# -- the CCTools skin goes through the same checkers --------------------------------------------
@pytest.mark.parametrize("call, error, message", [
    (lambda t: t.specify_memory("abc"), TypeError, "Task: memory must be a finite number >= 0 (MB), got 'abc'"),
    (lambda t: t.specify_cores(math.inf), ValueError, "Task: cores must be a finite number >= 0"),
    (lambda t: t.specify_gpus(True), TypeError, "Task: gpus must be"),
    (lambda t: t.specify_priority("high"), TypeError, "Task: priority must be a finite number, got 'high'"),
    (lambda t: t.specify_running_time_max("10s"), TypeError, "Task: max_run_time must be"),
    (lambda t: t.specify_running_time("10s"), TypeError, "Task: max_run_time must be"),
    (lambda t: t.specify_end_time(math.nan), ValueError, "Task: end_time must be"),
    (lambda t: t.specify_running_time_min("x"), TypeError, "Task: min_running_time must be"),
    (lambda t: t.specify_max_retries(1.5), TypeError, "Task: max_retries must be a whole number"),
    (lambda t: t.specify_command(None), TypeError, "Task: command must be a str"),
    (lambda t: t.specify_tag(5), TypeError, "Task: tag must be a str"),
    (lambda t: t.specify_category(None), TypeError, "Task: category must be a str"),
    (lambda t: t.specify_environment_variable(1, "x"), TypeError, "Task: an environment variable's name"),
    (lambda t: t.specify_feature(None), TypeError, "Task: feature must be a str"),
    (lambda t: t.specify_file("a", "x", 7), ValueError, "Task.specify_file: type must be one of 0, 1"),
    (lambda t: t.specify_input_file(None), TypeError, "Task: the local path of an input"),
    (lambda t: t.specify_buffer(123, "x"), TypeError, "Task.specify_buffer: buffer must be bytes or a str"),
    (lambda t: t.specify_buffer("x", None), TypeError, "Task.specify_buffer: remote_name must be a str"),
])
def test_the_cctools_task_refuses_what_the_native_task_refuses(call, error, message):
    task = work_queue.Task("true")
    with pytest.raises(error) as refused:
        call(task)
    assert str(refused.value).startswith(message)


def test_the_cctools_task_keeps_cctools_meanings_of_numbers(tmp_path):
    task = work_queue.Task("true")
    task.specify_cores(2)
    task.specify_memory(1000.0)  # Parsl may pass floats
    task.specify_cores(0)
    assert task.resources["cores"] == 0 and task.resources["memory"] == 1000.0
    task.specify_cores(-1)  # CCTools: a negative resource is "not set"
    task.specify_max_retries(-1)  # CCTools: below 1 is 0, retry for ever
    task.specify_running_time_max(0)  # CCTools: below 1 is "no limit"
    task.specify_running_time(5_000_000)
    assert task.resources["cores"] is None and task.to_spec()["max_retries"] == 0
    assert task.to_spec()["max_run_time"] == 5.0
    task.specify_output_file(str(tmp_path / "o"), "out")
    with pytest.raises(ValueError, match="unique"):
        task.specify_output_file(str(tmp_path / "p"), "out")
    task.specify_buffer(b"data", "data")
    task.specify_buffer(bytearray(b"data"), "data")  # the same buffer again: taken once
    assert [f.remote for f in task.inputs] == ["data"]


@pytest.mark.parametrize("call, error", [
    (lambda q: q.specify_keepalive_interval("x"), TypeError),
    (lambda q: q.specify_keepalive_timeout(-5), ValueError),
    (lambda q: q.specify_name(5), TypeError),
    (lambda q: q.specify_password(5), TypeError),
    (lambda q: q.specify_transactions_log(5), TypeError),
    (lambda q: q.specify_max_resources({"cores": "all"}), TypeError),
    (lambda q: q.specify_category_max_resources(5, {"cores": 1}), TypeError),
    (lambda q: q.specify_catalog_server("localhost", "9097"), TypeError),
    (lambda q: q.specify_log(5), TypeError),
    (lambda q: q.cancel_by_taskid("1"), TypeError),
    (lambda q: q.cancel_by_tasktag(None), TypeError),
    (lambda q: q.task_state("1"), TypeError),
    (lambda q: q.activate_fast_abort("x"), TypeError),
])
def test_the_cctools_queue_refuses_bad_arguments(call, error):
    q = work_queue.WorkQueue(0)
    try:
        with pytest.raises(error):
            call(q)
        q.specify_max_resources({"cores": 1, "memory": -1, "wall_time": 60})  # CCTools' own keys pass
        q.submit(work_queue.Task("true"))
        assert not q.empty()
    finally:
        q.close()


def test_the_cctools_queue_refuses_a_port_that_is_not_a_number():
    with pytest.raises(TypeError, match="Manager: port must be a port number"):
        work_queue.WorkQueue("abc")


# -- a loop that dies is reported ---------------------------------------------------------------
LOOP_DIES = pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")


@pytest.fixture
def loop_killer(monkeypatch):
    """Set the returned event and the manager's loop raises on its next turn, for real."""
    trigger = threading.Event()
    maintain = ManagerLoop._maintain

    def maintain_or_die(self):
        if trigger.is_set():
            raise RuntimeError("boom: the loop broke")
        return maintain(self)

    monkeypatch.setattr(ManagerLoop, "_maintain", maintain_or_die)
    return trigger


def outcome_of(call, timeout=10.0):
    """Run ``call`` in a thread: its return value or exception, or fail if it is still running."""
    outcome = []

    def run():
        try:
            outcome.append(call())
        except BaseException as error:  # noqa: BLE001 - the outcome under test
            outcome.append(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), f"still running after {timeout} s"
    return outcome[0]


def dead(manager):
    try:
        manager.stats
    except wq.ManagerLoopStopped:
        return True
    return False


@LOOP_DIES
def test_a_wait_blocked_for_ever_wakes_when_the_loop_dies(manager, loop_killer):
    manager.submit(wq.Task("true", cores=1))
    threading.Timer(0.3, loop_killer.set).start()
    stopped = outcome_of(lambda: manager.wait())
    assert isinstance(stopped, wq.ManagerLoopStopped) and isinstance(stopped, RuntimeError)
    assert str(stopped) == "the manager's loop stopped: RuntimeError: boom: the loop broke"
    assert isinstance(stopped.cause, RuntimeError) and stopped.__cause__ is stopped.cause


@LOOP_DIES
def test_the_cctools_idiom_ends_when_the_loop_dies():
    q = work_queue.WorkQueue(0)
    try:
        q.submit(work_queue.Task("true"))

        def explode():
            raise RuntimeError("boom")
        q._loop._maintain = explode  # this instance only: its next turn raises

        def idiom():
            while not q.empty():
                q.wait(5)
        assert isinstance(outcome_of(idiom), wq.ManagerLoopStopped)
    finally:
        q.close()


@LOOP_DIES
def test_every_call_raises_once_the_loop_is_dead_and_close_still_works(manager, loop_killer):
    manager.submit(wq.Task("true", cores=1))
    loop_killer.set()
    assert wait_for(lambda: dead(manager), timeout=10)
    for call in (lambda: manager.wait(0), manager.empty, manager.hungry, lambda: manager.stats,
                 manager.status, lambda: manager.cancel(1), lambda: manager.submit(wq.Task("true")),
                 lambda: manager.tune("keepalive-interval", 1)):
        with pytest.raises(wq.ManagerLoopStopped, match="the manager's loop stopped: RuntimeError: boom"):
            call()
    manager.close()
    assert manager.empty() is False  # a closed manager reports, it does not raise


@LOOP_DIES
def test_an_executor_fails_its_futures_when_the_loop_dies(loop_killer):
    executor = wq.Executor()
    try:
        future = executor.submit(pow, 2, 10)  # no worker: it waits
        loop_killer.set()
        error = future.exception(timeout=10)
        assert isinstance(error, wq.ManagerLoopStopped), error
    finally:
        executor.shutdown(wait=False)


# -- the worker's command line ------------------------------------------------------------------
@pytest.mark.parametrize("option, value", [
    ("--cores", "inf"), ("--cores", "nan"), ("--cores", "-1"), ("--cores", "abc"),
    ("--memory", "-1"), ("--memory", "inf"), ("--disk", "-5"), ("--gpus", "abc"), ("--gpus", "-2"),
])
def test_the_worker_refuses_resources_that_are_not_finite_numbers_at_least_zero(option, value):
    result = CliRunner().invoke(worker_main, ["localhost", "1", option, value, "-t", "1"])
    assert result.exit_code == 2, result.output
    assert f"Invalid value for '{option}'" in result.output


# -- end to end ---------------------------------------------------------------------------------
def test_after_bad_submissions_are_refused_a_good_task_runs(manager, worker, tmp_path):
    bad = [lambda: wq.Task("echo x", memory="abc"), lambda: wq.Task("echo x", priority="high"),
           lambda: wq.Task("echo x", max_run_time="10s"), lambda: wq.Task(None), lambda: wq.Task(b"echo"),
           lambda: wq.Task("echo x", env={1: "x"}), lambda: wq.Task("echo x", cores=-1),
           lambda: wq.Task("echo \udcff"), lambda: wq.Task("echo x", env={"BIG": "x" * (2 << 20)}),
           lambda: wq.Task("true", outputs=[(str(tmp_path / "a"), "o"), (str(tmp_path / "b"), "o")])]
    for make in bad:
        with pytest.raises((TypeError, ValueError)):
            manager.submit(make())
    for call in (lambda: manager.wait("x"), lambda: manager.tune("keepalive-interval", "x"),
                 lambda: manager.shutdown_workers("all"), lambda: manager.cancel("1")):
        with pytest.raises((TypeError, ValueError)):
            call()
    good = wq.Task("echo $GREETING > out.txt; cat in.txt >> out.txt", cores=1, env={"GREETING": "hello"},
                   inputs=[wq.File(None, "in.txt", data=b"world\n")], outputs=[(str(tmp_path / "out.txt"), "out.txt")])
    manager.submit(good)
    assert drain(manager) == [good]
    assert good.succeeded, good.output
    assert (tmp_path / "out.txt").read_text() == "hello\nworld\n"


def test_an_input_modified_in_place_comes_back_as_an_output(manager, worker, tmp_path):
    (tmp_path / "data.txt").write_text("before\n")
    task = wq.Task("echo after >> data.txt", cores=1, inputs=[str(tmp_path / "data.txt")],
                   outputs=[(str(tmp_path / "result.txt"), "data.txt")])
    manager.submit(task)
    assert manager.wait(30) is task and task.succeeded, task.output
    assert (tmp_path / "result.txt").read_text() == "before\nafter\n"


def test_a_wait_for_ever_with_a_cctools_minus_one_returns_the_task(manager, worker):
    manager.submit(wq.Task("echo forever", cores=1))
    assert manager.wait(-1).output == "forever\n"


def test_the_validation_messages_quote_long_values_briefly():
    with pytest.raises(TypeError) as refused:
        validation.number("Task", "priority", "x" * 10_000)
    assert len(str(refused.value)) < 200 and "characters" in str(refused.value)
