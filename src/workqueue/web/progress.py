"""Progress bars (tqdm.auto: a widget in a notebook, text in a terminal).

As Dask's ``progress``: in a notebook the call returns at once with a bar that a daemon thread keeps
up to date; in a terminal it blocks until everything is finished and returns the closed bar.
``tqdm``'s own rules apply (``TQDM_DISABLE=1``; ``disable=None`` is off when not on a terminal).
"""
from __future__ import annotations

import concurrent.futures
import sys
import threading
import time
from typing import Any, Callable, Iterable, Optional, Tuple

from tqdm.auto import tqdm

INTERVAL = 0.2  # seconds between two looks at what is finished


def in_notebook() -> bool:
    """True inside a Jupyter kernel (Dask's test: IPython loaded with a kernel)."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    shell = ipython.get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def manager_progress(manager: Any, notebook: Optional[bool] = None, **bar_options: Any) -> Any:
    """A bar over every task submitted to ``manager``: finished (done, failed or canceled) of submitted,
    from the master's figures (no task is taken from ``wait``)."""
    def look() -> Tuple[int, int, bool]:
        s = manager.stats
        finished = s["tasks_done"] + s["tasks_failed"] + s["tasks_canceled"]
        total = max(manager._submitted, s["tasks_submitted"])
        return finished, total, finished >= total
    return _run(look, notebook, bar_options)


def progress(items: Iterable[Any], notebook: Optional[bool] = None, **bar_options: Any) -> Any:
    """A bar over futures (``Executor.submit``'s, or any ``concurrent.futures.Future``) or Tasks: a
    future counts once done, a Task once ``Manager.wait`` has returned it (someone must call it)."""
    items = list(items)
    for item in items:
        if not isinstance(item, concurrent.futures.Future) and not hasattr(item, "result"):
            raise TypeError(f"progress() takes futures or Tasks, not {type(item).__name__}")

    def look() -> Tuple[int, int, bool]:
        finished = sum(1 for item in items if _finished(item))
        return finished, len(items), finished == len(items)
    return _run(look, notebook, bar_options)


def _finished(item: Any) -> bool:
    if isinstance(item, concurrent.futures.Future):
        return item.done()
    return item.result is not None


def _run(look: Callable[[], Tuple[int, int, bool]], notebook: Optional[bool], bar_options: dict) -> Any:
    finished, total, _ = look()
    bar = tqdm(total=total, initial=finished, unit="task", **bar_options)
    if notebook if notebook is not None else in_notebook():
        threading.Thread(target=_follow, args=(bar, look), name="workqueue-progress", daemon=True).start()
    else:
        _follow(bar, look)
    return bar


def _follow(bar: Any, look: Callable[[], Tuple[int, int, bool]]) -> None:
    try:
        while True:
            finished, total, over = look()
            if total != bar.total:
                bar.total = total
            bar.update(finished - bar.n)
            if over:
                return
            time.sleep(INTERVAL)
    finally:
        bar.close()
