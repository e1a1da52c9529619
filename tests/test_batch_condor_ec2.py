"""HTCondor through a test double that runs the submit description's jobs here, and EC2 through
moto's server on loopback (instances never boot, so the test starts a worker per instance id)."""
import os
import subprocess

import pytest
from conftest import drain, start_worker, stop, wait_for

import workqueue as wq
from workqueue import batch

DOUBLES = os.path.join(os.path.dirname(__file__), "doubles")


@pytest.fixture
def condor(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", DOUBLES + os.pathsep + os.environ["PATH"])
    monkeypatch.setenv("CONDOR_DOUBLE_STATE", str(tmp_path / "condor-state"))
    return batch.get("condor")


def test_condor_submit_workers_run_real_tasks(manager, condor, tmp_path):
    done = subprocess.run(["condor_submit_workers", "-t", "30", "--cores", "1", "-S", str(tmp_path / "jobs"),
                           "localhost", str(manager.port), "2"], capture_output=True, text=True, timeout=60,
                          env=os.environ)
    assert done.returncode == 0, done.stderr
    job_ids = done.stdout.split(":")[-1].split()
    assert job_ids == ["1.0", "1.1"]
    try:
        assert wait_for(lambda: manager.stats["workers_connected"] == 2, timeout=60)
        for i in range(4):
            manager.submit(wq.Task(f"echo $REQUEST_CPUS-{i}", cores=1))
        outputs = sorted(t.output.strip() for t in drain(manager, timeout=60))
        assert outputs == ["1-0", "1-1", "1-2", "1-3"]
        assert manager.stats["workers_joined"] == 2
        assert set(condor.states(job_ids).values()) == {"running"}
    finally:
        condor.cancel(job_ids)
    assert wait_for(lambda: set(condor.states(job_ids).values()) == {"done"}, timeout=20)


@pytest.fixture
def moto_ec2(monkeypatch):
    moto_server = pytest.importorskip("moto.server")
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    for name, value in (("AWS_ENDPOINT_URL", f"http://{host}:{port}"), ("AWS_ACCESS_KEY_ID", "testing"),
                        ("AWS_SECRET_ACCESS_KEY", "testing"), ("AWS_DEFAULT_REGION", "us-east-1"),
                        ("WORKQUEUE_EC2_IMAGE", "ami-12c6146b")):
        monkeypatch.setenv(name, value)
    yield
    server.stop()


def test_ec2_workers_are_tagged_found_and_terminated(manager, moto_ec2):
    done = subprocess.run(["ec2_submit_workers", "localhost", str(manager.port), "2"], capture_output=True,
                          text=True, timeout=60, env=os.environ)
    assert done.returncode == 0, done.stderr
    ids = done.stdout.split(":")[-1].split()
    assert len(ids) == 2 and all(i.startswith("i-") for i in ids)
    ec2 = batch.get("ec2")
    assert sorted(ec2.find(f"localhost:{manager.port}")) == sorted(ids)
    # moto's instances never boot: play the part of their user-data, one worker per instance id
    workers = [start_worker(manager.port, "--cores", "1") for _ in ids]
    try:
        for _ in range(4):
            manager.submit(wq.Task("echo from-ec2", cores=1))
        assert [t.output.strip() for t in drain(manager)] == ["from-ec2"] * 4
    finally:
        for w in workers:
            stop(w)
    removed = subprocess.run(["ec2_remove_workers", f"localhost:{manager.port}"], capture_output=True, text=True,
                             timeout=60, env=os.environ)
    assert removed.returncode == 0, removed.stderr
    assert ec2.find(f"localhost:{manager.port}") == []
