"""CCTools' capacity estimate: how many workers this master could keep busy (pure, then a real
master and worker, then the factory's --capacity cap)."""
import pytest
from click.testing import CliRunner
from conftest import drain, start_worker, stop

import workqueue as wq
from workqueue.cli import status as status_cli
from workqueue.factory import Factory
from workqueue.scheduling.capacity import DEFAULT_TASKS, FIGURES, Capacity


def test_the_ratio_of_run_to_overhead_is_the_workers_kept_busy():
    c = Capacity()
    assert c.figures() == dict.fromkeys(FIGURES, 0)
    for _ in range(5):
        c.add(2.0, 2.01, {"cores": 2, "memory": 100, "disk": 10})  # 10 ms of overhead per 2 s task
    figures = c.figures()
    assert figures["capacity_instantaneous"] == 200 == figures["capacity_tasks"] == figures["capacity_weighted"]
    assert (figures["capacity_cores"], figures["capacity_memory"], figures["capacity_disk"]) == (400, 20000, 2000)


def test_short_tasks_never_estimate_below_the_floor_and_the_weighted_figure_moves_slowly():
    c = Capacity()
    c.add(1.0, 1.01, {"cores": 1})  # 100
    for _ in range(19):
        c.add(0.001, 1.001, {"cores": 1})  # overhead-bound: the ratio falls near 0
    figures = c.figures()
    assert figures["capacity_tasks"] == DEFAULT_TASKS
    assert figures["capacity_instantaneous"] < DEFAULT_TASKS < figures["capacity_weighted"] < 100


def test_a_master_estimates_its_capacity_once_asked(manager):
    worker = start_worker(manager.port, "--cores", "1")
    try:
        manager.submit(wq.Task("sleep 0.2", cores=1))
        drain(manager)
        assert manager.stats["capacity_tasks"] == 0  # not asked yet
        manager.estimate_capacity()
        for _ in range(3):
            manager.submit(wq.Task("sleep 0.2", cores=1))
        drain(manager)
    finally:
        stop(worker)
    stats = manager.stats
    assert stats["capacity_tasks"] >= DEFAULT_TASKS and stats["capacity_weighted"] >= 1
    assert stats["capacity_cores"] >= stats["capacity_tasks"]
    shown = CliRunner().invoke(status_cli.status, ["--capacity", "localhost", str(manager.port)])
    assert shown.exit_code == 0 and f"capacity_tasks           {stats['capacity_tasks']}" in shown.output


@pytest.mark.parametrize("capacity, expected", [(0, 10), (3, 3), (40, 10)])
def test_the_factory_caps_its_pool_at_the_masters_capacity(capacity, expected):
    pool = Factory("local", "localhost:9123", min_workers=1, max_workers=10, cores=1, use_capacity=True)
    assert pool.target({"tasks_waiting": 50, "tasks_running": 0, "capacity_weighted": capacity}) == expected
    pool.use_capacity = False
    assert pool.target({"tasks_waiting": 50, "tasks_running": 0, "capacity_weighted": 3}) == 10
