"""The funcs rooms through a real master and worker: pooled Python calls, and -M NAME via the catalog."""
import os
import shutil
import subprocess
import sys

import pytest
from conftest import stop

import workqueue as wq
from workqueue.constants import Result

PARSL_COPROCESS = shutil.which("parsl_coprocess.py")


@pytest.mark.skipif(PARSL_COPROCESS is None, reason="parsl not installed (pip install parsl)")
@pytest.mark.parametrize("scratch", ["workspace", "scratch"])
def test_parsl_coprocess_task_through_the_cctools_skin(tmp_path, scratch):
    """What Parsl's WorkQueueExecutor does with coprocess=True, against its real parsl_coprocess.py,
    with the calls' sandboxes in the workspace or in a scratch directory of their own (/dev/shm by
    default), where a call that declares much disk gets one on disk behind a symlink. The scratch
    directory is the worker's own, gone when it exits."""
    import pickle
    from operator import mul

    from parsl.serialize import deserialize, pack_apply_message

    import work_queue as wq_skin

    q = wq_skin.WorkQueue(0)
    parent = tmp_path / "parent"
    parent.mkdir()
    worker = subprocess.Popen([sys.executable, "-m", "workqueue.worker", "localhost", str(q.port), "-t", "60",
                               "--cores", "2", "--coprocess", "parsl_coprocess.py", "--coprocess-scratch",
                               "workspace" if scratch == "workspace" else str(parent)])
    try:
        tasks = {}
        for i in range(4):
            d = tmp_path / f"task{i}"
            d.mkdir()
            with open(d / "function", "wb") as f:
                pickle.dump({"byte code": pack_apply_message(mul, (i, 7), {}, buffer_threshold=1 << 20)}, f)
            with open(d / "map", "wb") as f:
                pickle.dump({}, f)
            t = wq_skin.RemoteTask("run_parsl_task", "parsl_coprocess", "map", "function", "result")
            t.specify_exec_method("direct")
            t.specify_tag(str(i))
            t.specify_input_file(str(d / "map"), cache=False)
            t.specify_input_file(str(d / "function"), cache=False)
            t.specify_output_file(str(d / "result"), cache=False)
            if i == 3:
                t.specify_disk(100)  # MB: more than a sandbox in memory is for
            q.submit(t)
            tasks[str(i)] = t
        while not q.empty():
            t = q.wait(30)
            assert t is not None, "a coprocess task never came back"
            assert t.result == wq_skin.WORK_QUEUE_RESULT_SUCCESS, (t.result, t.output)
        for i in range(4):
            with open(tmp_path / f"task{i}" / "result", "rb") as f:
                assert deserialize(f.read()) == i * 7
        if scratch == "scratch":
            [own] = os.listdir(parent)
            assert own.startswith("worker-") and any(name.startswith("c.") for name in os.listdir(parent / own))
    finally:
        stop(worker)
        q.close()
    assert os.listdir(parent) == []


def test_worker_finds_a_named_master_through_the_catalog_directory(tmp_path, monkeypatch):
    monkeypatch.delenv("CATALOG_HOST", raising=False)
    monkeypatch.setenv("WORKQUEUE_CATALOG_DIR", str(tmp_path / "catalog"))
    m = wq.Manager(port=0, name="funcs-e2e-project")
    try:
        assert os.listdir(tmp_path / "catalog"), "the master did not advertise"
        worker = subprocess.Popen([sys.executable, "-m", "workqueue.worker", "-M", "funcs-e2e-.*", "-t", "60",
                                   "--cores", "1"], env=dict(os.environ))
        try:
            t = wq.Task("echo found")
            m.submit(t)
            assert m.wait(30) is t
            assert t.result == Result.SUCCESS and t.output.strip() == "found"
        finally:
            stop(worker)
    finally:
        m.close()
    assert os.listdir(tmp_path / "catalog") == []
