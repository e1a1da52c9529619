"""What each submitter asks of its batch system: scripts and descriptions, checked without daemons."""
import os
import pwd
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
    for name in ("USER", "LOGNAME", "LNAME", "USERNAME"):
        monkeypatch.delenv(name, raising=False)
    path = WorkerSpec(host="h", port=1).job_dir()
    assert os.path.isdir(path)
    assert os.path.basename(path) == f"{pwd.getpwuid(os.getuid()).pw_name}-workers"  # not '0-workers'


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
    result = CliRunner().invoke(submit.sge, ["-S", str(tmp_path), "localhost", "9123", "2"])
    assert result.exit_code != 0 and "qsub not found" in result.output


def test_help_describes_the_command_and_its_arguments():
    for command in (submit.slurm, submit.sge, submit.pbs, submit.torque, submit.condor, submit.ec2):
        text = CliRunner().invoke(command, ["--help"]).output
        assert "HOST PORT NUM_WORKERS" in text and "Submit NUM_WORKERS workers to" in text
        assert "no meaning here" in text or command is submit.ec2


@pytest.mark.parametrize("args, says", [
    (["localhost", "9123", "-1"], "NUM_WORKERS must be at least 1, not -1"),
    (["localhost", "9123", "two"], "NUM_WORKERS must be a whole number"),
    (["localhost", "99999", "2"], "PORT must be between 1 and 65535, not 99999"),
    (["localhost", "0", "2"], "PORT must be between 1 and 65535, not 0"),
    (["localhost", "http", "2"], "PORT must be a whole number, not 'http'"),
    (["no-such-host.invalid", "9123", "2"], "cannot resolve the master's host 'no-such-host.invalid'"),
    (["--no-such-flag", "localhost", "9123", "2"], "No such option"),
])
def test_what_cannot_work_is_refused_before_anything_is_submitted(args, says, tmp_path, monkeypatch):
    submitted = []
    monkeypatch.setattr(submit.batch, "get", lambda name, **kw: submitted.append(name))
    result = CliRunner().invoke(submit.slurm, ["-S", str(tmp_path), *args])
    assert result.exit_code == 2 and says in result.output, result.output
    assert submitted == []


def test_cores_asked_and_offered_are_the_same_number(tmp_path):
    default = batch.get("slurm").script(spec(tmp_path))
    assert "#SBATCH --cpus-per-task=1" in default and "--cores 1 " in default
    whole_node = batch.get("slurm").script(spec(tmp_path, cores=0))
    assert "#SBATCH --exclusive" in whole_node and "--cores" not in whole_node  # the worker takes its grant
    assert "nodes=1:ppn=3" in batch.get("pbs").script(spec(tmp_path, cores=2.5))
    condor = batch.get("condor").description(1, spec(tmp_path, cores=2))
    assert "request_cpus = 2" in condor and "--cores 2 " in condor.replace("'", "")


def test_condor_requirements_class_ads_and_autosize(tmp_path):
    condor = batch.get("condor", requirements=["Memory > 4", "Arch == \"X86_64\""], class_ads=["+Group = 'a'"],
                       autosize=True)
    text = condor.description(2, spec(tmp_path, cores=4))
    assert 'requirements = (Memory > 4) && (Arch == "X86_64")' in text and "+Group = 'a'" in text
    assert "$$([TARGET.Cpus])" in text and "--cores 4" not in text


def test_environment_wrapper_and_worker_binary_reach_the_job(tmp_path):
    text = batch.get("slurm").script(spec(tmp_path, env={"A": "b c"}, wrapper="nice -n 5", worker_binary="/opt/w"))
    assert "export A='b c'" in text and "exec nice -n 5 /opt/w -t" in text
