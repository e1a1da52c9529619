"""Every back end's states() with jobs the batch system has forgotten or cannot tell about, through fake
squeue/qstat/condor_q commands on PATH and a fake EC2 client: a forgotten job is done, a failing query
leaves its jobs out (unknown), and never raises."""
import json
import os
import stat
import sys
import textwrap

import pytest

from workqueue import batch

SQUEUE = """
import json, os, sys
# squeue -h -r -o "%i %T" -j A,B: as Slurm 22.05 does, one id it does not know fails the query
# (exit 1, 'Invalid job id specified'); several list those it knows. FAKE_STRICT: several fail too.
jobs = json.loads(os.environ.get("FAKE_JOBS", "{}"))
if os.environ.get("FAKE_DOWN"):
    sys.exit("squeue: error: Unable to contact slurm controller (connect failure)")
asked = sys.argv[sys.argv.index("-j") + 1].split(",")
known = [a for a in asked if any(j.split("_")[0] == a for j in jobs)]
if len(known) < len(asked) and (len(asked) == 1 or os.environ.get("FAKE_STRICT")):
    sys.exit("slurm_load_jobs error: Invalid job id specified")
for job, state in jobs.items():
    if job.split("_")[0] in asked:
        print(job, state)
"""

QSTAT = """
import json, os, sys
if os.environ.get("FAKE_DOWN"):
    sys.exit("error: commlib error: got select error (Connection refused)")
print(os.environ["FAKE_QSTAT"])
"""


def fake_command(folder, name, body):
    path = folder / name
    path.write_text(f"#!{sys.executable}\n" + textwrap.dedent(body))
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


@pytest.fixture
def fakes(tmp_path, monkeypatch):
    fake_command(tmp_path, "squeue", SQUEUE)
    fake_command(tmp_path, "qstat", QSTAT)
    fake_command(tmp_path, "condor_q", 'import os; print(os.environ["FAKE_CONDOR_Q"])')
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    return monkeypatch


def test_slurm_forgotten_array_is_done_and_the_others_keep_their_state(fakes):
    fakes.setenv("FAKE_JOBS", json.dumps({"7_0": "RUNNING", "7_1": "PENDING", "9_0": "SUSPENDED"}))
    slurm = batch.get("slurm")
    assert slurm.states(["5_0"]) == {"5_0": "done"}  # alone: squeue exits 1, Invalid job id
    assert slurm.states(["5_0", "7_0", "7_1", "9_0", "7_2"]) == {
        "5_0": "done", "7_0": "running", "7_1": "pending", "9_0": "running", "7_2": "done"}
    fakes.setenv("FAKE_STRICT", "1")  # a squeue that fails a list naming one forgotten array
    assert slurm.states(["5_0", "7_0", "7_1"]) == {"5_0": "done", "7_0": "running", "7_1": "pending"}


def test_slurm_that_cannot_answer_leaves_the_jobs_unknown(fakes, caplog):
    fakes.setenv("FAKE_DOWN", "1")
    assert batch.get("slurm").states(["7_0", "8_0"]) == {}
    assert "unknown this time" in caplog.text


def test_slurm_ended_states_are_done():
    from workqueue.batch.slurm import state_of
    assert [state_of(s) for s in ("COMPLETED", "CANCELLED", "FAILED", "TIMEOUT", None)] == ["done"] * 5
    assert state_of("REQUEUED") == "pending" and state_of("COMPLETING") == "running"


SGE_QSTAT = """job-ID  prior   name       user         state submit/start at     queue                          slots ja-task-ID
-----------------------------------------------------------------------------------------------------------------
     12 0.55500 wq-worker  root         r     01/01/2026 10:00:00 all.q@vm                           1 1
     12 0.00000 wq-worker  root         qw    01/01/2026 10:00:00                                    1 2,3
     13 0.00000 wq-worker  root         Eqw   01/01/2026 10:00:00                                    1 1"""


def test_sge_forgotten_tasks_are_done_and_a_failed_qstat_leaves_them_unknown(fakes):
    fakes.setenv("FAKE_QSTAT", SGE_QSTAT)
    sge = batch.get("sge")
    assert sge.states(["12.1", "12.2", "12.3", "12.4", "11.1", "13.1"]) == {
        "12.1": "running", "12.2": "pending", "12.3": "pending", "12.4": "done", "11.1": "done", "13.1": "done"}
    fakes.setenv("FAKE_DOWN", "1")
    assert sge.states(["12.1"]) == {}


def test_pbs_forgotten_jobs_are_done_and_a_failed_qstat_leaves_them_unknown(fakes):
    fakes.setenv("FAKE_QSTAT", "Job id  Name  User  Time Use S Queue\n------\n"
                               "21.head  wq-worker  root  0  R  batch\n22.head  wq-worker  root  0  Q  batch")
    pbs = batch.get("pbs")
    assert pbs.states(["21.head", "22.head", "20.head"]) == {"21.head": "running", "22.head": "pending",
                                                              "20.head": "done"}
    fakes.setenv("FAKE_DOWN", "1")
    assert pbs.states(["21.head"]) == {}


def test_condor_job_status_codes(fakes):
    fakes.setenv("FAKE_CONDOR_Q", "3 0 1\n3 1 2\n3 2 5\n3 3 6\n3 4 7\n3 5 4")
    states = batch.get("condor").states([f"3.{i}" for i in range(7)])
    assert states == {"3.0": "pending", "3.1": "running", "3.2": "pending", "3.3": "running",
                      "3.4": "running", "3.5": "done", "3.6": "done"}


class FakeEC2:
    """describe_instances as EC2 answers it: by filter, only the instances it still knows."""

    def __init__(self, known, fail=False):
        self.known, self.fail, self.calls = known, fail, []

    def describe_instances(self, **kwargs):
        self.calls.append(kwargs)
        if self.fail:
            raise ConnectionError("could not connect to the endpoint URL")
        if "InstanceIds" in kwargs and set(kwargs["InstanceIds"]) - set(self.known):
            raise RuntimeError("InvalidInstanceID.NotFound")
        ids = kwargs["Filters"][0]["Values"]
        return {"Reservations": [{"Instances": [{"InstanceId": i, "State": {"Name": self.known[i]}}
                                                for i in ids if i in self.known]}]}


def test_ec2_forgotten_instances_are_done_and_a_failed_call_leaves_them_unknown():
    ec2 = batch.get("ec2", client=FakeEC2({"i-1": "running", "i-2": "pending", "i-3": "terminated"}))
    assert ec2.states(["i-1", "i-2", "i-3", "i-gone"]) == {"i-1": "running", "i-2": "pending", "i-3": "done",
                                                          "i-gone": "done"}
    assert batch.get("ec2", client=FakeEC2({}, fail=True)).states(["i-1"]) == {}
