"""workqueue: a distributed task queue for Python, in the family of CCTools Work Queue, on ZeroMQ.

>>> import workqueue as wq
>>> with wq.Manager(port=0) as m, wq.local_workers(2, m):
...     m.submit(wq.Task("echo hello"))
...     print(m.wait(10).output)
"""
import importlib
from typing import Any, Iterable, Optional

from .constants import DEFAULT_PORT, PROTOCOL_VERSION, Result, TaskState
from .files import File
from .task import Task

__version__ = "0.1.0"

# Imported on first use: a worker imports this package too, and needs none of the master's side
# (the master's modules, executor and factory took half of a worker's start-up).
_LAZY = {
    "Manager": ("manager", "Manager"), "WorkQueue": ("manager", "Manager"),
    "ManagerLoopStopped": ("manager", "ManagerLoopStopped"), "Executor": ("executor", "Executor"),
    "Factory": ("factory", "Factory"), "LocalWorkers": ("local", "LocalWorkers"),
    "local_workers": ("local", "local_workers"), "PythonTask": ("pytask", "PythonTask"),
    "RemoteTask": ("pytask", "RemoteTask"), "FunctionTaskFailed": ("pytask", "FunctionTaskFailed"),
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'workqueue' has no attribute {name!r}")
    module, attribute = _LAZY[name]
    value = getattr(importlib.import_module(f".{module}", __name__), attribute)
    globals()[name] = value
    return value


def __dir__() -> list:
    return sorted(set(globals()) | set(_LAZY))


def progress(items: Iterable[Any], notebook: Optional[bool] = None, **bar_options: Any) -> Any:
    """A progress bar over futures or Tasks (see ``workqueue.web.progress``); tqdm is imported only here."""
    from .web.progress import progress as bar
    return bar(items, notebook, **bar_options)


__all__ = [
    "DEFAULT_PORT", "PROTOCOL_VERSION", "Result", "TaskState", "File", "LocalWorkers", "local_workers",
    "Manager", "ManagerLoopStopped", "WorkQueue", "Task", "PythonTask", "RemoteTask", "FunctionTaskFailed", "Executor", "Factory", "progress", "__version__",
]
