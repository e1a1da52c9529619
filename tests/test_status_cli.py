"""workqueue status against a real master with a real worker running a task."""
import json
import socket
import subprocess
import sys

from click.testing import CliRunner

import workqueue as wq
import workqueue.status
from workqueue.cli.status import status

from conftest import wait_for


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
