"""CURVE encryption with a ZAP allow-list: the allowed key works, any other is refused clearly."""
import shutil
import subprocess
import sys

from conftest import drain, start_worker, stop

import workqueue as wq
from workqueue.wire import curve


def test_allowed_key_runs_tasks_and_a_stranger_is_refused(tmp_path):
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    worker_secret = str(tmp_path / "worker.key_secret")
    curve.keypair(worker_secret)
    shutil.copy(tmp_path / "worker.key", allowed / "worker.key")
    m = wq.Manager(port=0, curve_key=str(tmp_path / "manager.key_secret"), curve_allowed=str(allowed))
    server_key = str(tmp_path / "manager.key")
    try:
        good = start_worker(m.port, "--cores", "1", "--curve-server-key", server_key, "--curve-key", worker_secret)
        try:
            m.submit(wq.Task("echo encrypted", cores=1))
            assert drain(m)[0].output.strip() == "encrypted"
        finally:
            stop(good)
        stranger = subprocess.run(
            [sys.executable, "-m", "workqueue.worker", "localhost", str(m.port), "-t", "20",
             "--curve-server-key", server_key, "--curve-key", str(tmp_path / "stranger.key_secret")],
            capture_output=True, text=True, timeout=30)
        assert stranger.returncode != 0
        assert "authentication failed" in stranger.stderr
        plain = subprocess.run([sys.executable, "-m", "workqueue.worker", "localhost", str(m.port), "-t", "3",
                                "--connect-timeout", "3"], capture_output=True, text=True, timeout=30)
        assert plain.returncode != 0, "a worker without CURVE must not get in"
    finally:
        m.close()
