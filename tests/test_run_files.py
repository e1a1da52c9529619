"""workqueue run's files and resources: --transfer/--return ship the files named by {} through
the sandbox, --results keeps GNU parallel's layout, --cores/--memory/--category/--timeout reach
each task (real CLI, real local workers)."""
import subprocess
import sys

CLI = [sys.executable, "-c", "from workqueue.cli.main import main; main(prog_name='workqueue')", "run"]


def run(tmp_path, *args, timeout=300):
    return subprocess.run(CLI + list(args), cwd=tmp_path, capture_output=True, text=True, timeout=timeout)


def test_transfer_and_return_ship_files_through_the_sandbox(tmp_path):
    (tmp_path / "in").mkdir()
    for name in ("a", "b"):
        (tmp_path / "in" / f"{name}.txt").write_text(f"{name}\n")
    done = run(tmp_path, "-w", "2", "--transfer", "--return", "{.}.rev",
               "pwd > {.}.rev; rev {} >> {.}.rev", ":::", "in/a.txt", "in/b.txt")
    assert done.returncode == 0, done.stderr
    for name in ("a", "b"):
        where, content = (tmp_path / "in" / f"{name}.rev").read_text().splitlines()
        assert content == name
        assert where != str(tmp_path)  # it ran in its sandbox, not in the shared directory
    assert "moved" in done.stderr and "0 B moved" not in done.stderr


def test_a_missing_returned_file_fails_its_job(tmp_path):
    (tmp_path / "a.txt").write_text("a\n")
    done = run(tmp_path, "-w", "1", "--transfer", "--return", "{}.out", "--joblog", "log.txt", "true", ":::", "a.txt")
    assert done.returncode == 1
    row = (tmp_path / "log.txt").read_text().splitlines()[1].split("\t")
    assert row[6] == "-1"  # never 0: a resume must run it again
    assert "OUTPUT_MISSING" in done.stderr


def test_results_dir_has_gnu_parallels_layout(tmp_path):
    done = run(tmp_path, "-w", "1", "--results", "out", "echo", ":::", "x/y", "z")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "out" / "1" / "x\\_y" / "stdout").read_text() == "x/y\n"
    assert (tmp_path / "out" / "1" / "z" / "seq").read_text() == "2\n"
    assert (tmp_path / "out" / "1" / "z" / "stderr").read_text() == ""


def test_resources_reach_each_task_in_its_category(tmp_path):
    done = run(tmp_path, "-w", "1", "--cores", "1", "--memory", "50", "--category", "sorting",
               "-k", 'echo "$CORES $MEMORY"', ":::", "1", "2")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["1 50 1", "1 50 2"]


def test_timeout_kills_a_try_that_runs_too_long(tmp_path):
    (tmp_path / "c.txt").write_text("sleep 30\necho quick\n")
    done = run(tmp_path, "-w", "2", "--timeout", "1", "c.txt")
    assert done.returncode == 1
    assert "TASK_MAX_RUN_TIME" in done.stderr and done.stdout == "quick\n"


def test_eta_draws_a_live_line_and_the_summary_counts_everything(tmp_path):
    (tmp_path / "c.txt").write_text("sleep 0.3\n" * 4 + "false\n")
    done = run(tmp_path, "-w", "2", "--eta", "c.txt")
    assert done.returncode == 1
    assert "tasks/s ETA" in done.stderr and "\x1b[K" in done.stderr  # redrawn in place
    summary = done.stderr.replace("\x1b[K", "").strip().splitlines()[-1]
    assert summary.startswith("4 done, 1 failed, 0 retried, 0 skipped") and "tasks/s" in summary


def test_a_workqueue_header_line_sets_what_the_lines_below_declare(tmp_path):
    (tmp_path / "c.txt").write_text('echo "$CORES $MEMORY"\n'
                                    "#workqueue: memory=70 category=big\n"
                                    'echo "$CORES $MEMORY"\n'
                                    "#workqueue:\n"
                                    'echo "$CORES $MEMORY"\n')
    done = run(tmp_path, "-w", "1", "-k", "--memory", "30", "c.txt")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["1 30", "1 70", "1 30"]


def test_a_bad_header_setting_is_named(tmp_path):
    (tmp_path / "c.txt").write_text("#workqueue: cpus=2\ntrue\n")
    done = run(tmp_path, "c.txt")
    assert done.returncode == 255 and "'cpus=2'" in done.stderr and "cores, memory, disk, gpus, category" in done.stderr
