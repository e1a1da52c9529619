"""A Dask graph as the runner walks it: the part the requested keys need, which tasks are ready,
and which results no task still to finish needs. Pure (no sockets, clock or files).

Dask's own helpers read the task specs: ``dask._task_spec.convert_legacy_graph`` turns tuples,
aliases and literals into ``GraphNode`` objects, whose ``dependencies`` this module follows and which
workers call as ``node(values)``; ``dask.core.getcycle`` names a cycle.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Dict, Hashable, Iterable, List, Set

from dask._task_spec import Alias, DataNode, GraphNode, convert_legacy_graph
from dask.core import getcycle

Key = Hashable


def read(dsk: Any) -> Dict[Key, GraphNode]:
    """Every task of ``dsk`` (a dict in either of Dask's formats, a HighLevelGraph, or an object with
    ``__dask_graph__``, as ``dask.compute`` hands over) as a ``GraphNode``."""
    if not isinstance(dsk, Mapping):
        if not hasattr(dsk, "__dask_graph__"):
            raise TypeError(f"workqueue.dask.get takes a Dask graph (a mapping of keys to tasks), "
                            f"not {type(dsk).__name__}")
        dsk = dsk.__dask_graph__()
    return convert_legacy_graph(dsk)


def runs_on_master(node: GraphNode) -> bool:
    """A literal or an alias costs nothing to evaluate: sending it to a worker would cost a round trip."""
    return isinstance(node, (DataNode, Alias))


class Plan:
    """The tasks that ``keys`` need, in an order their dependencies allow, and their progress.

    ``ready`` is a stack: the tasks made ready last run first, so a reduction runs as soon as its
    inputs exist and their results can be dropped (depth first, as Dask's local schedulers do).
    Raises KeyError naming a requested or depended-on key that is not in the graph, and ValueError
    naming a cycle.
    """

    def __init__(self, dsk: Any, keys: Iterable[Key]) -> None:
        graph = read(dsk)
        self.outputs: Set[Key] = set(keys)
        for key in self.outputs:
            if key not in graph:
                raise KeyError(f"{key!r} is not a key in the graph")
        self.nodes = _needed(graph, self.outputs)
        self.dependents: Dict[Key, List[Key]] = {key: [] for key in self.nodes}
        self._waiting: Dict[Key, int] = {}
        for key, node in self.nodes.items():
            self._waiting[key] = len(node.dependencies)
            for dependency in node.dependencies:
                self.dependents[dependency].append(key)
        self._check_acyclic()
        self._unfinished_dependents = {key: len(users) for key, users in self.dependents.items()}
        self.ready: List[Key] = [key for key, count in self._waiting.items() if count == 0]
        self.ready.reverse()
        self.finished = 0

    @property
    def total(self) -> int:
        return len(self.nodes)

    @property
    def complete(self) -> bool:
        return self.finished == len(self.nodes)

    def take(self, n: int) -> List[Key]:
        """Up to ``n`` ready keys, the most recently readied first."""
        taken = self.ready[-n:]
        del self.ready[-n:]
        taken.reverse()
        return taken

    def finish(self, key: Key) -> List[Key]:
        """Record ``key`` as computed; returns the results that nothing unfinished needs any more
        (never a requested key's)."""
        self.finished += 1
        for user in self.dependents[key]:
            self._waiting[user] -= 1
            if self._waiting[user] == 0:
                self.ready.append(user)
        done_with = []
        for dependency in self.nodes[key].dependencies:
            self._unfinished_dependents[dependency] -= 1
            if self._unfinished_dependents[dependency] == 0 and dependency not in self.outputs:
                done_with.append(dependency)
        return done_with

    def _check_acyclic(self) -> None:
        waiting = dict(self._waiting)
        free = [key for key, count in waiting.items() if count == 0]
        ordered = 0
        while free:
            key = free.pop()
            ordered += 1
            for user in self.dependents[key]:
                waiting[user] -= 1
                if waiting[user] == 0:
                    free.append(user)
        if ordered < len(self.nodes):
            stuck = [key for key, count in waiting.items() if count]
            cycle = getcycle(self.nodes, stuck) or stuck[:10]
            raise ValueError(f"the Dask graph has a cycle: {' -> '.join(map(repr, cycle))}")


def _needed(graph: Dict[Key, GraphNode], outputs: Set[Key]) -> Dict[Key, GraphNode]:
    """The tasks the outputs depend on, directly or not (Dask's cull); KeyError for a missing one."""
    needed: Dict[Key, GraphNode] = {}
    stack = list(outputs)
    while stack:
        key = stack.pop()
        if key in needed:
            continue
        node = needed[key] = graph[key]
        for dependency in node.dependencies:
            if dependency not in graph:
                raise KeyError(f"task {key!r} depends on {dependency!r}, which is not a key in the graph")
            if dependency not in needed:
                stack.append(dependency)
    return needed


def pack(keys: Any, values: Dict[Key, Any]) -> Any:
    """The values in the shape of ``keys``: lists become tuples, as Dask's schedulers return them."""
    if isinstance(keys, list):
        return tuple(pack(inner, values) for inner in keys)
    return values[keys]
