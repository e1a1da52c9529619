"""The worker side of the coprocess protocol, against Parsl's real parsl_coprocess.py and a fake one."""
import json
import os
import pickle
import select
import shutil
import subprocess
import sys
import textwrap
import time

import psutil
import pytest

from workqueue.worker.coprocess import Coprocess, CoprocessError, CoprocessPool

PARSL_COPROCESS = shutil.which("parsl_coprocess.py")
needs_parsl = pytest.mark.skipif(PARSL_COPROCESS is None, reason="parsl not installed (pip install parsl)")

# A coprocess speaking the same protocol, with calls that misbehave on purpose.
FAKE = textwrap.dedent("""
    import json, os, socket, sys, time
    s = socket.socket(); s.bind(("localhost", 0))
    msg = json.dumps({"name": "fake_coprocess", "port": s.getsockname()[1]})
    sys.stdout.write(f"{len(msg)}\\n{msg}"); sys.stdout.flush()
    print("chatter on stdout after the announcement"); sys.stdout.flush()
    time.sleep(0.2)  # announce before listen, like Parsl's
    s.listen()
    home = os.getcwd()
    while True:
        conn, _ = s.accept(); f = conn.makefile("rw", encoding="utf-8")
        while True:
            line = f.readline()
            if not line: break
            name, task_id, size = line.split()
            event = json.loads(f.read(int(size)))
            os.chdir(os.path.join(home, f"t.{task_id}"))
            if name == "die": os._exit(7)
            if name == "sleep": time.sleep(event["s"])
            if name == "fork_and_hang" and os.fork() == 0: time.sleep(600)
            result = {"Result": [event, os.getcwd(), os.environ.get("COPRO_ENV"), os.getpid()],
                      "StatusCode": 200 if name != "fail" else 500}
            out = json.dumps(result, ensure_ascii=False)
            os.chdir(home)
            f.write(f"{len(out)}\\n{out}"); f.flush()
""")


@pytest.fixture
def fake(tmp_path):
    path = tmp_path / "fake_coprocess.py"
    path.write_text(FAKE)
    return f"{sys.executable} {path}"


def sandbox(root, task_id):
    os.makedirs(os.path.join(root, f"t.{task_id}"), exist_ok=True)


def drain(pool, n, timeout=30):
    outcomes = []
    deadline = time.monotonic() + timeout
    while len(outcomes) < n and time.monotonic() < deadline:
        if select.select([pool.fileno()], [], [], 1)[0]:
            outcomes.extend(pool.collect())
    assert len(outcomes) == n, outcomes
    return {task_id: (status, json.loads(reply)) for task_id, status, reply, *_ in outcomes}


def test_fake_call_runs_in_task_sandbox_with_env(fake, tmp_path):
    sandbox(tmp_path, 5)
    with Coprocess(fake, str(tmp_path), {"COPRO_ENV": "yes"}) as co:
        assert co.name == "fake_coprocess"
        reply = json.loads(co.call("echo", "5", json.dumps({"x": "héllo ☃"}), timeout=10))
        assert reply["StatusCode"] == 200
        assert reply["Result"][:3] == [{"x": "héllo ☃"}, str(tmp_path / "t.5"), "yes"]
        sandbox(tmp_path, 6)  # the connection is reused for the next call
        assert json.loads(co.call("echo", "6", "{}", timeout=10))["Result"][1] == str(tmp_path / "t.6")


def test_error_status_and_death(fake, tmp_path):
    sandbox(tmp_path, 1)
    with Coprocess(fake, str(tmp_path)) as co:
        co.submit("fail", "1", "{}")
        assert drain(co, 1)["1"][0] == "error"
        co.submit("die", "1", "{}")
        status, reply = drain(co, 1)["1"]
        assert status == "died" and reply["StatusCode"] == 500
        assert not co.alive()


def test_timeout_kills_the_process_group(fake, tmp_path):
    sandbox(tmp_path, 2)
    co = Coprocess(fake, str(tmp_path))
    co.start()
    group = co.process.pid
    try:
        co.submit("fork_and_hang", "2", "{}")
        assert drain(co, 1)["2"][0] == "ok"
        assert len(group_members(group)) >= 2  # the coprocess and its forked child (and sh, if it forked)
        with pytest.raises(TimeoutError):
            co.call("sleep", "2", json.dumps({"s": 60}), timeout=0.5)
    finally:
        co.close()  # a no-op after the timeout; otherwise no sleeper outlives a failed test
    deadline = time.monotonic() + 5  # SIGKILL is delivered asynchronously
    while group_members(group) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert group_members(group) == []


def group_members(pgid):
    alive = []
    for p in psutil.process_iter(["pid", "status"]):
        if _pgid(p.pid) == pgid and p.info["status"] != psutil.STATUS_ZOMBIE:
            alive.append(p.pid)
    return alive


def _pgid(pid):
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None


@pytest.mark.skipif(not sys.platform.startswith("linux") or not shutil.which("setpriv"), reason="needs setpriv")
def test_coprocess_dies_with_a_killed_worker(fake, tmp_path):
    """A worker killed with SIGKILL cannot clean up: the coprocess must not outlive it."""
    script = (f"import sys, time; sys.path[:0] = {sys.path!r}\n"
              f"from workqueue.worker.coprocess import Coprocess\n"
              f"co = Coprocess({fake!r}, {str(tmp_path)!r}); co.start()\n"
              f"print(co.process.pid, flush=True); time.sleep(60)\n")
    owner = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)
    coprocess_pid = int(owner.stdout.readline())
    assert psutil.pid_exists(coprocess_pid)
    owner.kill()
    owner.wait()
    deadline = time.monotonic() + 10
    while psutil.pid_exists(coprocess_pid) and time.monotonic() < deadline:
        if psutil.Process(coprocess_pid).status() == psutil.STATUS_ZOMBIE:
            break
        time.sleep(0.05)
    assert not psutil.pid_exists(coprocess_pid) or psutil.Process(coprocess_pid).status() == psutil.STATUS_ZOMBIE


def test_bad_command_fails_to_start(tmp_path):
    with pytest.raises(CoprocessError):
        Coprocess("exit 3", str(tmp_path)).start(timeout=10)
    with pytest.raises(CoprocessError):
        Coprocess("echo nonsense", str(tmp_path)).start(timeout=10)


def test_pool_runs_calls_side_by_side_and_replaces_the_dead(fake, tmp_path):
    for i in range(1, 5):
        sandbox(tmp_path, i)
    with CoprocessPool(fake, str(tmp_path), 2) as pool:
        assert pool.size == 2 and pool.name == "fake_coprocess"
        assert pool.submit("1", "sleep", json.dumps({"s": 0.3}))
        assert pool.submit("2", "sleep", json.dumps({"s": 0.3}))
        assert not pool.submit("3", "echo", "{}")
        outcomes = drain(pool, 2)
        assert outcomes["1"][1]["Result"][3] != outcomes["2"][1]["Result"][3]  # two processes
        pool.submit("3", "die", "{}")
        assert drain(pool, 1)["3"][0] == "died"
        assert pool.size == 2 and pool.idle() == 2
        pool.submit("4", "sleep", json.dumps({"s": 60}))
        assert pool.kill("4") and pool.idle() == 2
        pool.submit("4", "echo", "{}")
        assert drain(pool, 1)["4"][0] == "ok"


def parsl_task_files(directory, fn, args):
    """The map and function files Parsl's WorkQueueExecutor writes (see _serialize_function)."""
    from parsl.serialize import pack_apply_message
    with open(os.path.join(directory, "function"), "wb") as f:
        pickle.dump({"byte code": pack_apply_message(fn, args, {}, buffer_threshold=1 << 20)}, f)
    with open(os.path.join(directory, "map"), "wb") as f:
        pickle.dump({}, f)


# a function the coprocess can import (parsl pickles module-level functions by reference)
from operator import add as parsl_add  # noqa: E402


@needs_parsl
def test_real_parsl_coprocess_runs_a_parsl_task(tmp_path):
    from parsl.serialize import deserialize
    with CoprocessPool("parsl_coprocess.py", str(tmp_path), 2) as pool:
        assert pool.name == "parsl_coprocess"
        for task_id in (11, 12, 13):
            sandbox(tmp_path, task_id)
            parsl_task_files(tmp_path / f"t.{task_id}", parsl_add, (task_id, 100))
        event = {"fn_args": ["map", "function", "result"], "fn_kwargs": {}, "remote_task_exec_method": "direct"}
        submitted = ["11", "12"]
        for task_id in submitted:
            assert pool.submit(task_id, "run_parsl_task", json.dumps(event))
        outcomes = drain(pool, 2)
        pool.submit("13", "run_parsl_task", json.dumps(event))
        outcomes.update(drain(pool, 1))
        for task_id in (11, 12, 13):
            assert outcomes[str(task_id)] == ("ok", {"Result": None, "StatusCode": 200})
            with open(tmp_path / f"t.{task_id}" / "result", "rb") as f:
                assert deserialize(f.read()) == task_id + 100


@needs_parsl
def test_real_parsl_coprocess_reports_a_broken_call(tmp_path):
    sandbox(tmp_path, 3)
    with Coprocess("parsl_coprocess.py", str(tmp_path)) as co:
        # no map/function files in the sandbox: Parsl's coprocess answers 500 and keeps serving
        event = {"fn_args": ["map", "function", "result"], "fn_kwargs": {}, "remote_task_exec_method": "direct"}
        reply = json.loads(co.call("run_parsl_task", "3", json.dumps(event), timeout=30))
        assert reply["StatusCode"] == 500
        parsl_task_files(tmp_path / "t.3", parsl_add, (1, 2))
        assert json.loads(co.call("run_parsl_task", "3", json.dumps(event), timeout=30))["StatusCode"] == 200
