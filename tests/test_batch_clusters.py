"""Workers submitted to real batch systems on this machine: Slurm, and PBS/Torque through Debian's
slurm-wlm-torque on top of it; SGE in its own phase (its qsub and Torque's cannot be installed together).

Run by ci/batch-tests.sh after it brings the cluster up (pytest -m batch); skipped, with the reason,
when no cluster answers."""
import os
import shutil
import subprocess

import pytest

import workqueue as wq
from workqueue import batch

from conftest import drain, wait_for

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
