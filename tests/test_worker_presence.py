"""A worker on a cluster (issue 20), as real worker processes over real sockets on 127.0.0.1: it says
what it does (one INFO line per state change, by default), notices a master that said goodbye or
vanished, counts the time without a master against its idle timeout, says once why it cannot reach
one, and inside a batch job offers what the job was granted."""
import os
import socket
import subprocess
import sys
import time

import zmq
from conftest import stop, wait_for
from test_worker_hardening import FakeMaster

import workqueue as wq
from workqueue.manager.loop import CLOSING
from workqueue.wire import protocol

SLACK = 3.0  # seconds a loaded machine may add to an exit


def start_worker(tmp_path, host, port, *args, env=None):
    """A worker with the default logging (no -d); its stderr goes to a file read by ``log_of``."""
    log = open(tmp_path / f"worker-{len(os.listdir(tmp_path))}.log", "wb")
    process = subprocess.Popen([sys.executable, "-m", "workqueue.worker", host, str(port), "-s", str(tmp_path),
                                *args], stderr=log, env={**os.environ, **(env or {})})
    process.log_path = log.name
    log.close()
    return process


def log_of(process):
    with open(process.log_path) as file:
        return file.read()


def exit_within(process, seconds):
    try:
        return process.wait(seconds)
    except subprocess.TimeoutExpired:
        stop(process)
        raise AssertionError(f"the worker was still running after {seconds} s:\n{log_of(process)}") from None


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_worker_logs_each_state_change_and_exits_its_idle_timeout_after_a_closing_masters_last_task(tmp_path):
    manager = wq.Manager(port=0)
    worker = start_worker(tmp_path, "127.0.0.1", manager.port, "-t", "4", "--cores", "1")
    try:
        manager.submit(wq.Task("echo hi", cores=1))
        task = manager.wait(30)
        last_task = time.monotonic()
        assert task is not None and task.output == "hi\n"
    finally:
        manager.close()
    code = exit_within(worker, 30)
    gone_for = time.monotonic() - last_task
    log = log_of(worker)
    assert code == 0, log
    assert 4 - 0.5 <= gone_for <= 4 + SLACK, f"exited {gone_for:.1f} s after its last task:\n{log}"
    where = f"the master at 127.0.0.1:{manager.port}"
    for line in (f"connecting to {where}", f"connected to {where}, offering cores 1",
                 f"{where} is gone: it said goodbye ({CLOSING})", "reconnecting in 1 s",
                 "connection refused", "exiting: idle for 4 s"):
        assert line in log, f"{line!r} missing from:\n{log}"


def test_a_master_that_vanished_counts_against_the_idle_timeout(tmp_path):
    master = FakeMaster()
    worker = start_worker(tmp_path, "127.0.0.1", master.port, "-t", "6", "--cores", "1")
    try:
        master.welcome()
        master.task(1, command="true")
        master.results(1)
        last_task = time.monotonic()
        time.sleep(3)
    finally:
        master.close()  # no goodbye: the connection just closes, as when a master's process is killed
    code = exit_within(worker, 30)
    gone_for = time.monotonic() - last_task
    log = log_of(worker)
    assert code == 0, log
    assert 6 - 0.5 <= gone_for <= 6 + SLACK, f"exited {gone_for:.1f} s after its last task, not 6:\n{log}"
    assert f"the master at 127.0.0.1:{master.port} is gone: the connection closed" in log
    assert "exiting: idle for 6 s, the last 3 s without a master" in log


def test_a_silent_master_is_given_up_after_its_silence_and_looked_for_again(tmp_path):
    master = FakeMaster()
    worker = start_worker(tmp_path, "127.0.0.1", master.port, "-t", "60")
    try:
        master.welcome(silence=1.0)
        first = master.identity
        assert master.next("hello", timeout=15) is not None, log_of(worker)
        assert master.identity != first
        assert f"the master at 127.0.0.1:{master.port} is gone: silent for 1 s" in log_of(worker)
    finally:
        stop(worker)
        master.close()
    assert "exiting: stopped by SIGTERM" in log_of(worker)


def test_a_bye_from_the_master_is_a_goodbye(tmp_path):
    master = FakeMaster()
    worker = start_worker(tmp_path, "127.0.0.1", master.port, "-t", "60")
    try:
        master.welcome()
        master.send(*protocol.encode("bye", reason="going for lunch"))
        assert master.next("hello", timeout=15) is not None, log_of(worker)
        assert "is gone: it said goodbye (going for lunch)" in log_of(worker)
    finally:
        stop(worker)
        master.close()


def test_an_unknown_host_is_said_once_and_the_worker_gives_up_after_its_timeout(tmp_path):
    started = time.monotonic()
    worker = start_worker(tmp_path, "nosuchhost.invalid", 9123, "-t", "3")
    code = exit_within(worker, 60)
    log = log_of(worker)
    assert code == 1, log
    assert log.count("unknown host 'nosuchhost.invalid'") == 1, log
    assert "exiting: no master reachable for 3 s" in log
    assert time.monotonic() - started < 3 + 10


def test_a_refused_connection_is_said_once_between_reconnections(tmp_path):
    worker = start_worker(tmp_path, "127.0.0.1", free_port(), "-t", "4")
    code = exit_within(worker, 60)
    log = log_of(worker)
    assert code == 1, log
    assert log.count("connection refused") == 1, log
    assert log.count("connecting to the master") == 1, log
    assert log.count("reconnecting in") >= 2, log


def test_a_port_out_of_range_ends_the_worker_at_once(tmp_path):
    worker = start_worker(tmp_path, "127.0.0.1", 99999, "-t", "60")
    assert exit_within(worker, 20) != 0
    assert "99999" in log_of(worker)


def test_a_worker_in_a_slurm_job_offers_what_the_job_was_granted_whatever_it_was_told(tmp_path):
    job = {"SLURM_JOB_ID": "77", "SLURM_CPUS_ON_NODE": "1", "SLURM_MEM_PER_NODE": "300"}
    manager = wq.Manager(port=0)
    worker = start_worker(tmp_path, "127.0.0.1", manager.port, "-t", "60", "--cores", "2", env=job)
    try:
        for _ in range(2):
            manager.submit(wq.Task("sleep 1", cores=1))
        done = [manager.wait(30) for _ in range(2)]
        assert all(t is not None and t.return_status == 0 for t in done)
        spans = sorted((t.resources_measured["start"], t.resources_measured["end"]) for t in done)
        assert spans[0][1] <= spans[1][0], f"two tasks at once on a job granted one CPU: {spans}"
        assert wait_for(lambda: manager.stats["total_cores"] == 1)
    finally:
        stop(worker)
        manager.close()
    log = log_of(worker)
    assert "--cores asks for 2 core(s), more than the 1 this job was granted (SLURM_CPUS_ON_NODE=1): offering 1" in log
    assert "Slurm job 77" in log and "300 MB of memory (SLURM_MEM_PER_NODE=300)" in log


def test_debug_flags_still_show_debug_lines(tmp_path):
    worker = start_worker(tmp_path, "127.0.0.1", free_port(), "-t", "2", "-d", "all")
    exit_within(worker, 60)
    assert "DEBUG" in log_of(worker)


def test_an_encrypting_worker_refused_by_a_plain_master_says_why(tmp_path):
    """A plain master and a worker that asks for CURVE: the handshake fails, said once."""
    from workqueue.wire import curve
    server_public = tmp_path / "master.key"
    curve.keypair(str(tmp_path / "master.key_secret"))
    assert server_public.exists()
    router = zmq.Context.instance().socket(zmq.ROUTER)
    router.setsockopt(zmq.LINGER, 0)
    port = router.bind_to_random_port("tcp://127.0.0.1")
    try:
        worker = start_worker(tmp_path, "127.0.0.1", port, "-t", "3", "--curve-server-key", str(server_public))
        code = exit_within(worker, 60)
    finally:
        router.close(0)
    assert code != 0
    log = log_of(worker)
    assert "authentication failed" in log or "handshake failed" in log, log


def test_a_plain_worker_at_an_encrypting_master_says_once_that_the_handshake_failed(tmp_path):
    from workqueue.wire import curve
    router = zmq.Context.instance().socket(zmq.ROUTER)
    router.setsockopt(zmq.LINGER, 0)
    curve.serve(router, str(tmp_path / "master.key_secret"))
    port = router.bind_to_random_port("tcp://127.0.0.1")
    try:
        worker = start_worker(tmp_path, "127.0.0.1", port, "-t", "3")
        code = exit_within(worker, 60)
    finally:
        router.close(0)
    log = log_of(worker)
    assert code == 1, log
    assert log.count("handshake failed: does the master use CURVE (--curve-server-key)?") == 1, log


def test_local_workers_are_quiet_but_for_warnings(tmp_path):
    """Workers started from Python (local_workers, workqueue run, the Executor) share the terminal
    of the program that started them: no state-change lines there."""
    log_path = tmp_path / "workers.err"
    with open(log_path, "wb") as log_file, wq.Manager(port=0) as m, \
            wq.local_workers(1, m, stderr=log_file):
        m.submit(wq.Task("echo quiet"))
        assert m.wait(30).output.strip() == "quiet"
    assert "connecting" not in log_path.read_text() and "connected" not in log_path.read_text()


def test_a_worker_stopped_by_sigterm_says_goodbye_and_its_task_runs_again_at_once():
    """A batch system ends a job with SIGTERM: the worker says bye, so the master puts its task
    back at once rather than after its keepalive timeout (here 60 s, longer than the wait below)."""
    from conftest import start_worker
    with wq.Manager(port=0, keepalive_interval=30, keepalive_timeout=60) as m:
        worker = start_worker(m.port, "--cores", "1")
        try:
            m.submit(wq.Task("sleep 60", cores=1))
            assert wait_for(lambda: m.stats["tasks_running"] == 1, timeout=30)
            worker.terminate()
            assert worker.wait(20) == 0
            assert wait_for(lambda: m.stats["workers_connected"] == 0 and m.stats["tasks_requeued"] == 1, timeout=10)
            assert m.stats["tasks_waiting"] == 1
        finally:
            stop(worker)


def test_a_worker_leaves_at_the_end_of_its_wall_time_and_its_task_runs_again():
    from conftest import start_worker
    with wq.Manager(port=0, keepalive_interval=30, keepalive_timeout=60) as m:
        worker = start_worker(m.port, "--cores", "1", "--wall-time", "3")
        try:
            m.submit(wq.Task("sleep 60", cores=1))
            assert wait_for(lambda: m.stats["tasks_running"] == 1, timeout=30)
            assert worker.wait(30) == 0
            assert wait_for(lambda: m.stats["tasks_requeued"] == 1 and m.stats["workers_connected"] == 0, timeout=10)
        finally:
            stop(worker)


def test_a_worker_with_parent_death_exits_when_its_parent_does(tmp_path):
    import psutil
    with wq.Manager(port=0) as m:
        parent = subprocess.run(
            ["sh", "-c", f"{sys.executable} -m workqueue.worker localhost {m.port} -t 60 --parent-death "
                         f"2>/dev/null & echo $!; sleep 2"], capture_output=True, text=True, timeout=30)
        pid = int(parent.stdout.split()[0])
        assert wait_for(lambda: not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE,
                        timeout=15), "the orphaned worker should have exited"
