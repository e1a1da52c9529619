"""workqueue run's failure policy: --retries, --halt, and the exit status (failed jobs, at most
101), through the real CLI with real local workers."""
import subprocess
import sys

import pytest

from workqueue.run import policy
from workqueue.run.commands import BadInput

CLI = [sys.executable, "-c", "from workqueue.cli.main import main; main(prog_name='workqueue')", "run"]


def run(tmp_path, *args, timeout=300):
    return subprocess.run(CLI + list(args), cwd=tmp_path, capture_output=True, text=True, timeout=timeout)


def test_retries_give_a_failing_job_that_many_tries_in_all(tmp_path):
    # fails twice, then succeeds: the tries are counted in tries.txt
    (tmp_path / "c.txt").write_text('echo x >> tries.txt; [ "$(wc -l < tries.txt)" -ge 3 ]\n')
    done = run(tmp_path, "-w", "1", "--retries", "3", "--joblog", "log.txt", "c.txt")
    assert done.returncode == 0, done.stderr
    assert len((tmp_path / "tries.txt").read_text().split()) == 3
    assert "2 retried" in done.stderr
    assert len((tmp_path / "log.txt").read_text().splitlines()) == 2  # one row: the final try


def test_without_retries_a_failing_job_runs_once(tmp_path):
    (tmp_path / "c.txt").write_text("echo x >> tries.txt; false\n")
    done = run(tmp_path, "-w", "1", "c.txt")
    assert done.returncode == 1
    assert (tmp_path / "tries.txt").read_text() == "x\n"
    assert "job 1 failed (exit 1): echo x >> tries.txt; false" in done.stderr


def test_the_exit_status_counts_failed_jobs_up_to_101(tmp_path):
    (tmp_path / "c.txt").write_text("exit 1\n" * 105 + "true\n")
    done = run(tmp_path, "-w", "2", "c.txt")
    assert done.returncode == 101
    assert "1 done, 105 failed" in done.stderr


def test_halt_now_stops_at_the_first_failure(tmp_path):
    lines = ["exit 1"] + [f"sleep 0.2; echo {i} >> ran.txt" for i in range(40)]
    (tmp_path / "c.txt").write_text("\n".join(lines) + "\n")
    done = run(tmp_path, "-w", "1", "--halt", "now,fail=1", "--joblog", "log.txt", "c.txt")
    assert done.returncode == 1, done.stderr
    assert "halted (now)" in done.stderr
    ran = (tmp_path / "ran.txt").read_text().split() if (tmp_path / "ran.txt").exists() else []
    assert len(ran) < 40
    logged = {int(row.split("\t")[0]) for row in (tmp_path / "log.txt").read_text().splitlines()[1:]}
    # the log holds the failure and only jobs that ran; what was killed or never started is left
    # to a resume (a job killed just as it ended may have run without being logged)
    assert 1 in logged and logged <= {1} | {int(i) + 2 for i in ran}


def test_halt_soon_lets_running_jobs_end_and_starts_no_more(tmp_path):
    lines = ["sleep 1; echo slow >> ran.txt", "exit 1"] + [f"sleep 0.2; echo {i} >> ran.txt" for i in range(40)]
    (tmp_path / "c.txt").write_text("\n".join(lines) + "\n")
    done = run(tmp_path, "-w", "2", "--halt", "soon,fail=1", "c.txt")
    assert done.returncode == 1, done.stderr
    ran = (tmp_path / "ran.txt").read_text().split()
    assert "slow" in ran and len(ran) < 41


def test_halt_parsing():
    assert policy.parse_halt("now,fail=2") == policy.Halt("now", 2)
    assert policy.parse_halt("soon,fail=10%").threshold(45) == 5
    assert policy.parse_halt("2") == policy.Halt("now", 1)
    assert policy.parse_halt(None) == policy.NEVER
    for bad in ("now", "soon,fail=0", "now,fail=101%", "later,fail=1"):
        with pytest.raises(BadInput, match="--halt"):
            policy.parse_halt(bad)


def test_policy_books_tries_and_halts():
    p = policy.Policy(total=4, retries=2, halt=policy.Halt("soon", 2))
    assert p.finished(1, ok=False) is False and p.retried == 1
    assert p.finished(1, ok=False) is True and p.failed == 1 and p.halting is None
    assert p.finished(2, ok=True) is True
    assert p.finished(3, ok=False) is False
    assert p.finished(3, ok=False) is True and p.halting == "soon"
    assert p.exit_status() == 2
