"""Taking prefetched tasks back: a task queued on a busy worker goes to an idle one, and exactly one
worker runs it (the pure scheduler, then real workers)."""
import os
import signal
import time

from conftest import drain, start_worker, stop, wait_for

import workqueue as wq
from workqueue.scheduling.categories import Categories, task_program
from workqueue.scheduling.scheduler import Scheduler

ONE_CORE = {"cores": 1, "memory": 1000, "disk": 1000, "gpus": 0}


def declared(**resources):
    return {name: resources.get(name) for name in ("cores", "memory", "disk", "gpus")}


def busy_worker_with_queue(n_tasks=3, **shape):
    s = Scheduler()
    s.add_worker("busy", ONE_CORE)
    for i in range(n_tasks):
        s.submit(i, declared(cores=1, **shape))
    s.schedule(prefetch_depth=lambda tid: n_tasks)
    assert s.worker_books("busy").queued == list(range(1, n_tasks))
    return s


def test_an_idle_worker_is_promised_the_last_queued_tasks_it_has_room_for():
    s = busy_worker_with_queue(4)
    s.add_worker("idle", {**ONE_CORE, "cores": 2})
    taken = s.revocations(lambda tid: True)
    assert taken == [(3, "busy"), (2, "busy")]  # the last queued start last; room for two
    assert s.revocations(lambda tid: True) == []  # promised once, and the idle worker is full
    assert s.is_being_revoked(3) and not s.is_being_revoked(1)


def test_only_tasks_old_enough_are_taken_back():
    s = busy_worker_with_queue(3)
    s.add_worker("idle", ONE_CORE)
    assert s.revocations(lambda tid: tid == 1) == [(1, "busy")]


def test_a_task_given_back_returns_to_the_line_and_goes_to_the_idle_worker():
    s = busy_worker_with_queue(3)
    s.add_worker("idle", ONE_CORE)
    [(task_id, holder)] = s.revocations(lambda tid: True)
    assert s.worker_of(task_id) == "busy"  # booked where it is until the worker answers
    s.revoke_answered(task_id, revoked=True)
    assert s.is_ready(task_id) and not s.is_being_revoked(task_id)
    assert task_id not in s.worker_books("busy").queued
    [assignment] = s.schedule()
    assert (assignment.task_id, assignment.worker, assignment.queued) == (task_id, "idle", False)


def test_a_task_that_had_started_stays_where_it_runs():
    s = busy_worker_with_queue(2)
    s.add_worker("idle", ONE_CORE)
    [(task_id, _)] = s.revocations(lambda tid: True)
    s.finish(0)  # the worker started the queued task when the first ended, before the revoke came
    s.revoke_answered(task_id, revoked=False)
    assert s.worker_of(task_id) == "busy" and task_id in s.worker_books("busy").running
    assert s.revocations(lambda tid: True) == []


def test_given_back_after_the_books_promoted_it_frees_its_resources():
    s = busy_worker_with_queue(2)
    s.add_worker("idle", ONE_CORE)
    [(task_id, _)] = s.revocations(lambda tid: True)
    s.finish(0)  # the master's books promote it; the worker had given it back first
    s.revoke_answered(task_id, revoked=True)
    assert s.worker_books("busy").free["cores"] == 1 and s.is_ready(task_id)


def test_workers_leaving_mid_revocation_lose_nothing():
    s = busy_worker_with_queue(3)
    s.add_worker("idle", ONE_CORE)
    taken = s.revocations(lambda tid: True)
    s.remove_worker("idle")
    assert not any(s.is_being_revoked(tid) for tid, _ in taken)
    s.add_worker("idle2", ONE_CORE)
    assert s.revocations(lambda tid: True) == taken  # promised anew to the worker that is here
    assert sorted(s.remove_worker("busy")) == [0, 1, 2]
    assert s.ready_count == 3 and not any(s.is_being_revoked(t) for t in range(3))
    for task_id, _ in taken:
        s.revoke_answered(task_id, revoked=True)  # a late answer from the gone worker: nothing happens
    assert s.ready_count == 3


def test_whole_worker_tasks_are_promised_one_per_idle_worker():
    s = Scheduler()
    s.add_worker("busy", ONE_CORE)
    for i in range(3):
        s.submit(i, declared())
    s.schedule(prefetch_depth=lambda tid: 3)
    s.add_worker("idle", {**ONE_CORE, "cores": 4})
    assert len(s.revocations(lambda tid: True)) == 1


def test_prefetching_learns_per_program_within_a_category():
    categories = Categories()
    for _ in range(6):
        categories.record_wall_time("default", 0.01, task_program("echo hi"))
    categories.record_wall_time("default", 3.0, task_program("sleep 3"))
    assert categories.program_wall_times("default", "echo").mean < 0.02
    assert categories.program_wall_times("default", "sleep").count == 1
    assert categories.program_wall_times("other", "echo") is None
    assert task_program("  ./rev  a b") == "./rev" and task_program("") == ""


def test_tasks_queued_on_the_first_worker_move_to_workers_that_join_later(manager, tmp_path):
    """The issue's case: tasks known to be short (same program) fill the first worker's queue;
    three long ones follow (they run until the test lets them end), and three more workers join:
    each long task runs on its own worker."""
    go = tmp_path / "go"
    workers = [start_worker(manager.port, "--cores", "1")]
    try:
        for _ in range(6):
            manager.submit(wq.Task("sh -c 'sleep 0'", cores=1))
        drain(manager)
        for _ in range(3):
            manager.submit(wq.Task(f"sh -c 'while [ ! -e {go} ]; do sleep 0.05; done'", cores=1))
        # how many wait queued depends on the mean time of the quick ones: at least one
        assert wait_for(lambda: manager.stats["tasks_prefetched"] >= 1), "the long tasks should be queued on the busy worker"
        workers += [start_worker(manager.port, "--cores", "1") for _ in range(3)]
        assert wait_for(lambda: manager.stats["tasks_revoked"] >= manager.stats["tasks_prefetched"], timeout=30)
        go.touch()
        done = drain(manager)
    finally:
        go.touch()
        for w in workers:
            stop(w)
    assert all(t.succeeded for t in done) and len(done) == 3
    assert len({t.worker_id for t in done}) == 3, "each long task should have run on its own worker"


def test_a_search_for_tasks_to_take_back_is_bounded_however_much_is_queued():
    """A master that falls behind sees every queued task grow old at once: the search must not
    grow with (idle workers x queued tasks), or the loop spirals (seen with 1,000 simulated workers)."""
    from workqueue.scheduling.scheduler import REVOKE_SCAN_MAX
    s = Scheduler()
    for w in range(100):
        s.add_worker(f"busy{w}", ONE_CORE)
    for i in range(100 * 65):
        s.submit(i, declared(cores=1))
    s.schedule(prefetch_depth=lambda tid: 64)
    for w in range(300):
        s.add_worker(f"idle{w}", ONE_CORE)
    asked = []
    taken = s.revocations(lambda tid: asked.append(tid) or True)
    assert len(asked) <= REVOKE_SCAN_MAX + 100
    assert 0 < len(taken) <= 300  # one each for as many idle one-core workers as the search reached
    assert len({worker for worker in (s._tasks[t].promised_to for t, _ in taken)}) == len(taken)


def test_a_task_given_back_after_its_idle_worker_left_is_not_stranded_on_the_holder():
    s = Scheduler()
    s.add_worker("busy", ONE_CORE)
    for i in range(3):
        s.submit(i, declared(cores=1))
    s.schedule(prefetch_depth=lambda tid: 3)
    s.add_worker("idle", ONE_CORE)
    [(task_id, holder)] = s.revocations(lambda tid: True)   # master sends revoke(task_id) to busy
    s.remove_worker("idle")                                  # idle worker says bye / is lost
    # the busy worker had not started it: it threw it away and answers revoked=True.
    # manager_revocations.answered only acts if is_being_revoked(): it is not any more.
    assert s.is_being_revoked(task_id) is False
    s.revoke_answered(task_id, revoked=True)
    # The worker no longer holds the task; the master must not either.
    assert task_id not in s.worker_books("busy").queued, "task stays booked on a worker that gave it back"
    assert s.is_ready(task_id)


def test_books_promote_like_the_worker_after_a_revoked_head():
    """Worker with 2 cores runs R0, R1 (1 core each); prefetched behind them: T (2 cores), U (1 core).
    R1 ends: both sides leave T at the head (it does not fit) and U behind it. T is revoked: the
    worker runs start_queued after every bundle of messages (worker.py:411), so U starts; the books'
    _release of a queued entry never promotes, so the mirror keeps U queued and a core 'free'."""
    s = Scheduler()
    s.add_worker("busy", {**ONE_CORE, "cores": 2})
    s.submit(0, declared(cores=1))
    s.submit(1, declared(cores=1))
    s.schedule()
    s.submit(2, declared(cores=2))
    s.submit(3, declared(cores=1))
    s.schedule(prefetch_depth=lambda tid: 8)
    books = s.worker_books("busy")
    assert books.running == {0, 1} and books.queued == [2, 3], (books.running, books.queued)
    s.finish(1)
    assert books.queued == [2, 3] and books.free["cores"] == 1   # T blocks U, on both sides
    s.add_worker("idle", {**ONE_CORE, "cores": 2})
    assert (2, "busy") in s.revocations(lambda tid: tid == 2)
    s.revoke_answered(2, revoked=True)
    # the worker now runs 0 and 3 with no core free
    assert 3 in books.running and books.free["cores"] == 0, \
        f"mirror: running {books.running} queued {books.queued} free {books.free['cores']}; the worker runs 0 and 3"


def test_a_task_given_back_after_the_idle_worker_left_runs(tmp_path):
    """The worker a task was promised to leaves before the holder answers: the task given back
    must run, not stay booked on the holder (found in review: it stayed for ever)."""
    go = tmp_path / "go"
    long = f"sh -c 'while [ ! -e {go} ]; do sleep 0.05; done'"
    m = wq.Manager(port=0, keepalive_interval=0.5, keepalive_timeout=20)
    holder = start_worker(m.port, "--cores", "1")
    idle = None
    try:
        for _ in range(6):
            m.submit(wq.Task("sh -c 'sleep 0'", cores=1))
        drain(m)
        for _ in range(2):
            m.submit(wq.Task(long, cores=1))
        assert wait_for(lambda: m.stats["tasks_prefetched"] >= 1), "the second should be prefetched"
        time.sleep(0.5)  # queued long enough to be taken back
        os.kill(holder.pid, signal.SIGSTOP)  # the holder reads the revoke later
        idle = start_worker(m.port, "--cores", "1")
        assert wait_for(lambda: m.stats["revocations_sent"] >= 1, timeout=20)
        removed = m.stats["workers_removed"]
        stop(idle)  # SIGTERM: it says bye, the master removes it at once
        assert wait_for(lambda: m.stats["workers_removed"] > removed, timeout=20)
        os.kill(holder.pid, signal.SIGCONT)  # it gives the task back: revoked=True
        time.sleep(1.0)
        go.touch()
        done = drain(m, timeout=20)
        assert len(done) == 2 and all(t.succeeded for t in done)
    finally:
        go.touch()
        try:
            os.kill(holder.pid, signal.SIGCONT)
        except OSError:
            pass
        stop(holder)
        if idle is not None:
            stop(idle)
        m.close()
