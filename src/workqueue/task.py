"""A task: what to run and, once finished, what happened. Plain data, no I/O."""
from __future__ import annotations

import os
from typing import Any, Dict, Iterable, List, Optional, Tuple

from . import validation
from .constants import RESOURCE_NAMES, Result
from .files import File, FileLike
from .scheduling.scheduler import ALGORITHMS


class Task:
    """A shell command with its files and declared resources.

    Resources are whole numbers (cores, gpus) or megabytes (memory, disk). A task that declares none
    takes a whole worker, as in CCTools. The outcome fields (``result``, ``return_status``,
    ``output``, ...) are read-only properties, filled when ``Manager.wait`` returns the task.

    Every argument is checked where it is given (see ``validation``): a wrong one raises TypeError or
    ValueError naming it, here or in the setter, never later in the manager's loop or on a worker.
    """

    _where = "Task"  # how error messages name this class (each subclass: its own name)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._where = cls.__name__

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
        self._inputs: Dict[str, File] = {}  # by remote name: one file per name in the sandbox
        self._outputs: Dict[str, File] = {}
        self._output_writers: Dict[str, str] = {}  # absolute local path -> the output that writes it
        self._resources: Dict[str, Optional[float]] = dict.fromkeys(RESOURCE_NAMES)
        self._tag: Optional[str] = None
        self._max_run_time: Optional[float] = None
        self._end_time: Optional[float] = None
        self._algorithm: Optional[str] = None
        self._features: Tuple[str, ...] = ()
        self._min_running_time: Optional[float] = None
        self._monitor_output: Optional[str] = None
        self._env: Dict[str, Optional[str]] = {}
        self._env_bytes = 0
        self._id: Optional[int] = None
        self._outcome: Dict[str, Any] = {}
        self.set_command(command)
        for spec in validation.file_list(self._where, "inputs", inputs):
            self.add_input(spec)
        for spec in validation.file_list(self._where, "outputs", outputs):
            self.add_output(spec)
        # set_resources, unrolled; None needs no check, and tasks are made by the hundred thousand
        for name, value in (("cores", cores), ("memory", memory), ("disk", disk), ("gpus", gpus)):
            if value is not None:
                self._resources[name] = validation.resource(self._where, name, value)
        self.set_category(category)
        self.set_priority(priority)
        self.set_max_retries(max_retries)
        if tag is not None:
            self.set_tag(tag)
        if max_run_time is not None:
            self.set_max_run_time(max_run_time)
        if env is not None:
            for name, value in validation.mapping(self._where, "env", env).items():
                self.set_env(name, value)

    # -- the spec -------------------------------------------------------------------------------
    @property
    def command(self) -> str:
        return self._command

    @property
    def inputs(self) -> List[File]:
        return list(self._inputs.values())

    @property
    def outputs(self) -> List[File]:
        return list(self._outputs.values())

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

    def set_command(self, command: str) -> None:
        self._command = validation.command(self._where, command)

    def set_tag(self, tag: Optional[str]) -> None:
        self._tag = validation.text(self._where, "tag", tag, allow_none=True)

    def set_category(self, category: str) -> None:
        self._category = validation.text(self._where, "category", category)

    def set_priority(self, priority: float) -> None:
        """Higher runs first; tasks of equal priority run in the order they were submitted."""
        self._priority = validation.number(self._where, "priority", priority)

    def set_algorithm(self, algorithm: Optional[str]) -> None:
        """How this task picks among the workers that fit it (see ``Manager.set_algorithm``);
        None: the manager's."""
        if algorithm is not None:
            algorithm = validation.one_of(self._where, "algorithm", algorithm, ALGORITHMS)
        self._algorithm = algorithm

    @property
    def algorithm(self) -> Optional[str]:
        return self._algorithm

    def add_feature(self, name: str) -> None:
        """Run only on workers started with ``--feature NAME`` (every feature added)."""
        name = validation.text(self._where, "feature", name)
        if name not in self._features:
            self._features += (name,)

    @property
    def features(self) -> List[str]:
        return list(self._features)

    def set_monitor_output(self, directory: Optional[str]) -> None:
        """Where ``Manager.wait`` writes this task's resource summary (JSON) when it finishes."""
        self._monitor_output = validation.path(self._where, "directory", directory, allow_none=True)

    def set_min_running_time(self, seconds: Optional[float]) -> None:
        """Run only on workers with at least this long left of their ``--wall-time`` (workers
        started without one always qualify); None: no minimum."""
        self._min_running_time = validation.seconds(self._where, "min_running_time", seconds) or None

    def set_max_retries(self, max_retries: int) -> None:
        """Give up (``Result.MAX_RETRIES``) after this many attempts; 0: retry for ever."""
        self._max_retries = validation.count(self._where, "max_retries", max_retries)

    def add_input(self, spec: FileLike, cache: bool = False) -> None:
        """Send this file into the sandbox. Declaring the same file again does nothing; another file
        under a remote name already taken is refused (an input and an output may share one)."""
        new = validation.input_file(self._where, spec, cache)
        if validation.is_new_file(self._where, "input", self._inputs.get(new.remote), new):
            self._inputs[new.remote] = new

    def add_output(self, spec: FileLike) -> None:
        """Bring this file back from the sandbox. Declaring the same file again does nothing; another
        file under a remote name already taken, or written to a path already written, is refused."""
        new = validation.output_file(self._where, spec)
        if not validation.is_new_file(self._where, "output", self._outputs.get(new.remote), new):
            return
        target = validation.output_key(new)
        validation.output_target(self._where, self._output_writers.get(target), new)
        self._outputs[new.remote] = new
        self._output_writers[target] = new.remote

    def set_resources(self, **declared: Optional[float]) -> None:
        """Declare any of cores, memory (MB), disk (MB), gpus; None takes a declaration back."""
        self._resources.update(validation.resources(self._where, declared))

    def set_max_run_time(self, seconds: Optional[float]) -> None:
        """Kill the task (``Result.TASK_MAX_RUN_TIME``) once it has run this long on a worker."""
        self._max_run_time = validation.seconds(self._where, "max_run_time", seconds)

    def set_end_time(self, epoch_seconds: Optional[float]) -> None:
        """Kill the task (``Result.TASK_TIMEOUT``) if it still runs at this wall-clock time."""
        self._end_time = validation.seconds(self._where, "end_time", epoch_seconds)

    def set_env(self, name: str, value: Optional[str]) -> None:
        """Set a variable in the task's environment (None: unset it there)."""
        added = validation.env_variable(self._where, name, value)
        replaced = validation.env_variable_bytes(name, self._env[name]) if name in self._env else 0
        validation.env_total(self._where, self._env_bytes - replaced + added)
        self._env[name] = value
        self._env_bytes += added - replaced

    def to_spec(self) -> Dict[str, Any]:
        """The plain-data form the manager's loop works with (no reference to this object)."""
        return {
            "command": self._command,
            "inputs": list(self._inputs.values()),
            "outputs": list(self._outputs.values()),
            "resources": dict(self._resources),
            "tag": self._tag,
            "category": self._category,
            "priority": self._priority,
            "max_retries": self._max_retries,
            "max_run_time": self._max_run_time,
            "end_time": self._end_time,
            "algorithm": self._algorithm,
            "features": self._features,
            "min_running_time": self._min_running_time,
            "env": dict(self._env),
        }

    def check_inputs(self) -> None:
        """Raise FileNotFoundError naming the first local input that does not exist."""
        for f in self._inputs.values():
            if f.local is not None and f.data is None and not os.path.exists(f.local):
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

    def _repr_html_(self) -> str:
        from .web.notebook import task_html
        return task_html(self)

    def __repr__(self) -> str:
        state = "" if self.result is None else f" result={self.result.name} exit={self.return_status}"
        return f"<Task id={self._id} {self._command!r}{state}>"
