"""Where workqueue run's workers come from: local-only runs listen on loopback with a password
of their own and print no warning; --port/--password/--workers 0 let outside workers in; --batch
submits workers (here through the local batch class) and removes them at the end."""
import subprocess
import sys
import time

import psutil

import workqueue as wq
from workqueue.run.workers import LOOPBACK, Plan

CLI = [sys.executable, "-c", "from workqueue.cli.main import main; main(prog_name='workqueue')", "run"]


def start(tmp_path, *args):
    return subprocess.Popen(CLI + list(args), cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def listening(pid, deadline=60):
    """The (address, port) pairs process ``pid`` listens on, once it listens."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        process = psutil.Process(pid)
        connections = getattr(process, "net_connections", process.connections)("tcp")
        found = [c.laddr for c in connections if c.status == psutil.CONN_LISTEN]
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError("the run never listened")


def gated_jobs(tmp_path, n=2):
    """Jobs that wait until the test creates go.txt: the run stays up while the test looks at it."""
    (tmp_path / "c.txt").write_text("while [ ! -e go.txt ]; do sleep 0.05; done; echo done\n" * n)


def test_a_local_run_listens_on_loopback_only_and_prints_no_password_warning(tmp_path):
    gated_jobs(tmp_path)
    proc = start(tmp_path, "-w", "1", "c.txt")
    try:
        addresses = listening(proc.pid)
        assert {a.ip for a in addresses} == {LOOPBACK}
        (tmp_path / "go.txt").touch()
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert out.split() == ["done", "done"]
    assert "password" not in err.lower() and "WARNING" not in err


def test_remote_workers_join_with_port_and_password_and_no_local_workers(tmp_path):
    (tmp_path / "secret").write_text("sesame\n")
    gated_jobs(tmp_path)
    with wq.Manager(port=0) as probe:  # a free port for the run
        port = probe.port
    proc = start(tmp_path, "--workers", "0", "--port", str(port), "--password", "secret", "c.txt")
    try:
        addresses = listening(proc.pid)
        assert {(a.ip, a.port) for a in addresses} == {("0.0.0.0", port)}
        assert not psutil.Process(proc.pid).children()  # --workers 0: none started here
        (tmp_path / "go.txt").touch()
        with wq.local_workers(1, port, password_file=str(tmp_path / "secret")):
            out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert out.split() == ["done", "done"]
    assert f"workers may join on port {port}" in err


def children(proc, count, timeout=60):
    """The run's child processes (its workers), once there are ``count`` of them (or the timeout)."""
    deadline = time.monotonic() + timeout
    while len(psutil.Process(proc.pid).children()) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    return psutil.Process(proc.pid).children()


def test_batch_workers_are_submitted_and_removed_at_the_end(tmp_path):
    gated_jobs(tmp_path, 3)
    proc = start(tmp_path, "--workers", "0", "--batch", "local", "-N", "2", "c.txt")
    try:
        listening(proc.pid)
        workers = children(proc, 2)
        assert len(workers) == 2 and all("workqueue.worker" in " ".join(w.cmdline()) for w in workers)
        (tmp_path / "go.txt").touch()
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert out.split() == ["done"] * 3
    assert "no password" not in err  # the run made one for its batch workers
    assert not list(tmp_path.glob("*-workers/run-password.*"))  # and removed it
    assert not any(w.is_running() and w.status() != psutil.STATUS_ZOMBIE for w in workers)


def test_the_plan_opens_the_master_only_when_asked():
    assert Plan(local=2).host == LOOPBACK
    assert Plan(local=2, port=9123).host == "*"
    assert Plan(local=0, batch_system="slurm", batch_count=3).host == "*"


def test_a_run_stopped_by_sigterm_removes_its_batch_workers(tmp_path):
    gated_jobs(tmp_path, 1)
    proc = start(tmp_path, "--workers", "0", "--batch", "local", "-N", "1", "c.txt")
    try:
        listening(proc.pid)
        workers = children(proc, 1)
        assert workers
        proc.terminate()
        proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 143
    gone, alive = psutil.wait_procs(workers, timeout=30)
    assert not alive


def test_a_run_whose_local_workers_all_died_says_so_instead_of_waiting_for_ever(tmp_path):
    (tmp_path / "c.txt").write_text("kill -9 $PPID\necho never\n")  # the task's parent is its worker
    done = subprocess.run(CLI + ["-w", "1", "c.txt"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 255, done.stderr
    assert "all 1 local workers have exited" in done.stderr
