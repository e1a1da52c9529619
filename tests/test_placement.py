"""Where tasks go, end to end with a real Manager: block lists (fake workers with hostnames of their
own, and a real worker blocked by this host's name), and the FILES algorithm against FCFS with real
workers and large cached inputs."""
import os
import socket
import time

import pytest
from conftest import dealer, drain, start_worker, stop, wait_for

import workqueue as wq
from workqueue.constants import Result
from workqueue.wire import protocol

ONE_CORE = {"cores": 1, "memory": 100, "disk": 100, "gpus": 0}


def fake_worker(m, name, hostname):
    sock = dealer(m.port)
    sock.send_multipart(protocol.hello(name, hostname, ONE_CORE))
    assert next_message(sock).type == "welcome"
    return sock


def next_message(sock, timeout=5.0):
    """The next message other than a heartbeat, or None after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while sock.poll(max(1, int((deadline - time.monotonic()) * 1000))):
        for part in protocol.split(sock.recv_multipart()):
            message = protocol.decode(part)
            if message.type != "heartbeat":
                return message
    return None


def finish(sock, task):
    sock.send_multipart(protocol.encode("result", [b""], task_id=task["task_id"], attempt=task["attempt"],
                                        result=0, exit_code=0))


def one_core_task():
    task = wq.Task("true")
    task.set_resources(cores=1)
    return task


def test_a_blocked_host_gets_no_new_tasks_until_unblocked():
    with wq.Manager(port=0) as m:
        m.tune("prefetch", 0)
        blocked, open_ = fake_worker(m, "wa", "host-a"), fake_worker(m, "wb", "host-b")
        m.block_host("host-a")
        assert wait_for(lambda: m.stats["workers_blocked"] == 1)
        assert wait_for(lambda: m.stats["hosts_blocked"] == ["host-a"])
        assert [row["blocked"] for row in sorted(m.status("workers"), key=lambda r: r["worker_id"])] == [True, False]
        for _ in range(3):
            m.submit(one_core_task())
        for _ in range(3):  # one at a time, all on host-b
            task = next_message(open_)
            assert task.type == "task"
            assert next_message(blocked, timeout=0.3) is None
            finish(open_, task)
            assert m.wait(5).result == Result.SUCCESS
        m.submit(one_core_task())
        m.submit(one_core_task())
        first = next_message(open_)
        assert next_message(blocked, timeout=0.3) is None
        m.unblock_host("host-a")
        second = next_message(blocked)
        assert second is not None and second.type == "task"
        assert wait_for(lambda: m.stats["workers_blocked"] == 0)
        finish(open_, first)
        finish(blocked, second)
        assert len(drain(m, timeout=10)) == 2


def test_a_block_with_a_timeout_expires():
    with wq.Manager(port=0) as m:
        m.tune("prefetch", 0)
        sock = fake_worker(m, "wa", "host-a")
        m.block_host("host-a", timeout=1.0)
        m.submit(one_core_task())
        assert next_message(sock, timeout=0.5) is None
        task = next_message(sock, timeout=5)
        assert task is not None and task.type == "task"
        assert wait_for(lambda: m.stats["hosts_blocked"] == [])
        finish(sock, task)
        assert m.wait(5).result == Result.SUCCESS


def test_a_real_worker_on_a_blocked_hostname_runs_nothing_new(tmp_path):
    with wq.Manager(port=0) as m:
        m.block_host(socket.gethostname())
        process = start_worker(m.port, "--cores", "1", "-s", str(tmp_path))
        try:
            assert wait_for(lambda: m.stats["workers_blocked"] == 1, timeout=15)
            m.submit(wq.Task("echo ran"))
            assert m.wait(1.5) is None
            assert wait_for(lambda: m.stats["tasks_waiting"] == 1 and m.stats["tasks_running"] == 0)
            m.unblock_host()
            [task] = drain(m, timeout=30)
            assert task.result == Result.SUCCESS and task.output.strip() == "ran"
        finally:
            stop(process)


def test_the_skin_maps_block_lists_and_orders_onto_the_native_calls():
    import work_queue
    q = work_queue.WorkQueue(port=0)
    try:
        q.block_host("host-a")
        q.block_host_with_timeout("host-b", 60)
        assert wait_for(lambda: q.stats.hosts_blocked == ["host-a", "host-b"])
        q.unblock_host("host-a")
        assert wait_for(lambda: q.stats.hosts_blocked == ["host-b"])
        q.unblock_host()
        assert wait_for(lambda: q.stats.hosts_blocked == [])
        q.specify_algorithm(work_queue.WORK_QUEUE_SCHEDULE_FCFS)
        q.specify_task_order(work_queue.WORK_QUEUE_TASK_ORDER_LIFO)
        assert wait_for(lambda: (q._loop.scheduler.algorithm, q._loop.scheduler.task_order) == ("fcfs", "lifo"))
        with pytest.raises(ValueError):
            q.specify_algorithm(17)
        with pytest.raises(ValueError):
            q.specify_task_order(2)
    finally:
        q.close()


MIB = 1 << 20


def bytes_sent_for(algorithm, inputs, workdir):
    """40 one-core tasks over 2 one-core workers, each reading one of ``inputs`` (cached)."""
    with wq.Manager(port=0) as m:
        m.set_algorithm(algorithm)
        workers = [start_worker(m.port, "--cores", "1", "-s", str(workdir / f"{algorithm}{i}")) for i in range(2)]
        try:
            assert wait_for(lambda: m.stats["workers_connected"] == 2, timeout=15)
            for i in range(40):
                task = wq.Task("test -s data")
                task.set_resources(cores=1)
                task.add_input((inputs[i % 2], "data"), cache=True)
                m.submit(task)
            done = drain(m, timeout=120)
            assert len(done) == 40 and all(t.result == Result.SUCCESS for t in done)
            return m.stats["bytes_sent"]
        finally:
            for process in workers:
                stop(process)


def test_files_sends_each_large_input_to_each_worker_at_most_once(tmp_path):
    inputs = []
    for name in ("a", "b"):
        path = tmp_path / f"input-{name}"
        with open(path, "wb") as f:
            f.write(os.urandom(64 * MIB))
        inputs.append(str(path))
    files = bytes_sent_for("files", inputs, tmp_path)
    fcfs = bytes_sent_for("fcfs", inputs, tmp_path)
    print(f"bytes sent for 40 tasks, 2 workers, 2 x 64 MiB cached inputs: FILES {files / MIB:.0f} MiB, "
          f"FCFS {fcfs / MIB:.0f} MiB")
    assert files <= 2 * 2 * 64 * MIB


def worker_with_env(port, **env):
    import subprocess
    import sys
    return subprocess.Popen([sys.executable, "-m", "workqueue.worker", "localhost", str(port), "-t", "60",
                             "--cores", "1"], env={**os.environ, **env})


@pytest.mark.parametrize("per_task", [False, True])
def test_time_sends_tasks_to_the_worker_whose_tasks_ran_quickest(per_task):
    """Two real one-core workers; tasks on the slow one sleep 0.4 s more (an environment variable of
    that worker). Once each has run tasks, TIME puts every task on the quick one."""
    with wq.Manager(port=0) as m:
        m.tune("prefetch", 0)
        slow, quick = worker_with_env(m.port, EXTRA_SLEEP="0.4"), worker_with_env(m.port, EXTRA_SLEEP="0")
        try:
            assert wait_for(lambda: m.stats["workers_connected"] == 2, timeout=20)
            warm_up = [wq.Task("sleep $EXTRA_SLEEP; echo $EXTRA_SLEEP", cores=1) for _ in range(2)]
            for t in warm_up:
                m.submit(t)
            assert sorted(t.output.strip() for t in drain(m)) == ["0", "0.4"]  # one on each
            if not per_task:
                m.set_algorithm("time")
            ran_on = []
            for _ in range(4):  # one at a time: both workers idle at each choice
                t = wq.Task("sleep $EXTRA_SLEEP; echo $EXTRA_SLEEP", cores=1)
                if per_task:
                    t.set_algorithm("time")
                m.submit(t)
                [done] = drain(m)
                ran_on.append(done.output.strip())
        finally:
            stop(slow)
            stop(quick)
    assert ran_on == ["0"] * 4


def test_time_without_history_places_like_fcfs():
    from workqueue.scheduling.scheduler import Scheduler
    for queue_algorithm, own in (("time", None), ("fcfs", "time")):
        s = Scheduler(algorithm=queue_algorithm, worker_seconds=lambda w: {"b": 2.0, "c": 0.5}.get(w))
        for name in ("a", "b", "c"):
            s.add_worker(name, dict(ONE_CORE))
        s.submit(0, {"cores": 1, "memory": None, "disk": None, "gpus": None}, algorithm=own)
        [first] = s.schedule(only="a")
        assert first.worker == "c"  # quickest with history, though "a" asked
    s = Scheduler(algorithm="time", worker_seconds=lambda w: None)
    s.add_worker("a", dict(ONE_CORE))
    s.add_worker("b", dict(ONE_CORE))
    s.submit(0, {"cores": 1, "memory": None, "disk": None, "gpus": None})
    assert [a.worker for a in s.schedule()] == ["a"]  # the first worker looked at, as under FCFS


def test_the_cctools_skin_sets_time_and_per_task_algorithms():
    import work_queue
    q = work_queue.WorkQueue(0)
    try:
        q.specify_algorithm(work_queue.WORK_QUEUE_SCHEDULE_TIME)
        t = work_queue.Task("true")
        t.specify_algorithm(work_queue.WORK_QUEUE_SCHEDULE_RAND)
        assert t.algorithm == "random"
        t.specify_algorithm(work_queue.WORK_QUEUE_SCHEDULE_UNSET)
        assert t.algorithm is None
        with pytest.raises(ValueError):
            wq.Task("true").set_algorithm("fastest")
    finally:
        q.shutdown_workers(0)


def test_a_task_that_needs_a_feature_runs_only_on_a_worker_started_with_it():
    """The skin's specify_feature used to be stored and never read: a task asking for a GPU
    feature could run anywhere."""
    import work_queue
    with wq.Manager(port=0) as m:
        m.tune("prefetch", 0)
        plain = start_worker(m.port, "--cores", "1")
        try:
            assert wait_for(lambda: m.stats["workers_connected"] == 1, timeout=20)
            t = work_queue.Task("echo ran")
            t.specify_cores(1)
            t.specify_feature("bigmem")
            m.submit(t)
            m.submit(wq.Task("echo plain", cores=1))
            done = m.wait(30)  # only the plain task: no worker has the feature
            assert done is not None and done.output.strip() == "plain"
            assert wait_for(lambda: m.stats["tasks_unfit"] == 1)
            featured = start_worker(m.port, "--cores", "1", "--feature", "bigmem", "--feature", "ssd")
            try:
                [done] = drain(m, timeout=30)
            finally:
                stop(featured)
        finally:
            stop(plain)
    assert done.output.strip() == "ran" and done.id == t.id


def test_feature_shapes_fit_only_workers_with_every_feature():
    from workqueue.scheduling.scheduler import (
        Needs,
        Scheduler,
        describe_shape,
        request_shape,
    )
    s = Scheduler()
    s.add_worker("plain", dict(ONE_CORE))
    s.add_worker("gpu", dict(ONE_CORE), frozenset({"gpu", "ssd"}))
    s.submit(0, {"cores": 1, "memory": None, "disk": None, "gpus": None}, needs=Needs(frozenset({"gpu"})))
    s.submit(1, {"cores": None, "memory": None, "disk": None, "gpus": None}, needs=Needs(frozenset({"ssd", "nvme"})))
    assert [(a.task_id, a.worker) for a in s.schedule()] == [(0, "gpu")]
    assert [count for _, count in s.unfit_shapes()] == [1]
    assert "features nvme, ssd" in describe_shape(request_shape({}, 0, Needs(frozenset({"ssd", "nvme"}))))


def test_running_time_min_keeps_a_task_off_workers_about_to_end():
    """CCTools' specify_running_time_min against the worker's --wall-time (it was only checked):
    a task that needs 120 s goes to the worker with an hour left, not the one with 60 s."""
    import work_queue
    with wq.Manager(port=0) as m:
        m.tune("prefetch", 0)
        short = start_worker(m.port, "--cores", "1", "--wall-time", "60")
        try:
            assert wait_for(lambda: m.stats["workers_connected"] == 1, timeout=20)
            t = work_queue.Task("echo long-lived")
            t.specify_cores(1)
            t.specify_running_time_min(120)
            m.submit(t)
            m.submit(wq.Task("echo any", cores=1))
            done = m.wait(30)
            assert done is not None and done.output.strip() == "any"
            assert wait_for(lambda: m.stats["tasks_unfit"] == 1)
            long_lived = start_worker(m.port, "--cores", "1", "--wall-time", "3600")
            try:
                done = m.wait(30)
            finally:
                stop(long_lived)
        finally:
            stop(short)
    assert done is not None and done.id == t.id


def test_time_left_is_checked_as_it_shrinks_and_never_stops_a_queued_task():
    from workqueue.scheduling.scheduler import Needs, Scheduler
    s = Scheduler()
    s.add_worker("w", dict(ONE_CORE))
    s.set_time_left("w", 100.0)
    undeclared_cores = {"cores": 1, "memory": None, "disk": None, "gpus": None}
    s.submit(0, undeclared_cores)
    s.submit(1, undeclared_cores, needs=Needs(min_time=50.0))
    s.submit(2, undeclared_cores, needs=Needs(min_time=50.0))
    assert [a.task_id for a in s.schedule(prefetch_depth=lambda t: 2)] == [0, 1, 2]  # 1 and 2 queued
    s.set_time_left("w", 40.0)
    s.finish(0)  # the worker starts its queued task whatever its time left: so do the books
    assert 1 in s.worker_books("w").running
    s.finish(1)
    s.finish(2)
    s.submit(3, undeclared_cores, needs=Needs(min_time=50.0))
    assert s.schedule() == [] and [count for _, count in s.unfit_shapes()] == [1]
