"""Categories: CCTools' allocation modes, the first allocation of undeclared tasks, retry at max."""
import time

import pytest
from conftest import drain, start_worker, stop

import work_queue
import workqueue as wq
from workqueue.constants import Result
from workqueue.scheduling.categories import Categories, Mode, choose, round_up

NOTHING = {"cores": None, "memory": None, "disk": None, "gpus": None}


def learned(mode, peaks, steady=3, **settings):
    categories = Categories()
    categories.monitoring = True
    categories.steady_n_tasks = steady
    categories.set_mode("c", mode)
    for name, value in settings.items():
        getattr(categories, "set_" + name)("c", value)
    for peak in peaks:
        categories.record("c", {"cores": peak[0], "memory": peak[1], "disk": peak[2], "wall_time": 1.0})
    return categories


# -- the pure room ----------------------------------------------------------------------------
def test_an_unknown_category_keeps_what_the_task_declared():
    assert Categories().first_allocation("x", NOTHING) == NOTHING
    assert Categories().first_allocation("x", {**NOTHING, "cores": 2}) == {**NOTHING, "cores": 2}


def test_fixed_mode_gives_undeclared_tasks_the_max_and_declared_ones_what_they_said():
    categories = Categories()
    categories.set_max("c", {"cores": 2, "memory": 100})
    assert categories.first_allocation("c", NOTHING) == {"cores": 2, "memory": 100, "disk": None, "gpus": None}
    assert categories.first_allocation("c", {**NOTHING, "cores": 1}) == {**NOTHING, "cores": 1}
    assert not categories.retries_exhausted_tasks("c")


def test_before_steady_state_the_guess_then_the_max_then_a_whole_worker():
    categories = learned(Mode.MAX_THROUGHPUT, [(0.1, 10, 1)] * 2, max={"memory": 800})
    assert categories.first_allocation("c", NOTHING) == {**NOTHING, "memory": 800}
    categories.set_first_guess("c", {"cores": 1, "memory": 300})
    assert categories.first_allocation("c", NOTHING) == {"cores": 1, "memory": 300, "disk": None, "gpus": None}
    assert learned(Mode.MAX, [(0.1, 10, 1)] * 2).first_allocation("c", NOTHING) == NOTHING  # whole worker


def test_unmonitored_peaks_do_not_count():
    categories = Categories()
    categories.set_mode("c", Mode.MAX)
    categories.steady_n_tasks = 1
    categories.record("c", {"cores": 1, "memory": 10, "disk": 1, "wall_time": 1})
    assert categories.first_allocation("c", NOTHING) == NOTHING


def test_max_mode_takes_the_largest_peak_in_buckets():
    categories = learned(Mode.MAX, [(0.2, 10, 1), (1.5, 600, 1), (0.9, 20, 300)])
    assert categories.first_allocation("c", NOTHING) == {"cores": 2, "memory": 750, "disk": 500, "gpus": None}


def test_declared_values_win_and_min_max_bound_the_guess():
    categories = learned(Mode.MAX, [(3.5, 10, 1)] * 3, min={"memory": 1000}, max={"cores": 2})
    allocation = categories.first_allocation("c", {**NOTHING, "disk": 7})
    assert allocation == {"cores": 2, "memory": 1000, "disk": 7, "gpus": None}


def test_max_throughput_packs_small_tasks_and_lets_rare_big_ones_retry():
    peaks = [(0.1, 100, 1)] * 9 + [(0.1, 2000, 1)]
    allocation = learned(Mode.MAX_THROUGHPUT, peaks, max={"memory": 4000}).first_allocation("c", NOTHING)
    assert allocation["memory"] == 250 and allocation["cores"] == 1


def test_min_waste_weighs_by_wall_time():
    # a long task of 1000 MB outweighs many short ones of 250 MB: running it twice wastes more
    samples = [(100.0, 0.1)] * 10 + [(1000.0, 100.0)]
    assert choose(Mode.MIN_WASTE, samples, 250.0, 1000.0) == 1000
    assert choose(Mode.MIN_WASTE, [(100.0, 1.0)] * 10 + [(1000.0, 1.0)], 250.0, 1000.0) == 250


def test_round_up_gives_at_least_one_bucket():
    assert round_up(0.0, 250) == 250 and round_up(250, 250) == 250 and round_up(251, 250) == 500
    assert round_up(0.01, 1) == 1


def test_retry_is_at_the_max_or_on_a_whole_worker():
    categories = Categories()
    categories.set_mode("c", Mode.MAX)
    assert categories.retries_exhausted_tasks("c")
    assert categories.retry_allocation("c", {**NOTHING, "memory": 10}) == NOTHING
    categories.set_max("c", {"memory": 500})
    assert categories.retry_allocation("c", {**NOTHING, "memory": 10}) == {**NOTHING, "memory": 500}


def test_an_unknown_mode_is_refused():
    with pytest.raises(ValueError):
        Categories().set_mode("c", 7)
    with pytest.raises(ValueError):
        with wq.Manager(port=0) as manager:
            manager.set_category_mode("c", 9)


# -- with a real manager and worker -----------------------------------------------------------
def test_max_throughput_packs_undeclared_tasks_through_the_cctools_skin():
    """Parsl's autolabel: the mode and monitoring set through the skin, 60 undeclared tasks."""
    q = work_queue.WorkQueue(0)
    worker = start_worker(q.port, "--cores", "4", "--memory", "4000", "--disk", "4000")
    try:
        q.specify_category_mode("auto", work_queue.WORK_QUEUE_ALLOCATION_MODE_MAX_THROUGHPUT)
        q.enable_monitoring()
        q.tune("category-steady-n-tasks", 1)  # Parsl's autolabel_window, 1 by default
        started = time.monotonic()
        for _ in range(60):
            t = work_queue.Task("sleep 0.5")
            t.specify_category("auto")
            q.submit(t)
        done = []
        while not q.empty():
            t = q.wait(1)
            if t is not None:
                done.append(t)
            assert time.monotonic() - started < 60
        elapsed = time.monotonic() - started
        print(f"60 x sleep 0.5, MAX_THROUGHPUT, one worker started with --cores 4: {elapsed:.1f} s")
        assert len(done) == 60 and all(t.result == work_queue.WORK_QUEUE_RESULT_SUCCESS for t in done)
        assert elapsed < 20
    finally:
        stop(worker)
        q.close()


def _memory_hog(category):
    task = wq.Task("python3 -c \"import time; b = b'x' * (100 << 20); time.sleep(1.5)\"")
    task.set_category(category)
    task.set_resources(memory=10)
    return task


def test_resource_exhaustion_is_retried_once_at_the_category_max(manager):
    worker = start_worker(manager.port, "--cores", "2", "--memory", "2000")
    try:
        manager.set_category_mode("grows", Mode.MAX)
        manager.set_category_max_resources("grows", {"memory": 500})
        manager.submit(_memory_hog("grows"))
        manager.submit(_memory_hog("fixed"))
        done = {t.category: t for t in drain(manager, timeout=60)}
        grown, fixed = done["grows"], done["fixed"]
        assert grown.result == Result.SUCCESS, grown.output
        assert grown.attempts == 2 and grown.resources_allocated["memory"] == 500
        assert fixed.result == Result.RESOURCE_EXHAUSTION and fixed.attempts == 1
    finally:
        stop(worker)


def test_a_task_past_the_max_too_fails_with_resource_exhaustion(manager):
    worker = start_worker(manager.port, "--cores", "2", "--memory", "2000")
    try:
        manager.set_category_mode("small", Mode.MAX)
        manager.set_category_max_resources("small", {"memory": 20})
        manager.submit(_memory_hog("small"))
        [task] = drain(manager, timeout=60)
        assert task.result == Result.RESOURCE_EXHAUSTION and task.attempts == 2
    finally:
        stop(worker)


# -- fast abort -------------------------------------------------------------------------------
def test_fast_abort_waits_for_samples_and_takes_the_category_multiplier_first():
    categories = Categories()
    categories.set_fast_abort(None, 3)
    for _ in range(9):
        categories.record_wall_time("c", 2.0)
    assert categories.fast_abort_after("c") is None
    categories.record_wall_time("c", 2.0)
    assert categories.fast_abort_after("c") == pytest.approx(6.0)
    categories.set_fast_abort("c", 10)
    assert categories.fast_abort_after("c") == pytest.approx(20.0)
    categories.set_fast_abort("c", 0)
    assert categories.fast_abort_after("c") is None and categories.fast_abort_active
    categories.set_fast_abort("c", -1)  # the queue's
    assert categories.fast_abort_after("c") == pytest.approx(6.0)
    categories.set_fast_abort(None, 0.5)
    assert categories.fast_abort_after("c") is None and not categories.fast_abort_active


def test_a_task_far_slower_than_its_category_is_stopped_and_run_again(tmp_path):
    """Through the skin: after 10 quick tasks, one whose first attempt hangs is aborted and rerun."""
    q = work_queue.WorkQueue(0)
    worker = start_worker(q.port, "--cores", "2")
    try:
        q.activate_fast_abort_category("fa", 3)
        for _ in range(10):
            t = work_queue.Task("sleep 0.2")
            t.specify_category("fa")
            q.submit(t)
        while not q.empty():
            q.wait(1)
        marker = tmp_path / "first-attempt"
        slow = work_queue.Task(f"if [ -e {marker} ]; then echo second; else touch {marker}; sleep 60; fi")
        slow.specify_category("fa")
        q.submit(slow)
        started = time.monotonic()
        task = None
        while task is None and time.monotonic() - started < 30:
            task = q.wait(1)
        print(f"fast abort: the hung task came back after {time.monotonic() - started:.1f} s")
        assert task is slow and task.result == work_queue.WORK_QUEUE_RESULT_SUCCESS
        assert task.output.strip() == "second" and task.total_submissions == 2
        assert time.monotonic() - started < 10
    finally:
        stop(worker)
        q.close()


def test_autolabel_off_leaves_a_resource_at_the_category_max():
    from workqueue.scheduling.categories import Categories, Mode
    c = Categories()
    c.monitoring = True
    c.steady_n_tasks = 3
    c.set_mode("sim", Mode.MAX)
    c.set_max("sim", {"cores": 4, "memory": 8000})
    c.set_autolabel("sim", "memory", False)
    for peak in (100, 300, 200):
        c.record("sim", {"cores": 1, "memory": peak, "disk": 10, "wall_time": 1.0})
    undeclared = {"cores": None, "memory": None, "disk": None, "gpus": None}
    allocation = c.first_allocation("sim", undeclared)
    assert allocation["cores"] == 1 and allocation["memory"] == 8000
    c.set_autolabel("sim", "memory", True)
    assert c.first_allocation("sim", undeclared)["memory"] == 500  # the largest peak, in 250 MB buckets
