"""workqueue.dask.graph: which tasks a request needs, their readiness, what may be dropped, and bad graphs."""
from operator import add

import pytest

pytest.importorskip("dask")

from dask._task_spec import Task, TaskRef  # noqa: E402

from workqueue.dask.graph import Plan, pack, runs_on_master  # noqa: E402


def inc(x):
    return x + 1


DIAMOND = {"a": 1, "b": (inc, "a"), "c": (inc, "a"), "d": (add, "b", "c"), "unused": (inc, "d")}


def run_in_order(plan):
    """Finish every ready task until none is left; the order and what was dropped when."""
    order, dropped = [], []
    while plan.ready:
        key = plan.take(1)[0]
        order.append(key)
        dropped.append((key, sorted(plan.finish(key))))
    return order, dropped


def test_only_the_tasks_the_keys_need_and_each_after_its_dependencies():
    plan = Plan(DIAMOND, ["d"])
    assert set(plan.nodes) == {"a", "b", "c", "d"}
    order, _ = run_in_order(plan)
    assert order[0] == "a" and order[-1] == "d" and set(order[1:3]) == {"b", "c"}
    assert plan.complete and plan.finished == plan.total == 4


def test_a_result_is_dropped_when_its_last_user_finishes_never_a_requested_one():
    plan = Plan(DIAMOND, ["d", "b"])
    _, dropped = run_in_order(plan)
    when = {key: gone for key, gone in dropped}
    assert when["d"] == ["c"]  # "b" was asked for: kept
    assert "a" in when["b"] + when["c"] and when["a"] == []
    assert all("b" not in gone and "d" not in gone for gone in when.values())


def test_the_task_made_ready_last_runs_first():
    graph = {("x", i): (inc, i) for i in range(6)}
    graph["sum01"] = (add, ("x", 0), ("x", 1))
    plan = Plan(graph, ["sum01"] + [("x", i) for i in range(2, 6)])
    finished = set()
    while not {("x", 0), ("x", 1)} <= finished:
        key = plan.take(1)[0]
        plan.finish(key)
        finished.add(key)
    assert plan.take(1) == ["sum01"]


def test_new_style_tasks_and_literals():
    graph = {"x": 5, "y": Task("y", inc, TaskRef("x")), "z": "y"}
    plan = Plan(graph, ["z"])
    assert runs_on_master(plan.nodes["x"]) and runs_on_master(plan.nodes["z"])
    assert not runs_on_master(plan.nodes["y"])
    assert plan.nodes["y"]({"x": 5}) == 6


def test_a_requested_key_that_is_not_in_the_graph():
    with pytest.raises(KeyError, match="'nope' is not a key in the graph"):
        Plan(DIAMOND, ["d", "nope"])


def test_a_dependency_that_is_not_in_the_graph():
    graph = {"x": (add, "y", 1), "y": (inc, Task("inner", inc, TaskRef("ghost")))}
    with pytest.raises(KeyError, match="task 'y' depends on 'ghost', which is not a key in the graph"):
        Plan(graph, ["x"])


def test_a_cycle_is_named():
    graph = {"a": (inc, "c"), "b": (inc, "a"), "c": (inc, "b"), "out": (inc, "a")}
    with pytest.raises(ValueError, match="cycle") as raised:
        Plan(graph, ["out"])
    for key in ("'a'", "'b'", "'c'"):
        assert key in str(raised.value)


def test_a_task_that_needs_itself():
    with pytest.raises(ValueError, match="cycle.*'self'"):
        Plan({"self": (inc, "self")}, ["self"])


def test_something_that_is_not_a_graph():
    with pytest.raises(TypeError, match="takes a Dask graph"):
        Plan([("a", 1)], ["a"])


def test_pack_gives_the_shape_of_the_keys():
    values = {"a": 1, "b": 2, ("c", 0): 3}
    assert pack("a", values) == 1
    assert pack(["a", ["b", ("c", 0)]], values) == (1, (2, 3))
