"""Resource summaries written as tasks finish (CCTools' enable_monitoring(dirname) and
Task.specify_monitor_output(dir)), with a real worker."""
import json
import logging

from conftest import start_worker, stop

import work_queue
import workqueue as wq


def test_summaries_go_where_the_queue_or_the_task_says(tmp_path):
    q = work_queue.WorkQueue(0)
    worker = start_worker(q.port, "--cores", "1")
    try:
        q.enable_monitoring(str(tmp_path / "all"))
        plain = work_queue.Task("head -c 1000000 /dev/zero > f; sleep 0.2")
        plain.specify_cores(1)
        own = work_queue.Task("exit 3")
        own.specify_cores(1)
        own.specify_monitor_output(str(tmp_path / "own"))
        ids = {q.submit(plain): "all", q.submit(own): "own"}
        while not q.empty():
            q.wait(5)
    finally:
        stop(worker)
        q.shutdown_workers(0)
    for task_id, where in ids.items():
        [path] = (tmp_path / where).glob(f"*-task-{task_id}.summary")
        document = json.loads(path.read_text())
        assert document["taskid"] == task_id and document["wall_time"][1] == "s"
        assert document["wall_time"][0] >= (0.2 if where == "all" else 0)
    assert json.loads(next((tmp_path / "own").glob("*.summary")).read_text())["exit_status"] == 3


def test_a_directory_that_cannot_be_written_costs_a_warning_not_the_task(tmp_path, caplog):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with wq.Manager(port=0) as m:
        worker = start_worker(m.port, "--cores", "1")
        try:
            t = wq.Task("true", cores=1)
            t.set_monitor_output(str(blocker / "sub"))
            m.submit(t)
            with caplog.at_level(logging.WARNING, logger="workqueue.manager"):
                done = m.wait(30)
        finally:
            stop(worker)
    assert done is t and t.succeeded
    assert "could not write the resource summary" in caplog.text
