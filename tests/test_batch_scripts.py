"""What each submitter asks of its batch system: scripts and descriptions, checked without daemons."""
import os
import sys

import pytest
from click.testing import CliRunner

from workqueue import batch
from workqueue.batch import WorkerSpec
from workqueue.cli import submit


def spec(tmp_path, **kw):
    return WorkerSpec(host="head", port=9123, workdir=str(tmp_path), **kw)


def test_the_worker_comes_from_this_installation_and_passes_options_through(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pw").write_text("x")
    command = WorkerSpec(host="head", port=9123, timeout=60, cores=2, memory=1000, disk=500, password_file="pw",
                         extra_worker_options="--single-shot").worker_command()
    assert command[:3] == [sys.executable, "-m", "workqueue.worker"]
    assert command[-2:] == ["head", "9123"]
    assert "--single-shot" in command and ["-t", "60"] == command[3:5]
    assert command[command.index("-P") + 1] == str(tmp_path / "pw")  # relative path made absolute
    assert ["-M", "proj"] == WorkerSpec(manager_name="proj").worker_command()[-2:]


def test_job_dir_works_without_user(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("USER", raising=False)
    monkeypatch.delenv("LOGNAME", raising=False)
    assert os.path.isdir(WorkerSpec(host="h", port=1).job_dir())


def test_slurm_asks_for_cores_and_memory_per_task_never_exclusive(tmp_path):
    script = batch.get("slurm").script(spec(tmp_path, cores=4, memory=2000))
    assert "#SBATCH --cpus-per-task=4" in script and "#SBATCH --mem=2000M" in script
    assert "#SBATCH --ntasks=1" in script and "exclusive" not in script
    assert "workqueue.worker" in script


def test_sge_pbs_torque_scripts(tmp_path):
    sge = batch.get("sge").script(spec(tmp_path, memory=100))
    assert "#$ -l h_vmem=100M" in sge
    pbs = batch.get("pbs").script(spec(tmp_path, cores=2, memory=300))
    assert "#PBS -l nodes=1:ppn=2,mem=300mb" in pbs


def test_condor_description_requests_resources_and_queues_n(tmp_path):
    text = batch.get("condor").description(5, spec(tmp_path, cores=2, memory=1000, disk=10))
    assert "request_cpus = 2" in text and "request_memory = 1000" in text and "request_disk = 10240" in text
    assert text.rstrip().endswith("queue 5")


def test_ec2_user_data_installs_and_starts_a_worker(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKQUEUE_EC2_INSTALL", "pip install ./workqueue.whl")
    data = batch.get("ec2", client=object()).user_data(spec(tmp_path, cores=1))
    assert data.splitlines()[1] == "pip install ./workqueue.whl"
    assert data.splitlines()[2].startswith("exec work_queue_worker -t") and data.rstrip().endswith("head 9123")


def test_unknown_system_and_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="unknown batch system"):
        batch.get("lsf")
    result = CliRunner().invoke(submit.slurm, ["head", "9123"])
    assert result.exit_code != 0 and "HOST PORT NUM_WORKERS" in result.output
    result = CliRunner().invoke(submit.slurm, ["head", "9123", "0"])
    assert result.exit_code != 0 and "at least 1" in result.output


def test_a_missing_batch_system_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    result = CliRunner().invoke(submit.sge, ["-s", str(tmp_path), "head", "9123", "2"])
    assert result.exit_code != 0 and "qsub not found" in result.output
