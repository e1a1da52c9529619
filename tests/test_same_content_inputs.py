"""Tasks whose uncached inputs have the same bytes (the same digest) on one worker: a queued task's
copy must survive the running task's cleanup. Found by the Parsl coprocess bench: a prefetched
task's input was removed when the task before it, with an identical input, ended."""
import workqueue as wq

from conftest import start_worker, stop


def test_identical_uncached_inputs_all_arrive(tmp_path):
    same = tmp_path / "same.txt"
    same.write_bytes(b"x" * 1000)
    with wq.Manager(port=0) as m:
        workers = [start_worker(m.port, "--cores", "1") for _ in range(2)]
        try:
            for i in range(6):  # quick ones first: the category's mean lets the rest be prefetched
                m.submit(wq.Task(f"cat in.txt > /dev/null", inputs=[(str(same), "in.txt")], cores=1))
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
    from workqueue import fastio
    from workqueue.cache import Cache

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
