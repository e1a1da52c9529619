"""CCTools Work Queue names over ``workqueue``: existing code and the tutorial run unmodified.

A thin skin: every method here maps a CCTools name or unit (microseconds, flags, int booleans) onto
the native API and holds no queue logic of its own. ``ndcctools.work_queue`` is this same module.
"""
from __future__ import annotations

import logging
import os
import time
import types
from typing import Any, Dict, Optional

import workqueue as _wq
from workqueue import validation as _check
from workqueue.constants import RESOURCE_NAMES as _RESOURCE_NAMES
from workqueue.constants import Result as _Result
from workqueue.constants import TaskState as _TaskState
from workqueue.files import File as _File
from workqueue.manager import tuning as _tuning

__version__ = _wq.__version__

WORK_QUEUE_DEFAULT_PORT = _wq.DEFAULT_PORT
WORK_QUEUE_RANDOM_PORT = 0
WORK_QUEUE_WAITFORTASK = -1
WORK_QUEUE_DEFAULT_KEEPALIVE_INTERVAL = 120
WORK_QUEUE_DEFAULT_KEEPALIVE_TIMEOUT = 30

WORK_QUEUE_INPUT = 0
WORK_QUEUE_OUTPUT = 1
WORK_QUEUE_NOCACHE = 0
WORK_QUEUE_CACHE = 1
WORK_QUEUE_SYMLINK = 2
WORK_QUEUE_PREEXIST = 4
WORK_QUEUE_THIRDGET = 8
WORK_QUEUE_THIRDPUT = 8
WORK_QUEUE_WATCH = 16
WORK_QUEUE_FAILURE_ONLY = 32
WORK_QUEUE_SUCCESS_ONLY = 64
WORK_QUEUE_FILE, WORK_QUEUE_BUFFER, WORK_QUEUE_REMOTECMD = 1, 2, 3
WORK_QUEUE_FILE_PIECE, WORK_QUEUE_DIRECTORY, WORK_QUEUE_URL = 4, 5, 6

for _result in _Result:
    globals()[f"WORK_QUEUE_RESULT_{_result.name}"] = int(_result)
for _state in _TaskState:
    globals()[f"WORK_QUEUE_TASK_{_state.name}"] = int(_state)

WORK_QUEUE_SCHEDULE_UNSET, WORK_QUEUE_SCHEDULE_FCFS, WORK_QUEUE_SCHEDULE_FILES = 0, 1, 2
WORK_QUEUE_SCHEDULE_TIME, WORK_QUEUE_SCHEDULE_RAND, WORK_QUEUE_SCHEDULE_WORST = 3, 4, 5
WORK_QUEUE_TASK_ORDER_FIFO, WORK_QUEUE_TASK_ORDER_LIFO = 0, 1
_ALGORITHMS = {WORK_QUEUE_SCHEDULE_UNSET: "files", WORK_QUEUE_SCHEDULE_FCFS: "fcfs", WORK_QUEUE_SCHEDULE_FILES: "files",
               WORK_QUEUE_SCHEDULE_TIME: "time", WORK_QUEUE_SCHEDULE_RAND: "random",
               WORK_QUEUE_SCHEDULE_WORST: "worst_fit"}
_TASK_ORDERS = {WORK_QUEUE_TASK_ORDER_FIFO: "fifo", WORK_QUEUE_TASK_ORDER_LIFO: "lifo"}
WORK_QUEUE_ALLOCATION_MODE_FIXED, WORK_QUEUE_ALLOCATION_MODE_MAX = 0, 1
WORK_QUEUE_ALLOCATION_MODE_MIN_WASTE, WORK_QUEUE_ALLOCATION_MODE_MAX_THROUGHPUT = 2, 3
WORK_QUEUE_CATEGORY_ALLOCATION_MODE_FIXED = WORK_QUEUE_ALLOCATION_MODE_FIXED
WORK_QUEUE_CATEGORY_ALLOCATION_MODE_MAX = WORK_QUEUE_ALLOCATION_MODE_MAX
WORK_QUEUE_CATEGORY_ALLOCATION_MODE_MIN_WASTE = WORK_QUEUE_ALLOCATION_MODE_MIN_WASTE
WORK_QUEUE_CATEGORY_ALLOCATION_MODE_MAX_THROUGHPUT = WORK_QUEUE_ALLOCATION_MODE_MAX_THROUGHPUT
WORK_QUEUE_MANAGER_MODE_STANDALONE, WORK_QUEUE_MANAGER_MODE_CATALOG = 0, 1
WORK_QUEUE_MASTER_MODE_STANDALONE, WORK_QUEUE_MASTER_MODE_CATALOG = 0, 1

_US = 1e6
_log = logging.getLogger("work_queue")


class _Summary(types.SimpleNamespace):
    """An rmsummary-like record: attribute access, 0 for anything unmeasured (never None)."""

    def __getattr__(self, name: str) -> float:
        if name.startswith("__"):
            raise AttributeError(name)
        return 0


class Task(_wq.Task):
    """``Task(command)`` with CCTools' ``specify_*`` methods and result properties."""

    def __init__(self, command: str) -> None:
        super().__init__(command)

    # -- spec -----------------------------------------------------------------------------------
    def specify_command(self, command: str) -> None:
        self.set_command(command)

    def specify_tag(self, tag: str) -> None:
        self.set_tag(tag)

    def specify_category(self, name: str) -> None:
        self.set_category(name)

    def specify_priority(self, priority: float) -> None:
        self.set_priority(priority)

    def specify_max_retries(self, max_retries: int) -> None:
        self.set_max_retries(_unset(max_retries, unset=0))

    def specify_running_time_max(self, seconds: float) -> None:
        self.set_max_run_time(_unset(seconds, zero_too=True))

    def specify_running_time(self, useconds: float) -> None:
        self.set_max_run_time(_seconds(_unset(useconds, zero_too=True)))

    def specify_running_time_min(self, seconds: float) -> None:
        self.set_min_running_time(_unset(seconds, zero_too=True))

    def specify_end_time(self, useconds: float) -> None:
        self.set_end_time(_seconds(_unset(useconds, zero_too=True)))

    def specify_environment_variable(self, name: str, value: Optional[str] = None) -> None:
        self.set_env(name, value)

    def specify_cores(self, cores: float) -> None:
        self.set_resources(cores=_unset(cores))

    def specify_memory(self, memory: int) -> None:
        self.set_resources(memory=_unset(memory))

    def specify_disk(self, disk: int) -> None:
        self.set_resources(disk=_unset(disk))

    def specify_gpus(self, gpus: int) -> None:
        self.set_resources(gpus=_unset(gpus))

    def specify_feature(self, name: str) -> None:
        self.add_feature(name)

    def specify_algorithm(self, algorithm: int) -> None:
        _check.one_of("Task.specify_algorithm", "algorithm", algorithm, _ALGORITHMS)
        self.set_algorithm(None if algorithm == WORK_QUEUE_SCHEDULE_UNSET else _ALGORITHMS[algorithm])

    def specify_monitor_output(self, directory: str) -> None:
        self.set_monitor_output(directory)

    def specify_file(self, local_name: str, remote_name: Optional[str] = None, type: int = WORK_QUEUE_INPUT,
                     flags: Optional[int] = None, cache: Optional[bool] = None,
                     failure_only: Optional[bool] = None) -> None:
        keep = bool(cache) if cache is not None else bool((flags or 0) & WORK_QUEUE_CACHE)
        spec = (local_name, remote_name or "")
        if _check.one_of("Task.specify_file", "type", type, (WORK_QUEUE_INPUT, WORK_QUEUE_OUTPUT)) == WORK_QUEUE_OUTPUT:
            self.add_output(spec)
        else:
            self.add_input(spec, cache=keep)

    def specify_input_file(self, local_name: str, remote_name: Optional[str] = None,
                           flags: Optional[int] = None, cache: Optional[bool] = None) -> None:
        self.specify_file(local_name, remote_name, WORK_QUEUE_INPUT, flags, cache)

    def specify_output_file(self, local_name: str, remote_name: Optional[str] = None,
                            flags: Optional[int] = None, cache: Optional[bool] = None,
                            failure_only: Optional[bool] = None) -> None:
        self.specify_file(local_name, remote_name, WORK_QUEUE_OUTPUT, flags, cache, failure_only)

    def specify_buffer(self, buffer: Any, remote_name: str, flags: Optional[int] = None,
                       cache: Optional[bool] = None) -> None:
        data = _check.data("Task.specify_buffer", "buffer", buffer)
        keep = bool(cache) if cache is not None else bool((flags or 0) & WORK_QUEUE_CACHE)
        remote_name = _check.text("Task.specify_buffer", "remote_name", remote_name)
        self.add_input(_File(None, remote_name, cache=keep, data=data))

    # -- outcome --------------------------------------------------------------------------------
    @property
    def taskid(self) -> Optional[int]:
        return self.id

    @property
    def std_output(self) -> Optional[str]:
        return self.output

    @property
    def result_str(self) -> Optional[str]:
        return None if self.result is None else self.result.name

    @property
    def host(self) -> Optional[str]:
        return self.hostname

    @property
    def total_submissions(self) -> int:
        return self.attempts

    @property
    def submit_time(self) -> int:
        return int(self.times.get("submit", 0) * _US)

    @property
    def finish_time(self) -> int:
        return int(self.times.get("done", 0) * _US)

    @property
    def execute_cmd_start(self) -> int:
        return int(self.times.get("start", 0) * _US)

    @property
    def execute_cmd_finish(self) -> int:
        return int(self.times.get("end", 0) * _US)

    @property
    def cmd_execution_time(self) -> int:
        return int(self._outcome.get("measured", {}).get("wall_time", 0) * _US)

    @property
    def total_cmd_execution_time(self) -> int:
        return self.cmd_execution_time

    @property
    def total_bytes_sent(self) -> int:
        return self.bytes_sent

    @property
    def total_bytes_received(self) -> int:
        return self.bytes_received

    @property
    def total_bytes_transferred(self) -> int:
        return self.bytes_sent + self.bytes_received

    @property
    def resources_requested(self) -> _Summary:
        return _Summary(**{k: v for k, v in self.resources.items() if v is not None})

    @property
    def resources_allocated(self) -> _Summary:  # type: ignore[override]
        return _Summary(**super().resources_allocated)

    @property
    def resources_measured(self) -> _Summary:  # type: ignore[override]
        return _Summary(**super().resources_measured)

    @property
    def limits_exceeded(self) -> Optional[_Summary]:  # type: ignore[override]
        exceeded = super().limits_exceeded
        return _Summary(**exceeded) if exceeded else None


class WorkQueue(_wq.Manager):
    """``WorkQueue(port)`` with CCTools' ``specify_*`` configuration and queue calls."""

    def __init__(self, port: Any = WORK_QUEUE_DEFAULT_PORT, name: Optional[str] = None, shutdown: bool = False,
                 stats_log: Optional[str] = None, transactions_log: Optional[str] = None,
                 debug_log: Optional[str] = None, ssl: Any = None, status_display_interval: Any = None) -> None:
        if debug_log:
            specify_debug_log(debug_log)
        super().__init__(_port_from(port), name=name, transactions_log=transactions_log)
        self._shutdown_on_close = shutdown
        self._stats_log = None
        self._stats_logged_at = 0.0
        if stats_log:
            self.specify_log(stats_log)

    # -- configuration --------------------------------------------------------------------------
    def specify_name(self, name: str) -> None:
        self.set_name(name)

    def specify_password(self, password: str) -> None:
        self.set_password(password)

    def specify_password_file(self, path: str) -> None:
        from workqueue.wire.auth import read_password_file
        self.set_password(read_password_file(path))

    def specify_transactions_log(self, path: str) -> None:
        self.set_transactions_log(path)

    def specify_log(self, path: str) -> None:
        self._stats_log = open(_check.path("WorkQueue.specify_log", "path", path), "a", buffering=1)
        self._stats_log.write("# timestamp " + " ".join(k for k, v in self.stats_dict().items()
                                                         if isinstance(v, (int, float))) + "\n")

    def specify_debug_log(self, path: str) -> None:
        specify_debug_log(path)

    def tune(self, name: str, value: float) -> int:  # type: ignore[override]
        """0, or -1 for a name CCTools does not know either (as CCTools)."""
        if isinstance(name, str) and not _tuning.is_known(name):
            _log.warning("tune: no setting is called %r", name)
            return -1
        super().tune(name, value)
        return 0

    def specify_keepalive_interval(self, seconds: float) -> None:
        self.tune("keepalive-interval", seconds)

    def specify_keepalive_timeout(self, seconds: float) -> None:
        self.tune("keepalive-timeout", seconds)

    def specify_manager_mode(self, mode: int) -> None:
        _check.count("WorkQueue", "mode", mode)

    specify_master_mode = specify_manager_mode

    def specify_catalog_server(self, host: str, port: int) -> None:
        host = _check.text("WorkQueue.specify_catalog_server", "host", host)
        port = _check.port("WorkQueue.specify_catalog_server", port)
        os.environ["CATALOG_HOST"], os.environ["CATALOG_PORT"] = host, str(port)

    def specify_algorithm(self, algorithm: int) -> None:
        _check.one_of("WorkQueue.specify_algorithm", "algorithm", algorithm, _ALGORITHMS)
        self.set_algorithm(_ALGORITHMS[algorithm])

    def specify_task_order(self, order: int) -> None:
        _check.one_of("WorkQueue.specify_task_order", "order", order, _TASK_ORDERS)
        self.set_task_order(_TASK_ORDERS[order])

    def specify_max_resources(self, resources: Dict[str, float]) -> None:
        self.specify_category_max_resources("default", resources)

    def specify_category_max_resources(self, category: str, resources: Dict[str, float]) -> None:
        self.set_category_max_resources(category, _known_resources(resources))

    def specify_category_min_resources(self, category: str, resources: Dict[str, float]) -> None:
        self.set_category_min_resources(category, _known_resources(resources))

    def specify_category_first_allocation_guess(self, category: str, resources: Dict[str, float]) -> None:
        self.set_category_first_allocation_guess(category, _known_resources(resources))

    def specify_category_mode(self, category: str, mode: int) -> None:
        self.set_category_mode(category, mode)

    def specify_category_autolabel_resource(self, category: str, resource: str, autolabel: bool) -> None:
        self.set_category_autolabel_resource(category, resource, autolabel)

    def enable_monitoring(self, dirname: Optional[str] = None, watchdog: bool = True) -> None:
        super().enable_monitoring(summaries=dirname)  # workers always measure and enforce

    def enable_monitoring_full(self, dirname: Optional[str] = None, watchdog: bool = True) -> None:
        super().enable_monitoring(summaries=dirname)  # summaries only: no time series are written

    def activate_fast_abort(self, multiplier: float) -> None:
        self.set_fast_abort(multiplier)

    def activate_fast_abort_category(self, category: str, multiplier: float) -> None:
        self.set_fast_abort(multiplier, _check.text("WorkQueue", "category", category))

    def application_info(self) -> Optional[Dict[str, Any]]:
        return None

    # -- queue ----------------------------------------------------------------------------------
    def wait(self, timeout: float = WORK_QUEUE_WAITFORTASK) -> Optional[Task]:  # type: ignore[override]
        task = super().wait(timeout)
        self._write_stats_line()
        return task

    def empty(self) -> bool:
        return super().empty()

    def cancel_by_taskid(self, task_id: int) -> Optional[Task]:
        return self.cancel(task_id)

    def cancel_by_tasktag(self, tag: str) -> Optional[Task]:
        return self.cancel_by_tag(tag)

    def task_state(self, task_id: int) -> int:
        return int(super().task_state(task_id))

    def stats_dict(self) -> Dict[str, Any]:
        return super().stats

    @property
    def stats(self) -> types.SimpleNamespace:  # type: ignore[override]
        return types.SimpleNamespace(**super().stats)

    @property
    def stats_hierarchy(self) -> types.SimpleNamespace:
        return self.stats

    def stats_category(self, category: str) -> types.SimpleNamespace:
        return types.SimpleNamespace(**self.category_stats(category))

    def workers_summary(self) -> list:
        sizes: Dict[tuple, Dict[str, float]] = {}
        for worker in self.status("workers"):
            r = worker["resources"]
            key = (r["cores"], r["memory"], r["disk"], r["gpus"])
            entry = sizes.setdefault(key, {"workers": 0, "cores": r["cores"], "memory": r["memory"],
                                           "disk": r["disk"], "gpus": r["gpus"]})
            entry["workers"] += 1
        return list(sizes.values())

    def block_host(self, host: str) -> None:
        super().block_host(host)

    blacklist = block_host

    def block_host_with_timeout(self, host: str, timeout: float) -> None:
        _check.number("WorkQueue.block_host_with_timeout", "timeout", timeout)
        super().block_host(host, timeout if timeout >= 1 else None)  # CCTools: below 1 s, for good

    blacklist_with_timeout = block_host_with_timeout

    def unblock_host(self, host: Optional[str] = None) -> None:
        super().unblock_host(host)

    blacklist_clear = unblock_host

    def close(self) -> None:
        if getattr(self, "_shutdown_on_close", False) and not self._closed:
            self.shutdown_workers(0)
            time.sleep(0.1)
        if getattr(self, "_stats_log", None):
            self._stats_log.close()
            self._stats_log = None
        super().close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    def _write_stats_line(self) -> None:
        if self._stats_log is None or time.time() - self._stats_logged_at < 1:
            return
        self._stats_logged_at = time.time()
        values = [str(v) for v in self.stats_dict().values() if isinstance(v, (int, float))]
        self._stats_log.write(f"{int(self._stats_logged_at * _US)} " + " ".join(values) + "\n")


def _port_from(port: Any) -> Any:
    """CCTools' port: WORK_QUEUE_PORT in the environment stands in for the default one."""
    env_port = os.environ.get("WORK_QUEUE_PORT")
    if port == WORK_QUEUE_DEFAULT_PORT and env_port:
        return int(env_port)
    return port


def _unset(value: Any, *, zero_too: bool = False, unset: Any = None) -> Any:
    """CCTools' way to say "not set": a negative number (and 0 too for times); anything else,
    numbers or not, goes on to the native checkers as it is."""
    if _check.is_number(value) and (value < 0 or (zero_too and value == 0)):
        return unset
    return value


def _seconds(useconds: Any) -> Any:
    return useconds / _US if _check.is_number(useconds) else useconds


def _known_resources(resources: Any) -> Dict[str, Any]:
    """The resources workqueue knows, out of a CCTools resources dict (which has more: wall_time...)."""
    resources = _check.mapping("WorkQueue", "resources", resources)
    return {name: _unset(value) for name, value in resources.items() if name in _RESOURCE_NAMES}


def specify_debug_log(path: str) -> None:
    handler = logging.FileHandler(_check.path("specify_debug_log", "path", path))
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    root = logging.getLogger("workqueue")
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)


def set_debug_flag(*flags: str) -> None:
    logging.getLogger("workqueue").setLevel(logging.DEBUG)


def specify_port_range(low: int, high: int) -> None:
    _check.port("specify_port_range", (low, high))
    os.environ["WORK_QUEUE_LOW_PORT"], os.environ["WORK_QUEUE_HIGH_PORT"] = str(low), str(high)


class PythonTask(_wq.PythonTask, Task):
    """``PythonTask(func, *args)``: ``output`` is the return value or the exception raised,
    ``std_output`` what the function printed."""

    @property
    def std_output(self) -> Optional[str]:
        return self.printed


class RemoteTask(_wq.RemoteTask, Task):
    """``RemoteTask(fn_name, coprocess, *args, **kwargs)`` for workers started with ``--coprocess``."""

    def specify_exec_method(self, method: str) -> None:
        self.set_exec_method(method)


PythonTaskNoResult = _wq.FunctionTaskFailed


pythontask_available = True

Factory = _wq.Factory
