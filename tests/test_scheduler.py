import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workqueue.constants import RESOURCE_NAMES
from workqueue.scheduling.scheduler import WHOLE, Scheduler, request_shape

NOTHING = {"cores": None, "memory": None, "disk": None, "gpus": None}


def declared(**kw):
    return {**NOTHING, **kw}


def test_a_task_that_declares_nothing_takes_the_whole_worker():
    s = Scheduler()
    s.add_worker("w", {"cores": 4, "memory": 1000, "disk": 1000, "gpus": 0})
    s.submit(1, NOTHING)
    s.submit(2, NOTHING)
    (a,) = s.schedule()
    assert a.task_id == 1 and a.allocation["cores"] == 4 and a.allocation["memory"] == 1000
    assert s.schedule() == []
    s.finish(1)
    assert [a.task_id for a in s.schedule()] == [2]


def test_declared_tasks_pack_until_the_worker_is_full():
    s = Scheduler()
    s.add_worker("w", {"cores": 4, "memory": 1000, "disk": 1000, "gpus": 0})
    for i in range(6):
        s.submit(i, declared(cores=1, memory=200))
    booked = s.schedule()
    assert len(booked) == 4  # cores run out before memory (4 x 200 <= 1000)
    assert s.worker_books("w").free["cores"] == 0


def test_memory_limits_packing_too():
    s = Scheduler()
    s.add_worker("w", {"cores": 8, "memory": 1000, "disk": 1000, "gpus": 0})
    for i in range(6):
        s.submit(i, declared(memory=400))
    assert len(s.schedule()) == 2


def test_priority_first_then_arrival_order():
    s = Scheduler()
    s.add_worker("w", {"cores": 1, "memory": 100, "disk": 100, "gpus": 0})
    s.submit(1, declared(cores=1))
    s.submit(2, declared(cores=1), priority=5)
    s.submit(3, declared(cores=1), priority=5)
    order = []
    for _ in range(3):
        (a,) = s.schedule()
        order.append(a.task_id)
        s.finish(a.task_id)
    assert order == [2, 3, 1]


def test_a_task_too_big_for_every_worker_blocks_nothing_and_is_reported():
    s = Scheduler()
    s.add_worker("w", {"cores": 2, "memory": 100, "disk": 100, "gpus": 0})
    s.submit(1, declared(cores=16))
    s.submit(2, declared(cores=1))
    assert [a.task_id for a in s.schedule()] == [2]
    assert s.unfit_shapes() == [((16.0, 0.0, 0.0, 0.0), 1)]
    s.add_worker("big", {"cores": 32, "memory": 100, "disk": 100, "gpus": 0})
    assert s.unfit_shapes() == []
    assert [(a.task_id, a.worker) for a in s.schedule()] == [(1, "big")]


def test_removing_a_worker_puts_its_tasks_back_in_place():
    s = Scheduler()
    s.add_worker("a", {"cores": 1, "memory": 0, "disk": 0, "gpus": 0})
    s.submit(1, declared(cores=1))
    s.submit(2, declared(cores=1))
    assert [a.task_id for a in s.schedule()] == [1]
    assert s.remove_worker("a") == [1]
    s.add_worker("b", {"cores": 1, "memory": 0, "disk": 0, "gpus": 0})
    assert [a.task_id for a in s.schedule()] == [1]  # still ahead of task 2


def test_gpu_tasks_default_to_no_cores():
    assert request_shape(declared(gpus=1)) == (0.0, 0.0, 0.0, 1.0)
    assert request_shape(NOTHING) == (WHOLE,)


def test_hungry_reflects_free_cores_not_just_a_count():
    s = Scheduler()
    s.add_worker("w", {"cores": 64, "memory": 0, "disk": 0, "gpus": 0})
    for i in range(20):
        s.submit(i, declared(cores=1))
    assert s.hungry(minimum=10)  # 20 one-core tasks cannot fill 64 cores
    for i in range(20, 100):
        s.submit(i, declared(cores=1))
    assert not s.hungry(minimum=10)


operations = st.lists(st.one_of(
    st.tuples(st.just("submit"), st.integers(0, 4), st.integers(0, 3000), st.integers(0, 2), st.integers(-2, 2)),
    st.tuples(st.just("worker"), st.integers(1, 8), st.integers(0, 4000), st.integers(0, 2)),
    st.tuples(st.just("remove"), st.integers(0, 5)),
    st.tuples(st.just("finish"), st.integers(0, 60)),
    st.tuples(st.just("cancel"), st.integers(0, 60)),
    st.tuples(st.just("schedule"),),
), max_size=80)


@settings(max_examples=300, deadline=None)
@given(operations)
def test_books_stay_balanced_and_no_worker_is_ever_overcommitted(ops):
    s = Scheduler()
    next_task, next_worker, workers, running = 0, 0, [], {}
    for op in ops:
        if op[0] == "submit":
            _, cores, memory, gpus, priority = op
            s.submit(next_task, declared(cores=cores or None, memory=memory or None, gpus=gpus or None), priority)
            next_task += 1
        elif op[0] == "worker":
            s.add_worker(next_worker, {"cores": op[1], "memory": op[2], "disk": 1000, "gpus": op[3]})
            workers.append(next_worker)
            next_worker += 1
        elif op[0] == "remove" and workers:
            w = workers.pop(op[1] % len(workers))
            for tid in s.remove_worker(w):
                running.pop(tid)
        elif op[0] in ("finish", "cancel") and next_task:
            tid = op[1] % next_task
            s.finish(tid)
            running.pop(tid, None)
        elif op[0] == "schedule":
            for a in s.schedule(prefetch_depth=lambda tid: (tid % 3) * (tid % 2)):
                assert a.task_id not in running, "a task was booked twice"
                running[a.task_id] = a.worker
        for w, books in s.workers():
            assert len(books.queued) <= books.prefetch_limit * 2
            assert not set(books.queued) & books.running
            for name in RESOURCE_NAMES:
                assert books.free[name] >= -1e-9, f"worker {w} over-committed on {name}"
                used = books.total[name] - books.free[name]
                assert abs(used - sum(s._tasks[t].allocation[name] for t in books.running)) < 1e-6
    # every task that fits some worker is eventually dispatched once workers free up
    for tid in list(running):
        s.finish(tid)
    s.schedule()
    for tid, entry in s._tasks.items():
        if entry.worker is None:
            assert not any(b.could_ever_fit(entry.shape) and not b.running for _, b in s.workers())


def test_prefetched_tasks_wait_on_a_full_worker_and_start_in_order():
    s = Scheduler()
    s.add_worker("w", {"cores": 1, "memory": 0, "disk": 0, "gpus": 0})
    for i in range(4):
        s.submit(i, declared(cores=1))
    booked = s.schedule(prefetch_depth=lambda tid: 1)
    assert [a.task_id for a in booked] == [0, 1]
    assert s.is_queued(1) and not s.is_queued(0)
    assert s.worker_books("w").free["cores"] == 0
    s.finish(0)  # the worker starts task 1 the moment task 0 ends; so do the books
    assert not s.is_queued(1) and s.worker_books("w").free["cores"] == 0
    assert [a.task_id for a in s.schedule(prefetch_depth=lambda tid: 1)] == [2]


def test_no_prefetch_without_approval_and_queued_tasks_return_with_their_worker():
    s = Scheduler()
    s.add_worker("w", {"cores": 1, "memory": 0, "disk": 0, "gpus": 0})
    for i in range(3):
        s.submit(i, declared(cores=1))
    assert [a.task_id for a in s.schedule(prefetch_depth=lambda tid: 0)] == [0]
    assert [a.task_id for a in s.schedule(prefetch_depth=lambda tid: 1)] == [1]
    assert s.remove_worker("w") == [0, 1]
    assert s.ready_count == 3


def test_schedule_for_one_worker_books_only_on_it():
    s = Scheduler()
    for name in ("a", "b"):
        s.add_worker(name, {"cores": 1, "memory": 1000, "disk": 1000, "gpus": 0})
    for i in range(12):
        s.submit(i, declared(cores=1))
    s.drain_worker("a")
    booked = s.schedule(lambda task_id: 2, only="b")
    assert [(a.worker, a.queued) for a in booked] == [("b", False), ("b", True), ("b", True)]
    assert s.schedule(lambda task_id: 2, only="gone") == []

    s = Scheduler()
    for name in ("a", "b", "c"):
        s.add_worker(name, {"cores": 1, "memory": 1000, "disk": 1000, "gpus": 0})
    for i in range(12):
        s.submit(i, declared(cores=1))
    booked = s.schedule(lambda task_id: 2, only="b")  # the idle workers first, then b's queue
    assert sorted((a.worker, a.queued) for a in booked) == [("a", False), ("b", False), ("b", True),
                                                           ("b", True), ("c", False)]


def test_prefetch_per_worker_is_capped_whatever_its_cores():
    from workqueue.scheduling.scheduler import QUEUED_MAX
    s = Scheduler()
    s.add_worker("big", {"cores": 64, "memory": 1000, "disk": 1000, "gpus": 0})
    for i in range(64 + 2 * QUEUED_MAX):
        s.submit(i, declared(cores=1))
    booked = s.schedule(lambda task_id: 64)
    assert sum(a.queued for a in booked) == QUEUED_MAX and sum(not a.queued for a in booked) == 64


def one_core_workers(s, *names, cores=1):
    for name in names:
        s.add_worker(name, {"cores": cores, "memory": 1000, "disk": 1000, "gpus": 0})


def test_a_blocked_worker_gets_no_new_tasks_keeps_its_own_and_takes_again_when_unblocked():
    s = Scheduler()
    one_core_workers(s, "a", "b", cores=2)
    for i in range(10):
        s.submit(i, declared(cores=1))
    assert {a.worker for a in s.schedule()} == {"a", "b"}
    s.block_worker("a")
    assert s.blocked_count == 1
    running_on_a = set(s.worker_books("a").running)
    for task_id in running_on_a:
        s.finish(task_id)  # what ran there finishes; nothing new goes there
    assert {a.worker for a in s.schedule(prefetch_depth=lambda tid: 1)} == {"b"}  # queued on b
    assert {a.worker for a in s.schedule(only="a")} <= {"b"}
    s.block_worker("a", False)
    assert s.blocked_count == 0
    assert {a.worker for a in s.schedule()} == {"a"}


def test_lifo_takes_the_newest_of_equal_priority_first_but_priority_still_wins():
    s = Scheduler(task_order="lifo")
    one_core_workers(s, "w")
    s.submit(1, declared(cores=1))
    s.submit(2, declared(cores=1))
    s.submit(3, declared(cores=1))
    s.submit(4, declared(cores=1), priority=-1)
    order = []
    for _ in range(4):
        (a,) = s.schedule()
        order.append(a.task_id)
        s.finish(a.task_id)
    assert order == [3, 2, 1, 4]


def test_files_sends_a_task_to_the_worker_caching_most_of_its_inputs():
    s = Scheduler(algorithm="files")
    one_core_workers(s, "a", "b", "c")
    cached = {"b": 10.0, "c": 99.0}
    for i in range(2):
        s.submit(i, declared(cores=1))
    calls = []

    def cached_bytes(task_id):
        calls.append(task_id)
        return (lambda worker: cached.get(worker, 0.0)) if task_id == 0 else None

    booked = {a.task_id: a.worker for a in s.schedule(cached_bytes=cached_bytes)}
    assert booked[0] == "c"  # most bytes cached there
    assert booked[1] in ("a", "b")  # no cached inputs: first fit
    assert sorted(calls) == [0, 1]


@pytest.mark.parametrize("algorithm", ["files", "fcfs"])
def test_a_prefetched_files_task_waits_on_the_worker_caching_its_inputs(algorithm):
    """Both workers are busy; the task that worker b caches inputs for is queued on b even when
    a frees room first (``only="a"``), under FILES; FCFS queues it on a."""
    s = Scheduler(algorithm=algorithm)
    one_core_workers(s, "a", "b")
    s.submit(0, declared(cores=1))
    s.submit(1, declared(cores=1))
    assert {a.worker for a in s.schedule()} == {"a", "b"}
    s.submit(2, declared(cores=1))
    s.submit(3, declared(cores=1))

    def cached_bytes(task_id):
        return (lambda worker: 64.0 if worker == "b" else 0.0) if task_id == 2 else None

    holders_asked = []

    def input_holders(task_id):
        holders_asked.append(task_id)
        return {"b"} if task_id == 2 else set()

    queued = {a.task_id: a.worker for a in s.schedule(lambda tid: 1, only="a", cached_bytes=cached_bytes,
                                                      input_holders=input_holders)}
    assert all(s.is_queued(task_id) for task_id in queued)
    if algorithm == "files":
        assert queued == {2: "b", 3: "a"}  # 3 caches nothing: it waits where the room will be
        assert holders_asked == [2, 3]
    else:
        assert queued == {2: "a"} and holders_asked == []  # one worker looked at, one task per unit of depth


def test_a_prefetched_files_task_looks_only_at_the_workers_holding_its_inputs():
    """1,000 full workers, none holding the task's inputs but the one it is queued on: scored at
    no other worker (the review found every worker scored for every such task)."""
    s = Scheduler(algorithm="files")
    names = [f"w{i}" for i in range(1000)]
    one_core_workers(s, *names)
    for i in range(1000):
        s.submit(i, declared(cores=1))
    s.schedule()
    for i in range(1000, 1100):
        s.submit(i, declared(cores=1))
    scored = []

    def cached_bytes(task_id):
        return lambda worker: scored.append(worker) or (1.0 if worker == "w7" else 0.0)

    booked = s.schedule(lambda tid: 1, only="w3", cached_bytes=cached_bytes, input_holders=lambda tid: {"w7"})
    assert [a.worker for a in booked] == ["w7", "w3"]  # w7's one place, then w3's own
    assert set(scored) <= {"w3", "w7"}


def test_fcfs_ignores_cached_bytes():
    s = Scheduler(algorithm="fcfs")
    one_core_workers(s, "a", "b")
    s.submit(0, declared(cores=1))
    (a,) = s.schedule(cached_bytes=lambda task_id: (lambda worker: 100.0 if worker == "b" else 0.0))
    assert a.worker == "a"


def test_worst_fit_picks_the_worker_with_most_free_resources():
    s = Scheduler(algorithm="worst_fit")
    s.add_worker("small", {"cores": 2, "memory": 1000, "disk": 1000, "gpus": 0})
    s.add_worker("big", {"cores": 8, "memory": 1000, "disk": 1000, "gpus": 0})
    for i in range(4):
        s.submit(i, declared(cores=1))
    booked = s.schedule()
    assert [a.worker for a in booked] == ["big"] * 4  # big keeps the most free cores throughout


def test_random_spreads_tasks_and_never_overcommits():
    s = Scheduler(algorithm="random", seed=3)
    one_core_workers(s, *"abcdefgh", cores=2)
    for i in range(40):
        s.submit(i, declared(cores=1))
    booked = s.schedule()
    assert len(booked) == 16
    assert all(books.free["cores"] == 0 for _, books in s.workers())
