"""The transactions log: one line per task or worker event, CCTools-like, for the user to read."""
from __future__ import annotations

import os
import time
from typing import Any, Optional, TextIO


class TransactionsLog:
    """``time_us pid TASK id STATE info...`` and ``time_us pid WORKER id EVENT info...`` lines."""

    def __init__(self, path: Optional[str]) -> None:
        self._file: Optional[TextIO] = None
        if path:
            self._file = open(path, "a", buffering=1)
            self._file.write("# time pid TASK taskid state info | time pid WORKER workerid event info\n")

    @property
    def enabled(self) -> bool:
        return self._file is not None

    def task(self, task_id: int, state: str, *info: Any) -> None:
        self._write("TASK", task_id, state, info)

    def worker(self, worker_id: str, event: str, *info: Any) -> None:
        self._write("WORKER", worker_id, event, info)

    def _write(self, kind: str, ident: Any, event: str, info: tuple) -> None:
        if self._file is not None:
            extra = " ".join(str(i) for i in info)
            self._file.write(f"{int(time.time() * 1e6)} {os.getpid()} {kind} {ident} {event} {extra}\n".rstrip() + "\n")

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
