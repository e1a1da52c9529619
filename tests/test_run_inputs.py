"""workqueue run's inputs: command files, ::: and -a arguments, replacement strings, where
commands run, and a clear message with a non-zero exit for every bad input (real CLI, real workers)."""
import os
import subprocess
import sys

import pytest

from workqueue.run import commands

CLI = [sys.executable, "-c", "from workqueue.cli.main import main; main(prog_name='workqueue')", "run"]


def run(tmp_path, *args, timeout=300, cwd=None):
    return subprocess.run(CLI + list(args), cwd=cwd or tmp_path, capture_output=True, text=True, timeout=timeout)


def test_replacement_strings_are_gnu_parallels():
    job, = commands.from_template("x {} {.} {/} {//} {/.} {#}", [["a b/c d.txt"]])
    assert job.command == "x 'a b/c d.txt' 'a b/c d' 'c d.txt' 'a b' 'c d' 1"
    assert [j.command for j in commands.from_template("gzip -9", [["a", "b"]])] == ["gzip -9 a", "gzip -9 b"]
    assert [j.command for j in commands.from_template("echo {2} {1}", [["a", "b"], ["x"]])] == \
        ["echo x a", "echo x b"]
    assert commands.from_template("echo {.}", [[".hidden"]])[0].command == "echo .hidden"


def test_arguments_after_the_separator_run_in_order_with_keep_order(tmp_path):
    done = run(tmp_path, "-w", "2", "-k", "echo", "{#}:{/.}", ":::", "d/x.txt", "y.tar.gz", "-z")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["1:x", "2:y.tar", "3:-z"]


def test_arguments_from_a_file_and_every_combination(tmp_path):
    (tmp_path / "args.txt").write_text("a\nb\n")
    done = run(tmp_path, "-w", "1", "-k", "-a", "args.txt", "echo {1}{2}", ":::", "1", "2")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["a1", "a2", "b1", "b2"]


def test_commands_run_in_the_directory_the_run_started_from(tmp_path):
    (tmp_path / "c.txt").write_text("pwd > where.txt\n")
    done = run(tmp_path, "-w", "1", "c.txt")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "where.txt").read_text().strip() == os.path.realpath(tmp_path)


def test_verbose_prints_each_command_before_its_output(tmp_path):
    done = run(tmp_path, "-w", "1", "-v", "echo", ":::", "hi")
    assert done.stdout.splitlines() == ["echo hi", "hi"]


@pytest.mark.parametrize("args, says", [
    (["missing.txt"], "command file 'missing.txt' does not exist"),
    (["empty.txt"], "command file 'empty.txt' holds no commands"),
    (["comments.txt"], "holds no commands"),
    (["echo {}"], "uses replacement strings but has no arguments"),
    (["echo {}", ":::"], "':::' must be followed by at least one argument"),
    (["-a", "missing.txt", "echo"], "argument file 'missing.txt' does not exist"),
    (["echo {3}", ":::", "a"], "{3} names argument source 3"),
    ([], "nothing to run"),
    (["c.txt", "-w", "2"], "options go before FILE"),
    (["--halt", "later", "c.txt"], "--halt must be now|soon,fail=N"),
    (["--retries", "-1", "c.txt"], "--retries must be 0 or more"),
    (["--workers", "0", "c.txt"], "--workers 0 starts no worker here"),
    (["--batch", "slurm", "c.txt"], "needs -N COUNT"),
    (["--password", "nope.txt", "c.txt"], "--password 'nope.txt'"),
    (["--transfer", "c.txt"], "--transfer ships the files named by {}"),
    (["--transfer", "cat", ":::", "/etc/hostname"], "--transfer needs paths relative to"),
    (["--transfer", "cat", ":::", "absent.txt"], "absent.txt' does not exist"),
    (["--cores", "-1", "c.txt"], "job 1 (--cores, --memory"),
    (["--timeout", "-3", "c.txt"], "max_run_time must be a finite number > 0"),
])
def test_bad_input_gets_a_clear_message_and_status_255(tmp_path, args, says):
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "comments.txt").write_text("# nothing\n\n")
    (tmp_path / "c.txt").write_text("echo a\n")
    done = run(tmp_path, *args)
    assert done.returncode == 255, (done.returncode, done.stderr)
    assert says in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


def test_an_unknown_option_is_refused_by_name(tmp_path):
    (tmp_path / "c.txt").write_text("echo a\n")
    done = run(tmp_path, "--bogus", "c.txt")
    assert done.returncode == 2 and "No such option '--bogus'" in done.stderr


def test_dry_run_prints_the_commands_a_resume_would_run_and_runs_none(tmp_path):
    (tmp_path / "log.txt").write_text("Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand\n"
                                      "1\th\t1.0\t0.1\t0\t0\t0\t0\ttouch 'a b'\n")
    done = run(tmp_path, "--dry-run", "--joblog", "log.txt", "--resume", "touch", ":::", "a b", "c")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "touch c\n"
    assert not (tmp_path / "c").exists()
