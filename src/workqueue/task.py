"""A task: what to run and, once finished, what happened. Plain data, no I/O."""
from __future__ import annotations

import os
from typing import Any, Dict, Iterable, List, Optional

from .constants import Result
from .files import File, FileLike, as_file


class Task:
    """A shell command with its files and declared resources.

    Resources are whole numbers (cores, gpus) or megabytes (memory, disk). A task that declares none
    takes a whole worker, as in CCTools. The outcome fields (``result``, ``return_status``,
    ``output``, ...) are read-only properties, filled when ``Manager.wait`` returns the task.
    """

    def __init__(
        self,
        command: str = "",
        *,
        inputs: Iterable[FileLike] = (),
        outputs: Iterable[FileLike] = (),
        cores: Optional[float] = None,
        memory: Optional[int] = None,
        disk: Optional[int] = None,
        gpus: Optional[int] = None,
        tag: Optional[str] = None,
        category: str = "default",
        priority: float = 0,
        max_retries: int = 0,
        max_run_time: Optional[float] = None,
        env: Optional[Dict[str, Optional[str]]] = None,
    ) -> None:
        self._command = command
        self._inputs: List[File] = [as_file(f) for f in inputs]
        self._outputs: List[File] = [as_file(f) for f in outputs]
        self._resources: Dict[str, Optional[float]] = {
            "cores": cores, "memory": memory, "disk": disk, "gpus": gpus}
        self._tag = tag
        self._category = category
        self._priority = priority
        self._max_retries = max_retries
        self._max_run_time = max_run_time
        self._end_time: Optional[float] = None
        self._env: Dict[str, Optional[str]] = dict(env or {})
        self._id: Optional[int] = None
        self._outcome: Dict[str, Any] = {}

    # -- the spec -------------------------------------------------------------------------------
    @property
    def command(self) -> str:
        return self._command

    @property
    def inputs(self) -> List[File]:
        return list(self._inputs)

    @property
    def outputs(self) -> List[File]:
        return list(self._outputs)

    @property
    def resources(self) -> Dict[str, Optional[float]]:
        return dict(self._resources)

    @property
    def id(self) -> Optional[int]:
        return self._id

    @property
    def tag(self) -> Optional[str]:
        return self._tag

    @property
    def category(self) -> str:
        return self._category

    @property
    def priority(self) -> float:
        return self._priority

    def add_input(self, spec: FileLike, cache: bool = False) -> None:
        self._inputs.append(as_file(spec, cache))

    def add_output(self, spec: FileLike) -> None:
        self._outputs.append(as_file(spec))

    def set_resources(self, **declared: Optional[float]) -> None:
        for name, value in declared.items():
            if name not in self._resources:
                raise ValueError(f"unknown resource {name!r}")
            if value is not None and value < 0:
                raise ValueError(f"resource {name} must not be negative (got {value})")
            self._resources[name] = value

    def set_max_run_time(self, seconds: Optional[float]) -> None:
        """Kill the task (``Result.TASK_MAX_RUN_TIME``) once it has run this long on a worker."""
        self._max_run_time = seconds

    def set_end_time(self, epoch_seconds: Optional[float]) -> None:
        """Kill the task (``Result.TASK_TIMEOUT``) if it still runs at this wall-clock time."""
        self._end_time = epoch_seconds

    def set_env(self, name: str, value: Optional[str]) -> None:
        self._env[name] = value

    def to_spec(self) -> Dict[str, Any]:
        """The plain-data form the manager's loop works with (no reference to this object)."""
        return {
            "command": self._command,
            "inputs": list(self._inputs),
            "outputs": list(self._outputs),
            "resources": dict(self._resources),
            "tag": self._tag,
            "category": self._category,
            "priority": self._priority,
            "max_retries": self._max_retries,
            "max_run_time": self._max_run_time,
            "end_time": self._end_time,
            "env": dict(self._env),
        }

    def check_inputs(self) -> None:
        """Raise FileNotFoundError naming the first local input that does not exist."""
        for f in self._inputs:
            if f.data is None and not os.path.exists(f.local):
                raise FileNotFoundError(f"input file {f.local!r} of task {self._command!r} does not exist")

    # -- the outcome ----------------------------------------------------------------------------
    def _set_outcome(self, outcome: Dict[str, Any]) -> None:
        self._outcome = outcome

    def _outcome_field(self, name: str, default: Any = None) -> Any:
        return self._outcome.get(name, default)

    @property
    def result(self) -> Optional[Result]:
        value = self._outcome.get("result")
        return None if value is None else Result._value2member_map_.get(value, Result.UNKNOWN)

    @property
    def return_status(self) -> int:
        return self._outcome.get("exit_code", -1)

    @property
    def output(self) -> Optional[str]:
        """The command's stdout and stderr, merged."""
        raw = self._outcome.get("stdout")
        return None if raw is None else raw.decode("utf-8", "replace")

    @property
    def hostname(self) -> Optional[str]:
        return self._outcome.get("hostname")

    @property
    def worker_id(self) -> Optional[str]:
        return self._outcome.get("worker_id")

    @property
    def attempts(self) -> int:
        return self._outcome.get("attempts", 0)

    @property
    def resources_allocated(self) -> Dict[str, float]:
        return dict(self._outcome.get("allocated", {}))

    @property
    def resources_measured(self) -> Dict[str, float]:
        return dict(self._outcome.get("measured", {}))

    @property
    def limits_exceeded(self) -> Dict[str, float]:
        return dict(self._outcome.get("limits_exceeded", {}))

    @property
    def times(self) -> Dict[str, float]:
        """Wall-clock timestamps (seconds since the epoch): submit, dispatch, start, end, done."""
        return dict(self._outcome.get("times", {}))

    @property
    def bytes_sent(self) -> int:
        return self._outcome.get("bytes_sent", 0)

    @property
    def bytes_received(self) -> int:
        return self._outcome.get("bytes_received", 0)

    @property
    def succeeded(self) -> bool:
        return self.result == Result.SUCCESS and self.return_status == 0

    def __repr__(self) -> str:
        state = "" if self.result is None else f" result={self.result.name} exit={self.return_status}"
        return f"<Task id={self._id} {self._command!r}{state}>"
