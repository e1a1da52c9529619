"""tune(): every CCTools name either does what CCTools says or warns once why it cannot; others are refused."""
import logging
import time

import pytest
from conftest import start_worker, stop, wait_for

import work_queue
import workqueue as wq
from workqueue.manager.tuning import HONOURED, WITHOUT_EFFECT


def test_unknown_names_are_refused_and_names_without_effect_warn_once(caplog):
    with wq.Manager(port=0) as m:
        with pytest.raises(ValueError, match="no setting is called 'wait-for-worker'"):
            m.tune("wait-for-worker", 1)
        with caplog.at_level(logging.WARNING, logger="workqueue.manager"):
            m.tune("asynchrony-multiplier", 2)
            m.tune("asynchrony_multiplier", 3)
        assert caplog.text.count("has no effect in workqueue") == 1
        for name in HONOURED:
            m.tune(name, 1)
    q = work_queue.WorkQueue(0)
    try:
        assert q.tune("no-such-thing", 1) == -1
        assert q.tune("force-proportional-resources", 1) == 0 == q.tune("hungry-minimum", 5)
    finally:
        q.close()
    assert not set(HONOURED) & set(WITHOUT_EFFECT)


def test_hungry_minimum_factor_counts_per_connected_worker():
    with wq.Manager(port=0) as m:
        m.tune("hungry-minimum", 1)
        worker = start_worker(m.port, "--cores", "1")
        try:
            assert wait_for(lambda: m.stats["workers_connected"] == 1, timeout=20)
            for _ in range(3):
                m.submit(wq.Task("sleep 30", cores=1))
            assert wait_for(lambda: m.stats["tasks_waiting"] == 2)
            assert not m.hungry()
            m.tune("hungry-minimum-factor", 5)
            assert wait_for(lambda: m.stats["hungry_minimum"] == 5)
            assert m.hungry()
        finally:
            stop(worker)


def test_wait_for_workers_holds_every_task_until_that_many_have_come():
    with wq.Manager(port=0) as m:
        m.tune("wait-for-workers", 2)
        first = start_worker(m.port, "--cores", "1")
        second = None
        try:
            assert wait_for(lambda: m.stats["workers_connected"] == 1, timeout=20)
            m.submit(wq.Task("true", cores=1))
            assert m.wait(1.5) is None and m.stats["tasks_waiting"] == 1
            second = start_worker(m.port, "--cores", "1")
            assert m.wait(30) is not None
        finally:
            stop(first)
            if second is not None:
                stop(second)


def test_wait_for_workers_set_a_moment_after_the_manager_starts():
    with wq.Manager(port=0) as m:
        time.sleep(1.5)  # the loop has turned once (its poll times out after 1 s)
        m.tune("wait-for-workers", 2)
        first = start_worker(m.port, "--cores", "1")
        try:
            assert wait_for(lambda: m.stats["workers_connected"] == 1, timeout=20)
            m.submit(wq.Task("true", cores=1))
            assert m.wait(1.5) is None, "a task went out with 1 worker of the 2 waited for"
        finally:
            stop(first)
