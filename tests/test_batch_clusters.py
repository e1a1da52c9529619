"""Workers submitted to real batch systems on this machine: Slurm, and PBS/Torque through Debian's
slurm-wlm-torque on top of it; SGE in its own phase (its qsub and Torque's cannot be installed together).

Run by ci/batch-tests.sh after it brings the cluster up (pytest -m batch); skipped, with the reason,
when no cluster answers."""
import os
import shutil
import subprocess

import pytest
from conftest import drain, wait_for

import workqueue as wq
import workqueue.status
from workqueue import batch
from workqueue.factory import Factory

pytestmark = pytest.mark.batch


def _slurm_up():
    if shutil.which("sinfo") is None:
        return "Slurm is not installed (run ci/slurm-up.sh)"
    out = subprocess.run(["sinfo", "-h", "-N", "-o", "%t"], capture_output=True, text=True)
    if out.returncode != 0 or not any(s in out.stdout for s in ("idle", "mix", "alloc", "comp")):
        return f"no Slurm node is up (run ci/slurm-up.sh): {out.stderr.strip() or out.stdout.strip()}"
    return None


def _qsub_flavour():
    qsub = shutil.which("qsub")
    if qsub is None:
        return None
    with open(os.path.realpath(qsub), "rb") as f:
        head = f.read(200)
    return "torque-over-slurm" if head.startswith(b"#!") and b"perl" in head else "sge"


def _submit(command, tmp_path, *extra):
    done = subprocess.run([command, "-t", "30", "--cores", "1", "--memory", "200", "-S", str(tmp_path / "jobs"), *extra],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.split(":")[-1].split()


@pytest.mark.parametrize("system, marker", [("slurm", "SLURM_JOB_ID"), ("pbs", "SLURM_JOB_ID"),
                                            ("torque", "SLURM_JOB_ID")])
def test_workers_submitted_to_slurm_and_pbs_run_real_tasks(manager, tmp_path, system, marker):
    reason = _slurm_up()
    if reason:
        pytest.skip(reason)
    if system != "slurm" and _qsub_flavour() != "torque-over-slurm":
        pytest.skip("PBS/Torque are tested through slurm-wlm-torque's qsub, which is not installed")
    job_ids = _submit(f"{system}_submit_workers", tmp_path, "localhost", str(manager.port), "2")
    assert len(job_ids) == 2
    try:
        assert wait_for(lambda: manager.stats["workers_connected"] == 2, timeout=120)
        for _ in range(4):
            manager.submit(wq.Task(f"echo ${marker}", cores=1))
        done = drain(manager, timeout=120)
        assert all(t.output.strip().isdigit() for t in done), [t.output for t in done]
        assert manager.stats["workers_joined"] == 2
    finally:
        batch.get(system).cancel(job_ids)
    assert wait_for(lambda: set(batch.get(system).states(job_ids).values()) == {"done"}, timeout=30)


def test_workers_submitted_to_sge_run_real_tasks(manager, tmp_path):
    if _qsub_flavour() != "sge" or shutil.which("qconf") is None:
        pytest.skip("Grid Engine is not installed here (ci/sge-up.sh brings it up in its own phase)")
    job_ids = _submit("sge_submit_workers", tmp_path, "localhost", str(manager.port), "2")
    try:
        for _ in range(4):
            manager.submit(wq.Task("echo $JOB_ID", cores=1))
        done = drain(manager, timeout=180)
        assert all(t.output.strip().isdigit() for t in done)
    finally:
        batch.get("sge").cancel(job_ids)


def _forgotten_by_slurm(job_id):
    """True once squeue no longer knows the job's array (its record purged, MinJobAge after it ended)."""
    done = subprocess.run(["squeue", "-h", "-j", job_id.split("_")[0]], capture_output=True, text=True)
    return done.returncode != 0 and "Invalid job id" in done.stderr


def test_factory_restores_its_minimum_after_slurm_forgets_its_jobs(manager, tmp_path):
    """As with a factory paused (SIGSTOP) for longer than MinJobAge: its job ends and Slurm forgets it
    before the factory looks again; the factory's next cycles see it done and submit a new one."""
    reason = _slurm_up()
    if reason:
        pytest.skip(reason)
    factory = Factory("slurm", f"localhost:{manager.port}", min_workers=1, max_workers=1, timeout=60,
                      memory=200, workdir=str(tmp_path / "jobs"))
    try:
        factory.step()
        (first,) = factory.jobs
        assert wait_for(lambda: factory.system.states([first]).get(first) == "running", timeout=60)
        subprocess.run(["scancel", first], check=True)  # the job ends while the factory does not look
        assert wait_for(lambda: _forgotten_by_slurm(first), timeout=180, interval=1), \
            "slurm did not purge the job (is MinJobAge low in slurm.conf? ci/slurm-up.sh sets 10 s)"
        for _ in range(2):
            factory.step()
        assert len(factory.jobs) == 1 and first not in factory.jobs
        (second,) = factory.jobs
        assert wait_for(lambda: factory.system.states([second]).get(second) in ("pending", "running"), timeout=30)
    finally:
        factory.stop()


def test_a_worker_submitted_without_cores_runs_one_task_at_a_time(manager, tmp_path):
    """Slurm grants the job 1 CPU (CCTools' default of one core): the worker offers 1 core, so of two
    one-core tasks it never runs both at once."""
    reason = _slurm_up()
    if reason:
        pytest.skip(reason)
    done = subprocess.run(["slurm_submit_workers", "-t", "30", "-S", str(tmp_path / "jobs"), "localhost",
                           str(manager.port), "1"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    job_ids = done.stdout.split(":")[-1].split()
    try:
        out = subprocess.run(["squeue", "-h", "-r", "-o", "%C", "-j", job_ids[0].split("_")[0]],
                             capture_output=True, text=True).stdout.split()
        assert out == ["1"], out
        assert wait_for(lambda: manager.stats["workers_connected"] == 1, timeout=120)
        workers = wq.status.query("localhost", manager.port, "workers")
        assert workers[0]["resources"]["cores"] == 1
        for _ in range(2):
            manager.submit(wq.Task("sleep 2", cores=1))
        assert wait_for(lambda: manager.stats["tasks_running"] >= 1, timeout=30)
        peak = 0
        while not manager.empty():
            peak = max(peak, manager.stats["tasks_running"])
            manager.wait(0.2)
        assert peak == 1
    finally:
        batch.get("slurm").cancel(job_ids)


def _offered_cores_when_told_two(manager, tmp_path, command, system):
    """Submit one worker told ``--cores 2`` (through -E) to a job granted one CPU or slot; return the
    cores it offers the master."""
    done = subprocess.run([command, "-t", "30", "-S", str(tmp_path / "jobs"), "-E", "--cores 2",
                           "localhost", str(manager.port), "1"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    job_ids = done.stdout.split(":")[-1].split()
    try:
        assert wait_for(lambda: manager.stats["workers_connected"] == 1, timeout=180)
        return wq.status.query("localhost", manager.port, "workers")[0]["resources"]["cores"]
    finally:
        batch.get(system).cancel(job_ids)


def test_a_worker_told_more_cores_than_its_slurm_job_has_offers_the_grant(manager, tmp_path):
    """The worker reads SLURM_CPUS_ON_NODE: told --cores 2 in a job of 1 CPU, it offers 1."""
    reason = _slurm_up()
    if reason:
        pytest.skip(reason)
    assert _offered_cores_when_told_two(manager, tmp_path, "slurm_submit_workers", "slurm") == 1


def test_a_worker_told_more_cores_than_its_sge_job_has_offers_the_grant(manager, tmp_path):
    """The worker reads NSLOTS: told --cores 2 in a job of 1 slot, it offers 1."""
    if _qsub_flavour() != "sge" or shutil.which("qconf") is None:
        pytest.skip("Grid Engine is not installed here (ci/sge-up.sh brings it up in its own phase)")
    assert _offered_cores_when_told_two(manager, tmp_path, "sge_submit_workers", "sge") == 1
