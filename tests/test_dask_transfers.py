"""workqueue.dask.get with worker transfers, on real worker processes: inner results stay on the
workers as temporary files (fetched peer to peer), only the requested keys come back, files are
pruned as soon as no task needs them, and lineage answers for a worker killed mid-graph."""
import functools
import os
import sys

import pytest

pytest.importorskip("dask")

import cloudpickle  # noqa: E402
import dask  # noqa: E402
import numpy as np  # noqa: E402
from conftest import start_worker, stop, wait_for  # noqa: E402
from dask import delayed  # noqa: E402

import workqueue as wq  # noqa: E402
import workqueue.dask as wqdask  # noqa: E402

cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the workers cannot import tests/

MiB = 1 << 20


class CountingManager(wq.Manager):
    """A manager that adds up the bytes of the function outcomes (the results) it hands back: with
    bytes_sent and bytes_received, all the data that reaches the master."""

    outcome_bytes = 0

    def wait(self, timeout=None):
        task = super().wait(timeout)
        if task is not None:
            self.outcome_bytes += len(task._outcome.get("stdout") or b"")
        return task


@pytest.fixture
def manager():
    m = CountingManager(port=0, host="127.0.0.1", keepalive_interval=0.5, keepalive_timeout=3)
    yield m
    m.close()


def through_master(m):
    stats = m.stats
    return stats["bytes_sent"] + stats["bytes_received"] + m.outcome_bytes


def block(i, mib):
    """``mib`` MiB of float64, all ``i``."""
    return np.full(mib * MiB // 8, float(i))


def add(a, b):
    return a + b


def total(a):
    return float(a.sum())


def tree(leaves):
    """Pairwise sums down to one array, and its total: len(leaves) - 1 + 1 more tasks."""
    while len(leaves) > 1:
        pairs = [delayed(add)(*leaves[i:i + 2]) if i + 1 < len(leaves) else leaves[i] for i in range(0, len(leaves), 2)]
        leaves = pairs
    return delayed(total)(leaves[0])


def cached_files(root):
    return [p for p in root.glob("w*/worker-*/cache/*") if p.is_file()]


def test_a_100_task_graph_with_64_mib_intermediates_moves_none_through_the_master(manager, tmp_path):
    leaves = [delayed(block)(i, 64) for i in range(50)]
    answer = tree(leaves)  # 50 blocks, 49 sums, 1 total: 100 tasks, 99 results of 64 MiB
    assert len(dict(answer.__dask_graph__())) == 100
    workers = []
    for n in range(2):
        (tmp_path / f"w{n}").mkdir()
        workers.append(start_worker(manager.port, "--cores", "1", "-s", str(tmp_path / f"w{n}")))
    try:
        assert wait_for(lambda: manager.stats["workers_connected"] == 2, timeout=60)
        ours = answer.compute(scheduler=functools.partial(wqdask.get, manager=manager))
        stats = manager.stats
        assert ours == answer.compute(scheduler="sync") == 64 * MiB // 8 * sum(range(50))
        assert through_master(manager) < MiB  # 99 x 64 MiB made, none of it here
        assert stats["bytes_peer"] >= 64 * MiB  # sums read blocks made on the other worker
        assert wait_for(lambda: manager.stats["temps_removed"] >= 99, timeout=20)  # each pruned once read
        assert wait_for(lambda: not cached_files(tmp_path), timeout=20)  # nothing left on the workers
        assert wait_for(lambda: manager.stats["temps"] == 0, timeout=20)  # nor in the master's books
    finally:
        for process in workers:
            stop(process)


def test_the_same_graph_with_results_returned_moves_them_through_the_master(manager):
    answer = tree([delayed(block)(i, 2) for i in range(6)])
    with wq.local_workers(2, manager, cores=1):
        ours = answer.compute(scheduler=functools.partial(wqdask.get, manager=manager), worker_transfers=False)
    assert ours == answer.compute(scheduler="sync")
    assert through_master(manager) > 10 * 2 * MiB  # 11 results of 2 MiB came back (and some went out again)


def test_files_are_pruned_while_the_graph_runs(manager, tmp_path):
    """A chain of 30 steps of 1 MiB each: at no point do more than a few steps' files exist."""
    step = delayed(block)(0, 1)
    for _ in range(29):
        step = delayed(add)(step, 1.0)
    answer = delayed(total)(step)
    (tmp_path / "w0").mkdir()
    worker = start_worker(manager.port, "--cores", "1", "-s", str(tmp_path / "w0"))
    seen = []
    try:
        assert wait_for(lambda: manager.stats["workers_connected"] == 1, timeout=60)
        ours = answer.compute(scheduler=functools.partial(wqdask.get, manager=manager),
                              progress=lambda done, total: seen.append(len(cached_files(tmp_path))))
        assert ours == 29 * MiB // 8
        assert wait_for(lambda: not cached_files(tmp_path), timeout=20)
    finally:
        stop(worker)
    assert len(seen) == 31 and max(seen) <= 4  # 30 files were made, one after another


def test_a_worker_killed_mid_graph_still_gives_the_right_answer(manager, tmp_path):
    """20 blocks on two workers, then one sum of all of them: once the blocks are made, the worker
    holding most of them is killed; lineage makes its blocks again on the other."""
    blocks = [delayed(block)(i, 4) for i in range(20)]
    answer = delayed(total)(delayed(sum)(blocks))
    workers = []
    for n in range(2):
        (tmp_path / f"w{n}").mkdir()
        workers.append(start_worker(manager.port, "--cores", "1", "-s", str(tmp_path / f"w{n}")))
    killed = []

    def kill_once_the_blocks_are_made(done, _):
        if done >= 20 and not killed:
            holders = sorted(tmp_path.glob("w*/worker-*"), key=lambda p: -len(list((p / "cache").iterdir())))
            os.kill(int(holders[0].name.rsplit("-", 1)[1]), 9)
            killed.append(holders[0])
            assert wait_for(lambda: manager.stats["workers_connected"] == 1, timeout=20)

    try:
        assert wait_for(lambda: manager.stats["workers_connected"] == 2, timeout=60)
        ours = answer.compute(scheduler=functools.partial(wqdask.get, manager=manager),
                              progress=kill_once_the_blocks_are_made)
    finally:
        for process in workers:
            stop(process)
    assert killed
    assert ours == answer.compute(scheduler="sync") == 4 * MiB // 8 * sum(range(20))
    assert manager.stats["tasks_recovered"] >= 1


def grows(i, previous):
    """Small for the first keys of its group, large after: the group learns it needs files."""
    return np.full(8 if i < 4 else MiB // 8, float(i))


def test_a_group_whose_results_grow_gets_files_and_its_large_results_stay_on_the_workers(manager):
    parts = [delayed(grows)(0, None, dask_key_name=("grows", 0))]
    for i in range(1, 12):  # one after another: the first ones are back before the large ones go out
        parts.append(delayed(grows)(i, parts[-1], dask_key_name=("grows", i)))
    answer = delayed(total)(delayed(np.concatenate)(parts))
    with wq.local_workers(2, manager, cores=1):
        ours = answer.compute(scheduler=functools.partial(wqdask.get, manager=manager))
    assert ours == answer.compute(scheduler="sync")
    assert through_master(manager) < MiB  # 8 results of 1 MiB, none of them here


def test_a_large_requested_result_comes_back_from_its_worker(manager):
    x = delayed(block)(3, 8)
    y = delayed(add)(x, 1.0)
    with wq.local_workers(2, manager, cores=1):
        ours_x, ours_y = dask.compute(x, y, scheduler=functools.partial(wqdask.get, manager=manager))
    np.testing.assert_array_equal(ours_x, block(3, 8))
    np.testing.assert_array_equal(ours_y, block(4, 8))
    assert manager.outcome_bytes < MiB  # fetched from the worker, not sent back with the task


def test_worker_transfers_and_its_older_name(manager):
    graph = {"a": (block, 1, 1), "b": (total, "a")}
    with wq.local_workers(1, manager, cores=1):
        assert wqdask.get(graph, "b", manager=manager, lazy_transfers=False) == MiB // 8
        assert wqdask.get(graph, "b", manager=manager, worker_transfers=True, lazy_transfers=True) == MiB // 8
    with pytest.raises(TypeError, match="disagree"):
        wqdask.get(graph, "b", manager=manager, worker_transfers=True, lazy_transfers=False)
    with pytest.raises(ValueError, match="inline_max"):
        wqdask.get(graph, "b", manager=manager, inline_max=-1)


# -- what a worker runs, called here: results in files or back, and when they are too large ------

def nodes(graph):
    from dask._task_spec import convert_legacy_graph
    return list(convert_legacy_graph(graph).items())


def test_remote_run_writes_large_results_to_their_files_and_returns_small_ones(tmp_path, monkeypatch):
    from workqueue.dask import remote
    monkeypatch.chdir(tmp_path)
    tasks = nodes({"big": (block, 1, 1), "small": (total, "big")})
    results = remote.run(tasks, {}, {}, {"big": "temp-big", "small": "temp-small"}, 1000)
    assert results["big"] is None and (tmp_path / "temp-big").stat().st_size > MiB
    assert cloudpickle.loads(results["small"]) == MiB // 8 and (tmp_path / "temp-small").stat().st_size == 0
    downstream = nodes({"big": (block, 1, 1), "again": (total, "big")})[1:]
    assert cloudpickle.loads(remote.run(downstream, {}, {"big": "temp-big"})["again"]) == MiB // 8
    (tmp_path / "temp-big").write_bytes(b"")
    with pytest.raises(RuntimeError, match="empty"):
        remote.run(downstream, {}, {"big": "temp-big"})


def test_remote_run_refuses_to_return_what_is_too_large(monkeypatch, tmp_path):
    from workqueue.dask import remote
    monkeypatch.chdir(tmp_path)
    with pytest.raises(remote.TooLargeToReturn) as raised:  # worker transfers, but no file for it
        remote.run(nodes({"big": (block, 1, 1)}), {}, {}, {}, 1000)
    assert raised.value.key == "big" and raised.value.size > MiB
    monkeypatch.setattr(remote, "RETURN_MAX", 3 * MiB)
    three = nodes({f"b{i}": (block, i, 1) for i in range(3)})
    assert len(remote.run(three[:1], {})) == 1  # alone, it comes back whatever its size
    with pytest.raises(remote.TooLargeToReturn, match="b2"):  # together, past RETURN_MAX
        remote.run(three, {})


def inc(x):
    return x + 1


def test_an_alias_of_a_result_in_a_file_shares_the_file_until_neither_needs_it(manager):
    graph = {"one": 1, "two": (inc, "one"), "alias": "two", "three": (inc, "alias"), "four": (inc, "two")}
    with wq.local_workers(2, manager, cores=1):
        assert wqdask.get(graph, ["alias", "three", "four"], manager=manager, inline_max=0) == (2, 3, 3)
    assert wait_for(lambda: manager.stats["temps"] == 0, timeout=20)
