"""workqueue run --joblog, --resume, --resume-failed: the real CLI with real local workers, and a
master killed with SIGKILL half-way through."""
import signal
import subprocess
import sys
import time

import psutil
import pytest

from workqueue.run import joblog

CLI = [sys.executable, "-c", "from workqueue.cli.main import main; main(prog_name='workqueue')", "run"]


def run(tmp_path, *args, timeout=300):
    return subprocess.run(CLI + list(args), cwd=tmp_path, capture_output=True, text=True, timeout=timeout)


def rows(path):
    lines = path.read_text().splitlines()
    assert lines[0] == "\t".join(joblog.COLUMNS)
    return [line.split("\t") for line in lines[1:]]


def marker_jobs(tmp_path, n):
    """n lines that each append their number to marks.txt, after a short sleep."""
    path = tmp_path / "jobs.txt"
    path.write_text("".join(f"sleep 0.01; echo {i} >> marks.txt\n" for i in range(1, n + 1)))
    return path


def test_joblog_is_gnu_parallels_format(tmp_path):
    (tmp_path / "c.txt").write_text("echo one\nexit 3\nkill -9 $$\n")
    done = run(tmp_path, "-w", "1", "--joblog", "log.txt", "c.txt")
    assert done.returncode == 2, done.stderr
    by_seq = {int(r[0]): r for r in rows(tmp_path / "log.txt")}
    assert sorted(by_seq) == [1, 2, 3]
    assert by_seq[1][6:] == ["0", "0", "echo one"]
    assert by_seq[2][6:] == ["3", "0", "exit 3"]
    assert by_seq[3][6:] == ["-1", "9", "kill -9 $$"]
    assert float(by_seq[1][2]) > 1e9 and float(by_seq[1][3]) >= 0


def test_resume_skips_what_the_log_holds_and_resume_failed_reruns_failures(tmp_path):
    (tmp_path / "c.txt").write_text("echo 1 >> marks.txt\necho 2 >> marks.txt; exit 1\necho 3 >> marks.txt\n")
    first = run(tmp_path, "-w", "1", "--joblog", "log.txt", "c.txt")
    assert first.returncode == 1
    again = run(tmp_path, "-w", "1", "--joblog", "log.txt", "--resume", "c.txt")
    assert again.returncode == 0 and "nothing to run" in again.stderr
    failed_again = run(tmp_path, "-w", "1", "--joblog", "log.txt", "--resume-failed", "c.txt")
    assert failed_again.returncode == 1
    assert sorted((tmp_path / "marks.txt").read_text().split()) == ["1", "2", "2", "3"]
    assert [r[0] for r in rows(tmp_path / "log.txt")].count("2") == 2


def test_a_joblog_of_another_command_file_is_refused(tmp_path):
    (tmp_path / "a.txt").write_text("echo a\necho b\n")
    (tmp_path / "b.txt").write_text("echo a\necho c\n")
    assert run(tmp_path, "-w", "1", "--joblog", "log.txt", "a.txt").returncode == 0
    refused = run(tmp_path, "-w", "1", "--joblog", "log.txt", "--resume", "b.txt")
    assert refused.returncode == 255
    assert "written by another command file" in refused.stderr and "'echo b'" in refused.stderr
    assert len(rows(tmp_path / "log.txt")) == 2  # untouched


def test_a_log_that_is_no_joblog_is_refused(tmp_path):
    (tmp_path / "a.txt").write_text("echo a\n")
    (tmp_path / "log.txt").write_text("some notes\n")
    refused = run(tmp_path, "--joblog", "log.txt", "--resume", "a.txt")
    assert refused.returncode == 255 and "not a job log" in refused.stderr


def test_resume_needs_a_joblog(tmp_path):
    (tmp_path / "a.txt").write_text("echo a\n")
    refused = run(tmp_path, "--resume", "a.txt")
    assert refused.returncode == 255 and "--resume and --resume-failed need --joblog" in refused.stderr


def test_a_torn_last_row_is_cut_before_appending(tmp_path):
    (tmp_path / "a.txt").write_text("echo a\necho b\n")
    (tmp_path / "log.txt").write_text(joblog.HEADER + joblog.row(1, "h", 1.0, 0.1, 0, 0, 0, 0, "echo a") + "2\th\t1.0")
    done = run(tmp_path, "-w", "1", "--joblog", "log.txt", "--resume", "a.txt")
    assert done.returncode == 0 and done.stdout == "b\n"
    assert [r[0] for r in rows(tmp_path / "log.txt")] == ["1", "2"]


def kill_half_way_and_resume(tmp_path, n):
    jobs = marker_jobs(tmp_path, n)
    log_path = tmp_path / "log.txt"
    master = subprocess.Popen(CLI + ["-w", "2", "--joblog", str(log_path), str(jobs)], cwd=tmp_path,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while not log_path.exists() or len(log_path.read_text().splitlines()) <= n // 2:
            assert master.poll() is None, "the run ended before half its jobs were logged"
            time.sleep(0.02)
        workers = psutil.Process(master.pid).children(recursive=True)
        master.send_signal(signal.SIGKILL)
    finally:
        master.kill()
        master.wait()
    gone, alive = psutil.wait_procs(workers, timeout=60)
    assert not alive, "local workers outlived their master"
    logged_before = {int(r[0]) for r in rows(log_path) if r[6] == "0"}
    marks_before = (tmp_path / "marks.txt").read_text().split()
    assert n // 2 <= len(logged_before) < n
    resumed = run(tmp_path, "-w", "2", "--joblog", str(log_path), "--resume", str(jobs), timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    seqs = [int(r[0]) for r in rows(log_path)]
    assert sorted(seqs) == list(range(1, n + 1))  # every line exactly once in the log
    assert all(r[6] == "0" for r in rows(log_path))
    marks_after = (tmp_path / "marks.txt").read_text().split()[len(marks_before):]
    assert not logged_before & {int(m) for m in marks_after}  # nothing logged as done ran again
    assert {int(m) for m in marks_before + marks_after} == set(range(1, n + 1))


def test_a_master_killed_half_way_resumes_without_running_logged_jobs_again(tmp_path):
    kill_half_way_and_resume(tmp_path, 300)


@pytest.mark.slow
def test_a_master_killed_half_way_through_2000_jobs_resumes(tmp_path):
    kill_half_way_and_resume(tmp_path, 2000)
