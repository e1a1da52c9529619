"""workqueue.dask.get on real local workers, compared with Dask's synchronous scheduler: documented
examples of dask.delayed, dask.array and dask.dataframe, a Coffea-style processor, and bad input."""
import functools
import os
import sys
import threading
from operator import add

import pytest

pytest.importorskip("dask")
pytest.importorskip("pandas")

import cloudpickle  # noqa: E402
import dask  # noqa: E402
import dask.array as da  # noqa: E402
import dask.dataframe as dd  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from dask import delayed  # noqa: E402

import workqueue as wq  # noqa: E402
import workqueue.dask as wqdask  # noqa: E402

cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the workers cannot import tests/


@pytest.fixture(scope="module")
def manager():
    with wq.Manager(port=0, host="127.0.0.1") as m, wq.local_workers(2, m, cores=1):
        yield m


MODES = {"worker transfers": {}, "every result in a file": {"inline_max": 0},
         "results returned": {"worker_transfers": False}}


@pytest.fixture(params=list(MODES))
def get(manager, request):
    """``get`` as each mode moves results: small ones back to the master and large ones left on the
    workers (the default), all of them left on the workers, or all of them back to the master."""
    yield functools.partial(wqdask.get, manager=manager, **MODES[request.param])
    assert manager.empty(), "get() left tasks behind in the manager"


def inc(x):
    return x + 1


def double(x):
    return 2 * x


# -- dask.delayed (the examples of https://docs.dask.org/en/stable/delayed.html) -----------------

def test_delayed_the_documented_loop(get):
    output = []
    for x in [1, 2, 3, 4, 5]:
        a = delayed(inc)(x)
        b = delayed(double)(x)
        output.append(delayed(add)(a, b))
    total = delayed(sum)(output)
    assert total.compute(scheduler=get) == total.compute(scheduler="sync") == 50


def test_delayed_several_collections_and_a_nested_structure(get):
    x, y = delayed(inc)(1), delayed(inc)(2)
    z = delayed(add)(x, y)
    nested = delayed(dict)(sum=z, parts=[x, y])
    assert dask.compute(z, nested, scheduler=get) == dask.compute(z, nested, scheduler="sync")


# -- dask.array --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def arrays():
    x = da.random.default_rng(42).random((400, 300), chunks=(100, 100))
    return x, x.T


def test_array_sum_and_mean(get, arrays):
    x, _ = arrays
    ours = dask.compute(x.sum(), x.mean(axis=0), scheduler=get)
    theirs = dask.compute(x.sum(), x.mean(axis=0), scheduler="sync")
    np.testing.assert_allclose(ours[0], theirs[0])
    np.testing.assert_allclose(ours[1], theirs[1])


def test_array_matmul(get, arrays):
    x, xt = arrays
    ours = (x @ xt).compute(scheduler=get)
    np.testing.assert_allclose(ours, (x @ xt).compute(scheduler="sync"))
    assert ours.shape == (400, 400)


# -- dask.dataframe ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def frames():
    people = pd.DataFrame({"name": ["Alice", "Bob", "Carol", "Dan", "Eve", "Frank"] * 20,
                           "amount": np.arange(120, dtype=float), "id": np.arange(120) % 7})
    groups = pd.DataFrame({"id": range(7), "group": list("abcdefg")})
    return dd.from_pandas(people, npartitions=4), dd.from_pandas(groups, npartitions=2)


def same_frame(ours, theirs):
    """Equal up to the order of rows (partitions may come back in another order)."""
    if isinstance(ours, pd.Series):
        pd.testing.assert_series_equal(ours.sort_index(), theirs.sort_index())
        return
    columns = list(ours.columns)
    pd.testing.assert_frame_equal(ours.sort_values(columns).reset_index(drop=True),
                                  theirs.sort_values(columns).reset_index(drop=True))


def test_dataframe_groupby_mean(get, frames):
    df, _ = frames
    query = df.groupby("name").amount.mean()
    same_frame(query.compute(scheduler=get), query.compute(scheduler="sync"))


def test_dataframe_filter(get, frames):
    df, _ = frames
    query = df[df.amount > 100]
    ours = query.compute(scheduler=get)
    assert len(ours) == 19
    same_frame(ours, query.compute(scheduler="sync"))


def test_dataframe_merge(get, frames):
    df, groups = frames
    query = df.merge(groups, on="id")[["name", "group", "amount"]]
    ours = query.compute(scheduler=get)
    assert len(ours) == 120
    same_frame(ours, query.compute(scheduler="sync"))


# -- a raw graph, as dask.get takes it -----------------------------------------------------------

def test_a_raw_graph_with_literals_aliases_and_nested_keys(get):
    graph = {"one": 1, "alias": "one", "two": (inc, "alias"), ("sum", 0): (add, "two", "alias"),
             "list": (list, ["two", ("sum", 0)])}
    keys = [["two", ("sum", 0)], "list", "alias"]
    assert get(graph, keys) == dask.get(graph, keys) == ((2, 3), [2, 3], 1)
    assert get(graph, "two") == 2


class Point:
    """Defined here, so it travels by value: the standard pickler cannot send it back; cloudpickle must."""

    def __init__(self, x, y):
        self.x, self.y = x, y


def test_results_of_classes_and_functions_that_came_by_value(get):
    point, square = dask.compute(delayed(Point)(1, 2), delayed(lambda: (lambda v: v * v))(), scheduler=get)
    assert (point.x, point.y) == (1, 2) and type(point).__name__ == "Point"
    assert square(7) == 49


# -- a Coffea-style processor: a map over chunks into histograms, then a tree reduce --------------

EDGES = np.linspace(0, 100, 21)


def process(chunk):
    """One chunk of "events": a histogram of a quantity after a cut, and the counts (as Coffea's processors)."""
    rng = np.random.default_rng(chunk)
    pt = rng.exponential(20, size=5000)
    eta = rng.normal(0, 2, size=5000)
    selected = pt[np.abs(eta) < 2.4]
    return {"pt": np.histogram(selected, bins=EDGES)[0], "events": len(pt), "selected": len(selected)}


def accumulate(a, b):
    return {"pt": a["pt"] + b["pt"], "events": a["events"] + b["events"], "selected": a["selected"] + b["selected"]}


def tree_reduce(parts):
    while len(parts) > 1:
        parts = [delayed(accumulate)(*parts[i:i + 2]) if i + 1 < len(parts) else parts[i]
                 for i in range(0, len(parts), 2)]
    return parts[0]


def test_a_coffea_style_processor(get):
    result = tree_reduce([delayed(process)(chunk) for chunk in range(37)]).compute(scheduler=get)
    expected = functools.reduce(accumulate, map(process, range(37)))
    assert result["events"] == 37 * 5000
    assert result["selected"] == expected["selected"] and 0 < result["selected"] < result["events"]
    np.testing.assert_array_equal(result["pt"], expected["pt"])


# -- options -------------------------------------------------------------------------------------

def test_progress_counts_every_task_and_ends_at_the_total(get):
    seen = []
    x = da.ones(100, chunks=10).sum()
    assert x.compute(scheduler=get, progress=lambda done, total: seen.append((done, total))) == 100
    done = [d for d, _ in seen]
    assert done == sorted(done) and seen[-1][0] == seen[-1][1] > 10


def test_resources_per_key(get):
    asked = []

    def resources(key):
        asked.append(key)
        return {"cores": 1, "memory": 50}

    x = da.arange(40, chunks=10)
    assert (x + 1).sum().compute(scheduler=get, resources=resources) == sum(range(1, 41))
    assert len(asked) >= 4
    with pytest.raises(TypeError, match="resources"):
        x.sum().compute(scheduler=get, resources=["cores"])


def fails_once(marker, value):
    if not os.path.exists(marker):
        open(marker, "w").close()
        raise RuntimeError("the first attempt fails")
    return value


def test_retries_run_a_failed_task_again(get, tmp_path):
    graph = {"x": (fails_once, str(tmp_path / "first"), 7), "y": (inc, "x")}
    assert get(graph, "y", retries=1) == 8
    graph = {"x": (fails_once, str(tmp_path / "second"), 7), "y": (inc, "x")}
    with pytest.raises(RuntimeError, match="the first attempt fails"):
        get(graph, "y")


def test_batches_of_one_give_the_same_answer(get):
    x = da.arange(1000, chunks=10)
    assert (x * 2).sum().compute(scheduler=get, batch_size=1) == 999000


def test_unknown_options_are_refused(get):
    with pytest.raises(TypeError, match="unknown option.*colour"):
        get({"a": 1}, "a", colour="blue")
    with pytest.raises(ValueError, match="retries"):
        get({"a": 1}, "a", retries=-1)
    with pytest.raises(TypeError, match="workers= starts local workers only"):
        get({"a": 1}, "a", workers=2)


def test_without_a_manager_it_starts_its_own_workers():
    assert delayed(add)(delayed(inc)(1), 2).compute(scheduler=wqdask.get, workers=1) == 4


def test_a_manager_with_tasks_of_its_own_is_refused(manager):
    manager.submit(wq.Task("sleep 0.5", cores=1))
    try:
        with pytest.raises(ValueError, match="tasks of its own"):
            wqdask.get({"a": (inc, 1)}, "a", manager=manager)
    finally:
        while not manager.empty():
            manager.wait(10)


# -- bad input -----------------------------------------------------------------------------------

def divide(a, b):
    return a / b


def test_a_task_that_raises_comes_back_as_itself_naming_its_key(get):
    graph = {"zero": 0, "boom": (divide, 1, "zero"), "after": (inc, "boom")}
    with pytest.raises(ZeroDivisionError) as raised:
        get(graph, "after")
    assert any("'boom'" in note for note in raised.value.__notes__)
    assert "divide" in raised.value.remote_traceback


def test_in_a_batch_the_key_that_raised_is_named(get):
    graph = {("ok", i): (divide, i, 1) for i in range(50)}
    graph[("bad", 0)] = (divide, 1, 0)
    with pytest.raises(ZeroDivisionError) as raised:
        get(graph, list(graph))
    assert any("('bad', 0)" in note for note in raised.value.__notes__)


def test_a_cycle(get):
    with pytest.raises(ValueError, match="cycle"):
        get({"a": (inc, "b"), "b": (inc, "a")}, "a")


def test_a_missing_key(get):
    with pytest.raises(KeyError, match="'c'"):
        get({"a": 1, "b": (inc, "a")}, "c")
    with pytest.raises(KeyError, match="depends on 'nowhere'"):
        get({"a": (add, 1, dask._task_spec.TaskRef("nowhere"))}, "a")


def a_lock(_):
    return threading.Lock()


def test_a_result_that_cannot_be_pickled_is_named(get):
    graph = {"lock": (a_lock, 1), "used": (type, "lock")}
    with pytest.raises(wqdask.UnpicklableResult, match="Dask task 'lock'"):
        get(graph, "used")


def test_a_task_that_cannot_be_pickled_is_named(get):
    graph = {"fine": (inc, 1), "holds a lock": (id, threading.Lock())}
    with pytest.raises(TypeError, match="Dask task 'holds a lock' cannot be pickled"):
        get(graph, ["fine", "holds a lock"])
