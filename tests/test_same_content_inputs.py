"""Tasks whose uncached inputs have the same bytes (the same digest) on one worker: a queued task's
copy must survive the running task's cleanup. Found by the Parsl coprocess bench: a prefetched
task's input was removed when the task before it, with an identical input, ended."""
import pytest
from conftest import start_worker, stop
from test_worker_guards import FakeSession, cached_file, task

import workqueue as wq
from workqueue.constants import Result
from workqueue.data import fastio
from workqueue.data.cache import Cache
from workqueue.worker.tasks import TaskRunner


def test_identical_uncached_inputs_all_arrive(tmp_path):
    same = tmp_path / "same.txt"
    same.write_bytes(b"x" * 1000)
    with wq.Manager(port=0) as m:
        workers = [start_worker(m.port, "--cores", "1") for _ in range(2)]
        try:
            for i in range(6):  # quick ones first: the category's mean lets the rest be prefetched
                m.submit(wq.Task("cat in.txt > /dev/null", inputs=[(str(same), "in.txt")], cores=1))
            for _ in range(6):
                assert m.wait(30).succeeded
            tasks = [wq.Task("true", inputs=[(str(same), "in.txt")], cores=1, max_retries=1)
                     for _ in range(2000)]
            for t in tasks:
                m.submit(t)
            done = [m.wait(60) for _ in tasks]
        finally:
            for worker in workers:
                stop(worker)
    assert m.stats["tasks_prefetched"] > 0
    failed = [t for t in done if t is None or not t.succeeded]
    assert not failed, f"{len(failed)} of 2000 failed, e.g. {failed[0].result}: {failed[0].output}"


def test_the_cache_keeps_a_file_sent_for_a_task_until_that_task_stages_it(tmp_path):
    def send(cache, xfer):
        data = b"same bytes"
        digest = fastio.hash_bytes(data)
        incoming = cache.receive(digest, len(data), xfer)
        assert incoming.add(0, memoryview(data), True, digest)
        cache.admit(digest, incoming, 0o644)
        return digest

    cache = Cache(str(tmp_path / "cache"), budget_bytes=5)  # over budget: eviction must spare it too
    digest = send(cache, 1)
    cache.use(digest, keep=False)        # task A stages its copy
    send(cache, 2)                       # task B's copy arrives while A runs
    cache.release(digest)                # A ends before B's message is read
    assert cache.has(digest)
    cache.use(digest, keep=False)        # B stages it
    cache.release(digest)
    assert not cache.has(digest)         # nobody awaits or uses it: gone
    send(cache, 3)
    cache.not_awaited(digest)            # its task was refused
    assert not cache.has(digest)


@pytest.fixture
def runner(tmp_path):
    ws = tmp_path / "ws"
    ws.mkdir()
    cache = Cache(str(ws / "cache"))
    tasks = TaskRunner(str(ws), {"cores": 2.0, "memory": 100.0, "disk": 100.0, "gpus": 0.0}, cache)
    yield tasks
    tasks.close()


def test_a_kept_input_sent_for_a_task_whose_other_input_is_missing_stays(runner):
    """Master: task inputs [A cached (it believes the worker has it: no put), D cache=True (put sent;
    master adds D to conn.cached at send time)]. The worker evicted A (cache-update in flight).
    Stage: A missing -> FORSAKEN; D never staged -> _unawait -> not_awaited(D): keep is only set
    by use(), so D is deleted, silently (no cache-update). The master will never send D again."""
    absent = fastio.hash_bytes(b"evicted earlier")
    d = cached_file(runner.cache, b"kept input")
    session = FakeSession()
    runner.accept(session, task(7, inputs=[[absent, "a", 0o644, True], [d, "d", 0o644, True]]),
                  b"", lambda sandbox, digest: (Result.FORSAKEN, "input a did not arrive intact"))
    assert session.results and session.results[0]["result"] == Result.FORSAKEN
    removed_told = [m for m in session.sent if m.type == "cache-update" and d in m["removed"]]
    assert runner.cache.has(d) or removed_told, \
        "a cache=True input the master counts as cached was deleted without telling it"


def test_a_kept_input_of_a_refused_task_stays_or_the_master_is_told(runner):
    d = cached_file(runner.cache, b"kept input 2")
    session = FakeSession()
    runner.accept(session, task(8, resources={"cores": 64}, inputs=[[d, "d", 0o644, True]]), b"",
                  lambda s, dg: (Result.FORSAKEN, ""))
    removed_told = [m for m in session.sent if m.type == "cache-update" and d in m["removed"]]
    assert runner.cache.has(d) or removed_told


def test_a_kept_input_survives_its_tasks_failure_before_staging(tmp_path):
    big = tmp_path / "big"
    big.write_bytes(b"b" * (3 << 19))      # 1.5 MiB: the shape's disk floor is 1 MB, the worker's budget 1 MiB
    kept = tmp_path / "kept"
    kept.write_bytes(b"kept bytes\n")
    with wq.Manager(port=0) as m:
        worker = start_worker(m.port, "--disk", "1")
        try:
            first = wq.Task("true", inputs=[wq.File(str(big), "big"), wq.File(str(kept), "kept", cache=True)])
            m.submit(first)
            assert m.wait(30) is first  # it fails: its other input cannot fit
            second = wq.Task("cat kept", inputs=[wq.File(str(kept), "kept", cache=True)], max_retries=3)
            m.submit(second)
            t2 = m.wait(30)
        finally:
            stop(worker)
    assert t2 is not None and t2.succeeded, (t2.result, t2.output)
