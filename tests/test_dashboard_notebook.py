"""What a notebook shows: the HTML of a Manager, a Task and an Executor, and progress bars (tqdm)."""
import io
import time

import pytest
from conftest import wait_for

import workqueue as wq


def test_html_of_a_manager_and_its_tasks():
    with wq.Manager(port=0, dashboard=0) as m:
        task = wq.Task("echo '<b>not bold</b>'; exit 4", cores=1, category="html")
        assert "not submitted" in task._repr_html_()
        m.submit(task)
        assert "submitted, not returned by wait()" in task._repr_html_()
        with wq.local_workers(1, m.port, cores=1):
            assert m.wait(30) is task
        shown = m._repr_html_()
        assert f"<td style='text-align:left'>{m.port}</td>" in shown
        assert f"href='{m.dashboard_url}'" in shown
        assert "0 waiting, 0 running, 1 done, 0 failed (of 1 submitted)" in shown
    html = task._repr_html_()
    assert "SUCCESS, exit 4" in html and task.worker_id in html and "html" in html
    assert "&lt;b&gt;not bold&lt;/b&gt;" in html and "<b>not bold</b>" not in html
    assert "(closed)" in m._repr_html_()


def test_html_of_an_executor():
    with wq.Executor(workers=1) as pool:
        assert pool.submit(pow, 2, 10).result(timeout=60) == 1024
        html = pool._repr_html_()
    assert "workqueue Executor" in html and "1 started here" in html and "1 done, 0 failed" in html


def test_manager_progress_blocks_in_a_terminal_until_every_task_finished():
    with wq.Manager(port=0) as m, wq.local_workers(2, m.port, cores=1):
        for _ in range(6):
            m.submit(wq.Task("sleep 0.1", cores=1))
        out = io.StringIO()
        bar = m.progress(notebook=False, file=out)
        assert (bar.n, bar.total) == (6, 6) and m.stats["tasks_done"] == 6
        assert "6/6" in out.getvalue()
        assert len([m.wait(5) for _ in range(6)]) == 6  # progress took no task from wait


def test_progress_over_futures_and_in_the_background():
    with wq.Executor(workers=2) as pool:
        futures = [pool.submit(time.sleep, 0.1) for _ in range(5)]
        bar = wq.progress(futures, notebook=True, file=io.StringIO())  # returns at once, follows in a thread
        assert bar.total == 5
        for f in futures:
            f.result(timeout=60)
        assert wait_for(lambda: bar.n == 5)
    with pytest.raises(TypeError, match="futures or Tasks, not int"):
        wq.progress([1, 2])


def test_progress_over_tasks_counts_those_wait_returned():
    with wq.Manager(port=0) as m, wq.local_workers(1, m.port, cores=1):
        tasks = [wq.Task("true", cores=1) for _ in range(3)]
        for t in tasks:
            m.submit(t)
        while not m.empty():
            m.wait(5)
        bar = wq.progress(tasks, notebook=False, file=io.StringIO())
        assert (bar.n, bar.total) == (3, 3)
