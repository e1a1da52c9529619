"""workqueue status against a real master with a real worker running a task."""
import json
import socket
import subprocess
import sys

from click.testing import CliRunner
from conftest import wait_for

import workqueue as wq
import workqueue.status
from workqueue.cli.status import status


def _running(manager):
    return wq.status.query("localhost", manager.port, "queue").get("tasks_running") == 1


def test_status_views(manager, worker):
    manager.submit(wq.Task("sleep 3", tag="napper", cores=1))
    assert wait_for(lambda: _running(manager), 15)
    runner = CliRunner()

    summary = runner.invoke(status, ["localhost", str(manager.port)])
    assert summary.exit_code == 0, summary.output
    header, row = summary.output.splitlines()
    assert header.split()[:4] == ["MASTER", "WAITING", "RUNNING", "COMPLETED"]
    assert header.split()[-1] == "HUNGRY_FOR_TASKS"  # CCTools' hungry: it wants more tasks, not workers
    assert row.split()[0] == f"localhost:{manager.port}"
    assert row.split()[2] == "1"
    assert "1/2" in row.split()  # one core of two in use

    workers = runner.invoke(status, [f"localhost:{manager.port}", "-W"])
    assert workers.exit_code == 0, workers.output
    lines = workers.output.splitlines()
    assert lines[0].split()[:4] == ["WORKER", "HOST", "RUNNING", "COMPLETED"]
    assert len(lines) == 2 and lines[1].split()[2] == "1"

    tasks = runner.invoke(status, ["localhost", str(manager.port), "-T"])
    assert tasks.exit_code == 0, tasks.output
    lines = tasks.output.splitlines()
    assert len(lines) == 2 and "RUNNING" in lines[1] and "sleep 3" in lines[1]

    raw = runner.invoke(status, ["localhost", str(manager.port), "-T", "--json"])
    data = json.loads(raw.output)
    assert [t["command"] for t in data] == ["sleep 3"] and data[0]["tag"] == "napper"
    queue = json.loads(runner.invoke(status, ["localhost", str(manager.port), "--json"]).output)
    assert queue["tasks_running"] == 1 and queue["workers_connected"] == 1

    assert manager.wait(15) is not None


def test_status_nobody_listening():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    done = subprocess.run([sys.executable, "-c", "from workqueue.cli.status import main; main()",
                           "localhost", str(port), "-t", "0.5"], capture_output=True, text=True, timeout=20)
    assert done.returncode != 0
    assert f"localhost:{port}" in done.stderr and "no workqueue manager answered" in done.stderr
    assert "Traceback" not in done.stderr


def test_status_without_a_master_lists_the_masters_the_catalog_knows(tmp_path, monkeypatch):
    monkeypatch.delenv("CATALOG_HOST", raising=False)
    monkeypatch.setenv("WORKQUEUE_CATALOG_DIR", str(tmp_path))
    first, second = wq.Manager(port=0, name="listed-one"), wq.Manager(port=0, name="listed-two")
    try:
        first.submit(wq.Task("true"))
        assert wait_for(lambda: wq.status.query("localhost", first.port, "queue")["tasks_waiting"] == 1)
        runner = CliRunner()
        listing = runner.invoke(status, [])
        assert listing.exit_code == 0, listing.output
        lines = listing.output.splitlines()
        assert lines[0].split() == ["PROJECT", "HOST", "PORT", "WAITING", "RUNNING", "COMPLETE", "WORKERS"]
        rows = {line.split()[0]: line.split() for line in lines[1:]}
        assert set(rows) == {"listed-one", "listed-two"}
        assert rows["listed-one"][2:4] == [str(first.port), "1"]
        named = runner.invoke(status, ["-M", "listed-t.*"])
        assert [line.split()[0] for line in named.output.splitlines()[1:]] == ["listed-two"]
        resources = runner.invoke(status, ["-R"])
        assert resources.output.splitlines()[0].split()[3:] == ["WORKERS", "CORES", "MEMORY", "DISK", "GPUS"]
    finally:
        first.close()
        second.close()
