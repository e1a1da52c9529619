"""The worker factory with the local batch type: real master, real worker processes."""
import json
import os
import signal
import subprocess
import sys

import psutil
from conftest import wait_for

import workqueue as wq
import workqueue.status
from workqueue.constants import Result
from workqueue.factory import Factory


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


# -- a factory that never sticks ---------------------------------------------------------------
class ScriptedSystem:
    """A batch system whose jobs' states the test sets; states() may be made to fail."""

    name = "scripted"

    def __init__(self):
        self.known, self.failing, self.submitted, self.canceled = {}, None, [], []

    def submit(self, count, spec):
        ids = [f"j{len(self.submitted) + i}" for i in range(count)]
        self.submitted += ids
        self.known.update((i, "running") for i in ids)
        self.specs = getattr(self, "specs", []) + [spec]
        return ids

    def states(self, job_ids):
        if self.failing:
            raise self.failing
        return {j: self.known.get(j, "done") for j in job_ids}

    def cancel(self, job_ids):
        self.canceled += list(job_ids)


def _unused_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _scripted(manager_port, **options):
    factory = Factory("local", f"localhost:{manager_port}", query_timeout=0.3, **options)
    factory.system = ScriptedSystem()
    return factory


def test_a_job_the_batch_system_forgot_is_replaced_in_the_next_cycle(manager):
    factory = _scripted(manager.port, min_workers=2, max_workers=2)
    factory.step()
    first = list(factory.jobs)
    del factory.system.known[first[0]]  # purged: the system no longer knows it
    factory.step()
    assert first[0] not in factory.jobs and len(factory.jobs) == 2


def test_a_failing_state_query_keeps_the_jobs_and_logs_once(manager, caplog):
    import workqueue.batch
    factory = _scripted(manager.port, min_workers=2, max_workers=2)
    factory.step()
    factory.system.failing = workqueue.batch.BatchError("squeue failed (1): Unable to contact slurm controller")
    for _ in range(3):
        assert factory.step() == 2  # the cycle goes on
    assert len(factory.jobs) == 2 and factory.system.submitted == list(factory.jobs)
    assert caplog.text.count("cannot learn the state of its jobs") == 1
    factory.system.failing = None
    factory.step()
    assert caplog.text.count("learns the state of its jobs again") == 1


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_backs_off_while_the_master_is_away_and_says_why_once(monkeypatch, caplog):
    import workqueue.factory
    clock = Clock()
    monkeypatch.setattr(workqueue.factory.time, "monotonic", clock)
    factory = _scripted(_unused_port(), min_workers=2, max_workers=5, interval=5)
    factory.step()
    assert len(factory.system.submitted) == 2  # the minimum, once, in case the master comes up
    gaps, last = [], clock.now
    for _ in range(60):  # its workers keep ending (nobody to serve): five minutes of cycles 5 s apart
        factory.system.known.clear()
        clock.now += 5
        before = len(factory.system.submitted)
        factory.step()
        if len(factory.system.submitted) > before:
            gaps.append(clock.now - last)
            last = clock.now
    assert gaps == [5, 10, 20, 40, 80]  # not 60 submissions: 5 s apart, doubling each time (up to 300 s)
    assert caplog.text.count("does not answer") == 1 and "back off" in caplog.text


def test_backoff_doubles_up_to_its_longest_and_resets():
    from workqueue.factory import Backoff
    backoff = Backoff(5, longest=30)
    assert [backoff.wait(0) for _ in range(5)] == [5, 10, 20, 30, 30]
    assert not backoff.ready(29) and backoff.ready(30)
    backoff.reset()
    assert backoff.ready(0) and backoff.wait(0) == 5


def test_workers_per_cycle_and_tasks_per_worker(manager):
    for i in range(8):
        manager.submit(wq.Task("true", cores=1))
    assert wait_for(lambda: _queue(manager)["tasks_waiting"] == 8)
    factory = _scripted(manager.port, min_workers=0, max_workers=10, workers_per_cycle=3, cores=2)
    assert factory.step() == 4  # eight tasks, two cores (so two tasks) per worker
    assert len(factory.jobs) == 3  # at most three a cycle
    factory.step()
    assert len(factory.jobs) == 4
    assert [s.requested_cores() for s in factory.system.specs] == [2, 2]
    assert factory.system.specs[0].worker_arguments()[2:4] == ["--cores", "2"]


def test_defaults_to_one_core_per_worker_asked_and_offered():
    spec = Factory("local", "localhost:9123").spec()
    assert spec.cores == 1 and spec.worker_arguments()[2:4] == ["--cores", "1"]


def test_config_file_is_read_again_when_it_changes(manager, tmp_path, caplog):
    config = tmp_path / "factory.json"
    config.write_text(json.dumps({"min-workers": 2, "max-workers": 3, "cores": 2, "timeout": 60}))
    factory = _scripted(manager.port, config_file=str(config))
    factory.step()
    assert (factory.min_workers, factory.max_workers, factory.cores, factory.timeout) == (2, 3, 2, 60)
    assert len(factory.jobs) == 2
    config.write_text(json.dumps({"min-workers": 3, "max-workers": 3}))
    os.utime(config, (1, 1))
    factory.step()
    assert factory.min_workers == 3 and len(factory.jobs) == 3
    config.write_text("{not json")
    for _ in range(2):
        factory.step()
    assert factory.min_workers == 3 and caplog.text.count("keeping the previous settings") == 1


def test_cli_cancels_its_workers_on_sighup(manager):
    process = subprocess.Popen([sys.executable, "-c", "from workqueue.cli.factory import main; main()",
                                "-T", "local", "localhost", str(manager.port), "-w", "2", "-W", "2",
                                "-t", "60", "--interval", "0.2"], stderr=subprocess.PIPE, text=True)
    try:
        parent = psutil.Process(process.pid)
        assert wait_for(lambda: len(parent.children()) == 2, 15)
        workers = [child.pid for child in parent.children()]
        process.send_signal(signal.SIGHUP)  # the terminal it ran in was closed
        assert process.wait(20) == 0
    finally:
        if process.poll() is None:
            process.kill()
    assert "canceled its workers, exiting (SIGHUP)" in process.stderr.read()
    assert wait_for(lambda: _gone(workers), 10)
