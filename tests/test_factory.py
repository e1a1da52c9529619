"""The worker factory with the local batch type: real master, real worker processes."""
import os
import signal
import subprocess
import sys

import psutil

import workqueue as wq
import workqueue.status
from workqueue.constants import Result
from workqueue.factory import Factory

from conftest import wait_for


def _queue(manager):
    return workqueue.status.query("localhost", manager.port, "queue")


def _gone(pids):
    return all(not psutil.pid_exists(int(p)) or psutil.Process(int(p)).status() == psutil.STATUS_ZOMBIE
               for p in pids)


def test_scales_up_completes_scales_down_and_stops(manager):
    factory = Factory(batch_type="local", manager_host_port=f"localhost:{manager.port}")
    factory.min_workers, factory.max_workers, factory.cores, factory.timeout = 1, 3, 1, 60
    for i in range(5):
        manager.submit(wq.Task(f"sleep 0.5; echo {i}", cores=1))
    assert wait_for(lambda: _queue(manager)["tasks_waiting"] == 5)

    assert factory.step() == 3  # five tasks waiting, at most three workers
    assert len(factory.jobs) == 3
    assert wait_for(lambda: _queue(manager)["workers_connected"] == 3, 15)
    assert factory.step() == 3 and len(factory.jobs) == 3  # nothing more to submit

    done = [manager.wait(15) for _ in range(5)]
    assert all(t is not None and t.result == Result.SUCCESS and t.return_status == 0 for t in done)
    assert wait_for(lambda: _queue(manager)["tasks_running"] == 0 and _queue(manager)["workers_idle"] == 3)

    first = list(factory.jobs)
    assert factory.step() == 1  # drained: back to min_workers
    assert len(factory.jobs) == 1
    assert wait_for(lambda: _queue(manager)["workers_connected"] == 1, 15)
    assert _gone(set(first) - set(factory.jobs))

    factory.stop()
    assert factory.jobs == {}
    assert _gone(first)
    assert wait_for(lambda: _queue(manager)["workers_connected"] == 0, 15)


def test_forgets_finished_jobs(manager):
    factory = Factory("local", f"localhost:{manager.port}", min_workers=2, max_workers=2, timeout=60)
    factory.step()
    assert wait_for(lambda: _queue(manager)["workers_connected"] == 2, 15)
    victim = next(iter(factory.jobs))
    os.kill(int(victim), signal.SIGKILL)
    assert wait_for(lambda: factory.system.states([victim])[victim] == "done")
    factory.step()  # forgets the dead one, starts a replacement
    assert victim not in factory.jobs and len(factory.jobs) == 2
    assert wait_for(lambda: _queue(manager)["workers_connected"] == 2, 15)
    factory.stop()


def test_with_block_runs_tasks(manager):
    factory = Factory("local", f"localhost:{manager.port}")
    factory.min_workers, factory.max_workers, factory.cores, factory.timeout = 0, 2, 1, 60
    factory.interval = 0.2
    with factory:
        for i in range(4):
            manager.submit(wq.Task(f"echo {i}", cores=1))
        outputs = sorted(manager.wait(15).output.strip() for _ in range(4))
        submitted = list(factory.jobs)
    assert outputs == ["0", "1", "2", "3"]
    assert factory.jobs == {} and _gone(submitted)


def test_cli_runs_until_sigterm(manager):
    process = subprocess.Popen([sys.executable, "-c", "from workqueue.cli.factory import main; main()",
                                "-T", "local", "localhost", str(manager.port), "-w", "2", "-W", "4",
                                "--cores", "1", "-t", "60", "--interval", "0.2"],
                               stderr=subprocess.PIPE, text=True)
    try:
        assert wait_for(lambda: _queue(manager)["workers_connected"] == 2, 15)
        process.send_signal(signal.SIGTERM)
        assert process.wait(20) == 0
    finally:
        if process.poll() is None:
            process.kill()
    assert "canceled its workers" in process.stderr.read()
    assert wait_for(lambda: _queue(manager)["workers_connected"] == 0, 15)


def test_finds_a_named_master_through_the_catalog(monkeypatch, tmp_path):
    monkeypatch.delenv("CATALOG_HOST", raising=False)
    monkeypatch.setenv("WORKQUEUE_CATALOG_DIR", str(tmp_path))
    manager = wq.Manager(port=0, name="factory-test-master")
    try:
        factory = Factory("local", None, "factory-test-master", min_workers=1, max_workers=2, timeout=60)
        manager.submit(wq.Task("echo named", cores=1))
        assert wait_for(lambda: factory._queue() is not None)
        assert factory.step() == 1
        task = manager.wait(15)
        assert task is not None and task.output.strip() == "named"
        factory.stop()
        assert factory.jobs == {}
    finally:
        manager.close()
