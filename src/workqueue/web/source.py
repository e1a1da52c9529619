"""Where the dashboard's figures come from: the master's own ``dashboard`` status answer
(``manager.status.dashboard``), asked in-process through ``Manager.status`` or over the master's
port through ``status.query``: one path for both. However many pages and scrapers ask, the master
is asked at most once per ``max_age`` seconds, and never when nobody asks."""
from __future__ import annotations

import threading
import time
import weakref
from typing import Any, Callable, Dict, Optional

from .. import status

Ask = Callable[[], Dict[str, Any]]
MAX_AGE = 0.5  # seconds an answer is served again before the master is asked anew


class Source:
    def __init__(self, ask: Ask, password: Callable[[], Optional[bytes]], label: str,
                 max_age: float = MAX_AGE) -> None:
        """``password``: the master's current password (None: it has none), for the page's login."""
        self._ask = ask
        self.password = password
        self.label = label
        self._max_age = max_age
        self._lock = threading.Lock()
        self._answer: Optional[Dict[str, Any]] = None
        self._asked_at = 0.0
        self.asked = 0  # how many times the master was asked (tests read it)

    def answer(self) -> Dict[str, Any]:
        """The master's latest answer, at most ``max_age`` seconds old."""
        with self._lock:
            now = time.monotonic()
            if self._answer is None or now - self._asked_at >= self._max_age:
                self._answer = self._ask()
                self._asked_at = time.monotonic()
                self.asked += 1
            return self._answer


def local(manager: Any) -> Source:
    """The figures of a ``Manager`` in this process (its loop answers between two events). Holds it
    weakly: a manager dropped without ``close`` is still cleaned up, its dashboard with it."""
    ref = weakref.ref(manager)
    settings = manager._settings

    def ask() -> Dict[str, Any]:
        alive = ref()
        if alive is None:
            raise ConnectionError("the manager is gone")
        return alive.status("dashboard")
    return Source(ask, lambda: settings.password,
                  f"localhost:{manager.port}" + (f" ({manager.name})" if manager.name else ""))


def remote(host: str, port: int, password: Optional[bytes] = None, timeout: float = 5.0) -> Source:
    """The figures of a master running elsewhere, asked over its port (``workqueue status``'s way)."""
    return Source(lambda: status.query(host, port, "dashboard", timeout, password), lambda: password,
                  f"{host}:{port}")
