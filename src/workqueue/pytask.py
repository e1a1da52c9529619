"""Python functions as tasks: the call travels pickled (cloudpickle), the outcome comes back the same way.

Small calls ride inside the task message; large ones go as a file through the transfer core.
"""
from __future__ import annotations

import json
from typing import Any, Callable, Dict, Optional, Tuple

import cloudpickle

from . import validation
from .constants import Result
from .files import File
from .task import Task

INLINE_LIMIT = 1 << 20
CALL_FILE = ".workqueue-call"


class FunctionTaskFailed(Exception):
    """The function produced no value: its worker or process failed (see ``task.result``)."""


class PythonTask(Task):
    """``PythonTask(func, *args, **kwargs)``: runs ``func(*args, **kwargs)`` on a worker.

    After ``wait``, ``output`` is the return value, or the exception it raised (with the remote
    traceback as text in its ``remote_traceback`` attribute), or a ``FunctionTaskFailed`` when no
    value came back at all.
    """

    def __init__(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        validation.function(self._where, func)
        super().__init__(str(getattr(func, "__name__", "function")))
        self._unpickled: Tuple[Optional[bytes], Any] = (None, None)  # (the bytes, what they gave)
        payload = cloudpickle.dumps((func, args, kwargs))
        self._call: Dict[str, Any] = {}
        self._call_payload = b""
        if len(payload) > INLINE_LIMIT:
            self.add_input(File(None, CALL_FILE, data=payload))
            self._call["file"] = CALL_FILE
        else:
            self._call_payload = payload

    def to_spec(self) -> Dict[str, Any]:
        spec = super().to_spec()
        spec.update(kind="function", call=dict(self._call), call_payload=self._call_payload)
        return spec

    @property
    def output(self) -> Any:
        outcome = self._call_outcome()
        if outcome is None or isinstance(outcome, BaseException):
            return outcome
        status, value, traceback_text, _ = outcome
        if status == "error" and traceback_text:
            value.remote_traceback = traceback_text
        return value

    @property
    def printed(self) -> Optional[str]:
        """What the function wrote to its stdout and stderr (None before it ran)."""
        outcome = self._call_outcome()
        if outcome is None or isinstance(outcome, BaseException):
            return None
        return outcome[3].decode("utf-8", "replace")

    def _call_outcome(self) -> Any:
        """``(status, value, traceback_text, printed)`` as the function's process sent it, a
        ``FunctionTaskFailed`` when none came back, or None before the task ran. Unpickled once
        per outcome: ``output`` is the same object each time it is read."""
        raw = self._outcome.get("stdout")
        if raw is None:
            return None
        unpickled_from, value = self._unpickled
        if unpickled_from is not raw:
            value = self._unpickle(raw)
            self._unpickled = (raw, value)
        return value

    def _unpickle(self, raw: bytes) -> Any:
        try:
            return cloudpickle.loads(raw)
        except Exception:
            return FunctionTaskFailed(f"function task {self.id} failed: {self.result.name}: "
                                      f"{raw.decode('utf-8', 'replace')}")

    @property
    def succeeded(self) -> bool:
        return self.result == Result.SUCCESS and not isinstance(self.output, BaseException)


class RemoteTask(Task):
    """Calls ``fn_name`` in a worker's long-lived coprocess (``work_queue_worker --coprocess CMD``).

    The call is the JSON event ``{"fn_args": args, "fn_kwargs": kwargs, "remote_task_exec_method": m}``;
    ``output`` is the coprocess's JSON reply, as text.
    """

    def __init__(self, fn_name: str, coprocess: str, *args: Any, **kwargs: Any) -> None:
        super().__init__(validation.text(self._where, "fn_name", fn_name))
        self._coprocess = validation.text(self._where, "coprocess", coprocess)
        self._event: Dict[str, Any] = {"fn_args": list(args), "fn_kwargs": kwargs,
                                       "remote_task_exec_method": "direct"}

    def set_exec_method(self, method: str) -> None:
        self._event["remote_task_exec_method"] = validation.one_of(
            self._where, "exec method", method, ("direct", "thread", "fork"))

    def to_spec(self) -> Dict[str, Any]:
        spec = super().to_spec()
        spec.update(kind="remote", call={"fn_name": self._command, "coprocess": self._coprocess,
                                         "payload": json.dumps(self._event)})
        return spec
