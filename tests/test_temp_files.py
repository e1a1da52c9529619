"""Temporary files (File.temp / Manager.declare_temp): outputs that stay in workers' caches and feed
later tasks without passing through the master; lineage when the workers holding them die."""
import hashlib
import os

import pytest
from conftest import drain, start_worker, stop, wait_for

import workqueue as wq
from workqueue.constants import Result

MiB = 1 << 20


def produce(i, size_mib=1):
    """A command writing ``out``: ``size_mib`` MiB that depend on ``i``."""
    return f"python3 -c \"import sys; sys.stdout.buffer.write(({i}).to_bytes(4, 'big') * ({size_mib} << 18))\" > out"


def expected_digest(i, size_mib=1):
    return hashlib.sha256(i.to_bytes(4, "big") * (size_mib << 18)).hexdigest()


CONSUME = "python3 -c \"import hashlib; print(hashlib.sha256(open('in', 'rb').read()).hexdigest())\""


def test_a_two_stage_workflow_keeps_its_intermediates_off_the_master(manager):
    n = 6
    temps = [manager.declare_temp() for _ in range(n)]
    with wq.local_workers(2, manager, cores=2):
        for i, temp in enumerate(temps):
            manager.submit(wq.Task(produce(i, 4), outputs=[(temp, "out")], cores=1))
        consumers = {manager.submit(wq.Task(CONSUME, inputs=[(temp, "in")], cores=1)): i
                     for i, temp in enumerate(temps)}
        done = drain(manager, 120)
    assert all(t.succeeded for t in done), [(t.id, t.result, t.output) for t in done]
    for t in done:
        if t.id in consumers:
            assert t.output.strip() == expected_digest(consumers[t.id], 4)
    stats = manager.stats
    assert stats["bytes_sent"] + stats["bytes_received"] < MiB  # 6 x 4 MiB made and read, none through here
    assert stats["temps_removed"] == n  # read, and needed by no pending task: gone from the workers


def test_fetch_brings_a_temporary_file_back_as_bytes_or_to_a_path(manager, tmp_path):
    temp = wq.File.temp()
    with wq.local_workers(1, manager, cores=1):
        manager.submit(wq.Task("printf 'made on a worker' > out", outputs=[temp.named("out")]))
        assert drain(manager)[0].succeeded
        assert manager.fetch(temp) == b"made on a worker"
        assert manager.fetch(temp, str(tmp_path / "back.txt")) is None
    assert (tmp_path / "back.txt").read_bytes() == b"made on a worker"


def test_fetch_of_a_file_never_made_says_so(manager):
    temp = manager.declare_temp()
    with pytest.raises(FileNotFoundError, match="no task writes"):
        manager.fetch(temp)
    with pytest.raises(TypeError, match="temporary file"):
        manager.fetch(wq.File("/etc/hostname"))


def test_a_task_reading_a_temporary_file_no_task_writes_fails_clearly(manager):
    manager.submit(wq.Task("cat in", inputs=[(wq.File.temp(), "in")]))
    task = drain(manager)[0]
    assert task.result == Result.INPUT_MISSING
    assert "no task writes the temporary file" in task.output


def test_readers_of_a_temporary_file_whose_producer_failed_fail_with_input_missing(manager):
    temp = manager.declare_temp()
    with wq.local_workers(1, manager, cores=1):
        producer = manager.submit(wq.Task("echo partial > out; exit 3", outputs=[(temp, "out")]))
        reader = manager.submit(wq.Task("cat in", inputs=[(temp, "in")]))
        done = {t.id: t for t in drain(manager, 60)}
    assert done[producer].return_status == 3
    assert done[reader].result == Result.INPUT_MISSING
    assert f"task {producer}" in done[reader].output


def test_a_consumer_waits_for_its_producer_whatever_the_order_they_finish(manager):
    temp = manager.declare_temp()
    with wq.local_workers(1, manager, cores=2):
        manager.submit(wq.Task("sleep 1; echo late > out", outputs=[(temp, "out")], cores=1))
        reader = manager.submit(wq.Task("cat in", inputs=[(temp, "in")], cores=1))
        done = {t.id: t for t in drain(manager, 60)}
    assert done[reader].succeeded and done[reader].output == "late\n"


def test_consumers_finish_through_lineage_when_the_worker_holding_the_chain_is_killed(manager):
    """p1 writes T1; p2 reads T1, writes T2; both on worker A, which is then killed: a reader of T2
    on worker B needs p2 run again, which needs p1 run again (recursively)."""
    t1, t2 = manager.declare_temp(), manager.declare_temp()
    a = start_worker(manager.port, "--cores", "1")
    try:
        manager.submit(wq.Task(produce(7), outputs=[(t1, "out")], cores=1))
        manager.submit(wq.Task("cp in out", inputs=[(t1, "in")], outputs=[(t2, "out")], cores=1))
        assert all(t.succeeded for t in drain(manager, 60))
    finally:
        a.kill()
        a.wait()
    assert wait_for(lambda: manager.stats["workers_connected"] == 0, timeout=20)
    b = start_worker(manager.port, "--cores", "1")
    try:
        reader = manager.submit(wq.Task(CONSUME, inputs=[(t2, "in")], cores=1))
        done = drain(manager, 120)
    finally:
        stop(b)
    assert [t.id for t in done] == [reader]  # recovery tasks are not handed to the user
    assert done[0].succeeded and done[0].output.strip() == expected_digest(7)
    assert manager.stats["tasks_recovered"] == 2


def test_a_worker_killed_between_the_stages_leaves_every_consumer_correct(manager):
    n = 4
    temps = [manager.declare_temp() for _ in range(n)]
    a = start_worker(manager.port, "--cores", "2")
    b = start_worker(manager.port, "--cores", "2")
    try:
        for i, temp in enumerate(temps):
            manager.submit(wq.Task(produce(i), outputs=[(temp, "out")], cores=1))
        assert all(t.succeeded for t in drain(manager, 60))
        a.kill()
        a.wait()
        assert wait_for(lambda: manager.stats["workers_connected"] == 1, timeout=20)
        consumers = {manager.submit(wq.Task(CONSUME, inputs=[(temp, "in")], cores=1)): i
                     for i, temp in enumerate(temps)}
        done = drain(manager, 120)
    finally:
        stop(a)
        stop(b)
    assert sorted(t.id for t in done) == sorted(consumers)
    for t in done:
        assert t.succeeded and t.output.strip() == expected_digest(consumers[t.id])


def test_temporary_files_are_not_sent_as_outputs_and_ordinary_outputs_still_are(manager, tmp_path):
    temp = manager.declare_temp()
    with wq.local_workers(1, manager, cores=1):
        manager.submit(wq.Task("echo kept > t; echo back > o", outputs=[(temp, "t"), str(tmp_path / "o")]))
        assert drain(manager)[0].succeeded
        assert manager.stats["bytes_received"] == len("back\n")
        assert manager.fetch(temp) == b"kept\n"
    assert (tmp_path / "o").read_text() == "back\n"
    assert not os.path.exists(tmp_path / "t")


def test_with_two_replicas_a_killed_holder_costs_no_rerun(manager, tmp_path):
    manager.tune("temp-replica-count", 2)
    temp = manager.declare_temp()
    workers = []
    for n in range(3):
        (tmp_path / f"w{n}").mkdir()
        workers.append(start_worker(manager.port, "--cores", "1", "-s", str(tmp_path / f"w{n}")))
    try:
        assert wait_for(lambda: manager.stats["workers_connected"] == 3, timeout=60)
        manager.submit(wq.Task(produce(3), outputs=[(temp, "out")], cores=1))
        assert drain(manager, 60)[0].succeeded
        assert wait_for(lambda: manager.stats["peer_transfers"] == 1, timeout=30)  # the second copy
        holders = [p for p in tmp_path.glob("w*/worker-*") if any(f.is_file() for f in (p / "cache").iterdir())]
        assert len(holders) == 2
        victim = int(holders[0].name.rsplit("-", 1)[1])
        os.kill(victim, 9)
        assert wait_for(lambda: manager.stats["workers_connected"] == 2, timeout=20)
        manager.submit(wq.Task(CONSUME, inputs=[(temp, "in")], cores=1))
        done = drain(manager, 60)
    finally:
        for process in workers:
            stop(process)
    assert done[0].succeeded and done[0].output.strip() == expected_digest(3)
    assert manager.stats["tasks_recovered"] == 0


def test_canceling_the_producer_fails_its_waiting_readers(manager):
    temp = manager.declare_temp()
    producer = manager.submit(wq.Task("sleep 30; echo x > out", outputs=[(temp, "out")]))  # no worker: it waits
    reader = manager.submit(wq.Task("cat in", inputs=[(temp, "in")]))
    manager.cancel(producer)
    task = drain(manager, 30)[0]
    assert task.id == reader and task.result == Result.INPUT_MISSING
    assert "canceled" in task.output


def test_a_worker_drops_its_temporary_files_when_its_master_goes(tmp_path):
    m = wq.Manager(port=0)
    worker = start_worker(m.port, "--cores", "1", "-s", str(tmp_path))
    try:
        temp = m.declare_temp()
        m.submit(wq.Task("echo kept > out", outputs=[(temp, "out")]))
        assert drain(m, 60)[0].succeeded

        def cached_files():
            return [p for p in tmp_path.glob("worker-*/cache/*") if p.is_file()]
        assert len(cached_files()) == 1
        m.close()
        assert wait_for(lambda: not cached_files(), timeout=20)
        assert worker.poll() is None  # it waits for a master again
    finally:
        m.close()
        stop(worker)


def test_a_file_kept_until_pruned_outlives_its_readers_and_prune_removes_it(manager):
    temp = wq.File.temp(until_pruned=True)
    with wq.local_workers(1, manager, cores=1):
        manager.submit(wq.Task(produce(5), outputs=[(temp, "out")]))
        manager.submit(wq.Task(CONSUME, inputs=[(temp, "in")]))
        assert all(t.succeeded for t in drain(manager, 60))
        assert manager.stats["temps_removed"] == 0  # read, and no task pending reads it: it stays all the same
        assert hashlib.sha256(manager.fetch(temp)).hexdigest() == expected_digest(5)
        manager.prune([temp])
        assert wait_for(lambda: manager.stats["temps_removed"] == 1)
        with pytest.raises(FileNotFoundError):
            manager.fetch(temp)
        reader = manager.submit(wq.Task(CONSUME, inputs=[(temp, "in")]))  # made again by its producer
        done = drain(manager, 60)
    assert [t.id for t in done] == [reader] and done[0].output.strip() == expected_digest(5)
    assert manager.stats["tasks_recovered"] == 1


def test_a_file_pruned_and_forgotten_fails_its_later_readers(manager):
    temp = wq.File.temp(until_pruned=True)
    with wq.local_workers(1, manager, cores=1):
        manager.submit(wq.Task("echo once > out", outputs=[(temp, "out")]))
        assert drain(manager, 60)[0].succeeded
        manager.prune([temp], forget=True)
        assert wait_for(lambda: manager.stats["temps"] == 0)
        manager.submit(wq.Task("cat in", inputs=[(temp, "in")]))
        task = drain(manager, 60)[0]
    assert task.result == Result.INPUT_MISSING and "no task writes" in task.output
    with pytest.raises(TypeError, match="temporary files"):
        manager.prune(temp)
    with pytest.raises(TypeError, match="temporary files"):
        manager.prune([wq.File("/etc/hostname")])


def test_a_worker_serves_more_fetches_one_after_another_than_peers_at_once(manager):
    """Each fetch is a new peer of the worker's peer server: its place must be free once its file
    is through, not only after the server's idle timeout."""
    from workqueue.worker.peer_server import CLIENTS_MAX
    temp = manager.declare_temp()
    with wq.local_workers(1, manager, cores=1):
        manager.submit(wq.Task("printf served > out", outputs=[(temp, "out")]))
        assert drain(manager, 60)[0].succeeded
        assert all(manager.fetch(temp) == b"served" for _ in range(CLIENTS_MAX + 6))
