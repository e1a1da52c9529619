"""workqueue: a distributed task queue for Python, in the family of CCTools Work Queue, on ZeroMQ.

>>> import workqueue as wq
>>> with wq.Manager(port=0) as m, wq.local_workers(2, m):
...     m.submit(wq.Task("echo hello"))
...     print(m.wait(10).output)
"""
from typing import Any, Iterable, Optional

from .constants import DEFAULT_PORT, PROTOCOL_VERSION, Result, TaskState
from .files import File
from .local import LocalWorkers, local_workers
from .executor import Executor
from .factory import Factory
from .manager import Manager, ManagerLoopStopped
from .pytask import FunctionTaskFailed, PythonTask, RemoteTask
from .task import Task

__version__ = "0.1.0"


def progress(items: Iterable[Any], notebook: Optional[bool] = None, **bar_options: Any) -> Any:
    """A progress bar over futures or Tasks (see ``workqueue.web.progress``); tqdm is imported only here."""
    from .web.progress import progress as bar
    return bar(items, notebook, **bar_options)


WorkQueue = Manager

__all__ = [
    "DEFAULT_PORT", "PROTOCOL_VERSION", "Result", "TaskState", "File", "LocalWorkers", "local_workers",
    "Manager", "ManagerLoopStopped", "WorkQueue", "Task", "PythonTask", "RemoteTask", "FunctionTaskFailed", "Executor", "Factory", "progress", "__version__",
]
