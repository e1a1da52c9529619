"""The master and real worker processes over real sockets: results, files, bad input, faults."""
import logging
import os
import signal
import subprocess
import sys
import time

import psutil
import pytest
from conftest import dealer, drain, start_worker, stop, wait_for

import workqueue as wq
from workqueue.constants import Result
from workqueue.wire import protocol


def test_exit_status_output_and_outputs_come_back(manager, worker, tmp_path):
    src = tmp_path / "in.txt"
    src.write_text("abc")
    t = wq.Task("cat in.txt > out.txt; echo to-stdout; echo to-stderr >&2; exit 3",
                inputs=[str(src)], outputs=[(str(tmp_path / "result.txt"), "out.txt")], cores=1)
    manager.submit(t)
    (done,) = drain(manager)
    assert done is t
    assert t.result == Result.SUCCESS and t.return_status == 3  # a failing command is still a SUCCESS result
    assert "to-stdout" in t.output and "to-stderr" in t.output
    assert (tmp_path / "result.txt").read_text() == "abc"
    assert t.resources_measured["wall_time"] > 0
    assert not [p for p in os.listdir(tmp_path) if "partial" in p]


def test_executable_inputs_keep_their_run_bit_and_tasks_see_their_allocation(manager, worker, tmp_path):
    script = tmp_path / "script.sh"
    script.write_text("#!/bin/sh\necho cores=$CORES memory=$MEMORY sandbox=${WORK_QUEUE_SANDBOX:+set}\n")
    script.chmod(0o755)
    manager.submit(wq.Task("./script.sh", inputs=[str(script)], cores=1, memory=10))
    (t,) = drain(manager)
    assert t.output.strip() == "cores=1 memory=10 sandbox=set"


def test_missing_input_raises_at_submit_naming_the_file(manager, tmp_path):
    missing = str(tmp_path / "nope.txt")
    with pytest.raises(FileNotFoundError, match="nope.txt"):
        manager.submit(wq.Task("cat nope.txt", inputs=[missing]))
    assert manager.empty()


@pytest.mark.parametrize("remote", ["/etc/passwd", "../escape", "a/../../b"])
def test_remote_names_escaping_the_sandbox_are_refused_at_submit(manager, tmp_path, remote):
    with pytest.raises(ValueError, match="sandbox"):
        wq.Task("true", outputs=[(str(tmp_path / "x"), remote)])


def test_a_missing_output_is_reported_and_the_others_still_arrive(manager, worker, tmp_path):
    t = wq.Task("echo yes > made.txt", outputs=[str(tmp_path / "made.txt"), str(tmp_path / "never.txt")])
    manager.submit(t)
    drain(manager)
    assert t.result == Result.OUTPUT_MISSING
    assert (tmp_path / "made.txt").read_text() == "yes\n"
    assert not (tmp_path / "never.txt").exists()


def test_an_output_symlinked_outside_the_sandbox_is_never_read(manager, worker, tmp_path):
    t = wq.Task("ln -s /etc/passwd out.txt", outputs=[str(tmp_path / "out.txt")])
    manager.submit(t)
    drain(manager)
    assert t.result == Result.OUTPUT_MISSING
    assert not (tmp_path / "out.txt").exists()


def test_garbage_on_the_port_is_dropped_and_logged_while_real_work_continues(manager, worker, caplog):
    stranger = dealer(manager.port)
    with caplog.at_level(logging.WARNING, logger="workqueue.manager"):
        for i in range(200):
            stranger.send_multipart([os.urandom(i % 50 + 1), b"\xc1" * (i % 3)])
        for i in range(20):
            manager.submit(wq.Task(f"echo {i}", cores=1))
        done = drain(manager)
    stranger.close()
    assert sorted(int(t.output) for t in done) == list(range(20))
    assert manager.stats["messages_dropped"] >= 150
    assert any("dropped a message" in r.message for r in caplog.records)
    # a raw TCP client speaking nonsense does not stop the master either
    import socket
    with socket.create_connection(("localhost", manager.port)) as raw:
        raw.sendall(b"GET / HTTP/1.0\r\n\r\n" + os.urandom(4096))
    manager.submit(wq.Task("echo still-serving", cores=1))
    (t,) = drain(manager)
    assert t.output.strip() == "still-serving"


def test_wait_returns_promptly_and_zero_polls(manager, worker):
    assert manager.wait(0) is None
    manager.submit(wq.Task("true", cores=1))
    t0 = time.monotonic()
    assert manager.wait(30) is not None
    # not a timing claim, only that wait did not sit out its timeout
    assert time.monotonic() - t0 < 30


def test_tasks_keep_moving_while_the_user_is_not_waiting(manager, worker):
    for _ in range(5):
        manager.submit(wq.Task("true", cores=1))
    assert wait_for(lambda: manager.stats["tasks_done"] == 5, timeout=20)
    assert len(drain(manager)) == 5


def test_a_killed_worker_s_tasks_run_again_elsewhere(manager, tmp_path):
    first = start_worker(manager.port, "--cores", "1")
    try:
        t = wq.Task("sleep 1; echo done > out.txt", outputs=[str(tmp_path / "out.txt")], cores=1)
        manager.submit(t)
        assert wait_for(lambda: manager.stats["tasks_running"] == 1, timeout=20)
        first.send_signal(signal.SIGKILL)
        first.wait()
        second = start_worker(manager.port, "--cores", "1")
        try:
            (done,) = drain(manager, timeout=40)
        finally:
            stop(second)
    finally:
        stop(first)
    assert done.result == Result.SUCCESS and done.attempts == 2
    assert (tmp_path / "out.txt").read_text() == "done\n"
    assert manager.stats["tasks_requeued"] == 1


def test_a_stalled_worker_is_declared_lost_and_its_task_requeued(manager):
    stalled = start_worker(manager.port, "--cores", "1")
    healthy = None
    try:
        manager.submit(wq.Task("sleep 2; echo ok", cores=1))
        assert wait_for(lambda: manager.stats["tasks_running"] == 1, timeout=20)
        stalled.send_signal(signal.SIGSTOP)
        healthy = start_worker(manager.port, "--cores", "1")
        (t,) = drain(manager, timeout=40)
        assert t.output.strip() == "ok" and t.attempts == 2
        assert manager.stats["workers_lost"] == 1
        stalled.send_signal(signal.SIGCONT)
        # the resumed worker is told to drop its stale task: no second result reaches the user
        time.sleep(3)
        assert manager.wait(0) is None and manager.empty()
    finally:
        stalled.send_signal(signal.SIGCONT)
        stop(stalled)
        if healthy is not None:
            stop(healthy)


def test_a_worker_serves_a_new_master_on_the_same_port():
    first = wq.Manager(port=0, keepalive_interval=0.5, keepalive_timeout=2)
    port = first.port
    worker = start_worker(port, "--cores", "1", "-i", "0.2", "-b", "0.5")
    try:
        first.submit(wq.Task("echo one", cores=1))
        assert drain(first)[0].output.strip() == "one"
        first.close()
        second = wq.Manager(port=port, keepalive_interval=0.5, keepalive_timeout=2)
        try:
            second.submit(wq.Task("echo two", cores=1))
            assert drain(second, timeout=30)[0].output.strip() == "two"
        finally:
            second.close()
    finally:
        stop(worker)


def test_sigterm_leaves_no_task_processes_behind(manager):
    worker = start_worker(manager.port, "--cores", "1")
    manager.submit(wq.Task("sleep 300 & sleep 301; echo never", cores=1))
    assert wait_for(lambda: len(_sleepers_of(worker.pid)) == 2, timeout=20)
    tree = _sleepers_of(worker.pid)
    assert stop(worker) == 0
    assert wait_for(lambda: not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in tree),
                    timeout=10), "task processes outlived their worker"


def _sleepers_of(pid):
    try:
        children = psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    return [p for p in children if p.name() == "sleep"]


def test_cancel_kills_the_running_task(manager, worker):
    t = wq.Task("sleep 300", cores=1)
    tid = manager.submit(t)
    assert wait_for(lambda: manager.stats["tasks_running"] == 1, timeout=20)
    assert wait_for(lambda: len(_sleepers_of(worker.pid)) == 1, timeout=20)
    (sleeper,) = _sleepers_of(worker.pid)
    assert manager.cancel(tid) is t
    assert manager.empty()
    assert wait_for(lambda: not sleeper.is_running() or sleeper.status() == psutil.STATUS_ZOMBIE)


def test_busy_port_raises_a_clear_error(manager):
    with pytest.raises(OSError, match=f"port {manager.port} is already in use"):
        wq.Manager(port=manager.port)


def test_version_mismatch_is_refused_clearly():
    m = wq.Manager(port=0)
    try:
        fake = dealer(m.port)
        frames = protocol.encode("hello", version=999, worker_id="old", resources={"cores": 1})
        fake.send_multipart(frames)
        assert fake.poll(5000)
        reply = protocol.decode(fake.recv_multipart())
        fake.close()
        assert reply.type == "reject" and "protocol version mismatch" in reply["reason"]
    finally:
        m.close()


def _password_file(tmp_path, secret):
    path = tmp_path / f"pw-{secret}"
    path.write_text(secret + "\n")
    return str(path)


def test_password_right_wrong_and_missing(tmp_path):
    m = wq.Manager(port=0, password="s3cret")
    try:
        good = start_worker(m.port, "--cores", "1", "-P", _password_file(tmp_path, "s3cret"))
        m.submit(wq.Task("echo authenticated", cores=1))
        assert drain(m)[0].output.strip() == "authenticated"
        stop(good)
        for args in (["-P", _password_file(tmp_path, "wrong")], []):
            bad = subprocess.run([sys.executable, "-m", "workqueue.worker", "localhost", str(m.port), "-t", "20", *args],
                                 capture_output=True, text=True, timeout=30)
            assert bad.returncode != 0
            assert "authentication failed" in bad.stderr
        assert m.stats["workers_rejected"] >= 1
    finally:
        m.close()


def test_a_worker_with_a_password_refuses_a_master_without_one(manager, tmp_path):
    bad = subprocess.run([sys.executable, "-m", "workqueue.worker", "localhost", str(manager.port), "-t", "20",
                          "-P", _password_file(tmp_path, "x")], capture_output=True, text=True, timeout=30)
    assert bad.returncode != 0 and "authentication failed" in bad.stderr


def test_idle_timeout_makes_the_worker_exit(manager):
    worker = start_worker(manager.port, "--cores", "1", "-t", "1")
    assert worker.wait(20) == 0


def test_buffers_and_cached_inputs_are_sent_once(manager, worker, tmp_path):
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(3 << 20))
    for i in range(4):
        t = wq.Task("wc -c < big.bin; cat note", cores=1, inputs=[wq.File(str(big), cache=True)])
        t.add_input(wq.File(None, "note", data=f"note {i}".encode()))
        manager.submit(t)
    done = drain(manager)
    assert {t.output.split()[0] for t in done} == {str(3 << 20)}
    assert sorted(t.output.split("\n")[1] for t in done) == [f"note {i}" for i in range(4)]
    assert manager.stats["bytes_sent"] < 2 * (3 << 20)
    assert manager.stats["cache_hits"] >= 1


def test_status_answers_over_the_port(manager, worker):
    from workqueue.status import query
    manager.submit(wq.Task("sleep 2", cores=1))
    assert wait_for(lambda: manager.stats["tasks_running"] == 1, timeout=20)
    summary = query("localhost", manager.port, "queue")
    assert summary["workers_connected"] == 1 and summary["tasks_running"] == 1
    (row,) = query("localhost", manager.port, "tasks")
    assert row["state"] == "RUNNING" and row["command"] == "sleep 2"
    (w,) = query("localhost", manager.port, "workers")
    assert w["resources"]["cores"] == 2 and w["running"] == 1
    drain(manager)
    with pytest.raises(TimeoutError):
        query("localhost", 1, "queue", timeout=0.5)


def test_shutdown_workers_makes_idle_workers_exit(manager):
    workers = [start_worker(manager.port, "--cores", "1") for _ in range(2)]
    try:
        assert wait_for(lambda: manager.stats["workers_connected"] == 2, timeout=20)
        manager.shutdown_workers(0)
        assert [w.wait(20) for w in workers] == [0, 0]
    finally:
        for w in workers:
            stop(w)
