"""Resource summaries of finished tasks as JSON files, in the shape CCTools' resource monitor writes
them (``enable_monitoring(dirname)``, ``Task.specify_monitor_output(dir)``): each measured value as a
``[value, "unit"]`` pair, beside the task's identity and how it ended.

Workers always measure their tasks; this room only writes what came back, in the user's thread,
when ``Manager.wait`` hands a task over.
"""
from __future__ import annotations

import json
import os
from typing import Any, Dict

from ..constants import Result
from ..task import Task

UNITS = {"wall_time": "s", "cpu_time": "s", "memory": "MB", "disk": "MB", "cores": "cores", "gpus": "gpus",
         "start": "s", "end": "s"}


def summary(task: Task) -> Dict[str, Any]:
    """The summary of a finished task, read through the native Task's properties (the CCTools skin
    gives some of them other types)."""
    def native(name: str) -> Any:
        return getattr(Task, name).fget(task)

    measured, result = native("resources_measured"), native("result")
    document: Dict[str, Any] = {
        "command": native("command"), "taskid": native("id"), "category": native("category"),
        "host": native("hostname"), "exit_status": native("return_status"),
        "exit_type": "normal" if result is Result.SUCCESS else "error",
        "result": result.name if result is not None else None,
    }
    for name, unit in UNITS.items():
        if measured.get(name) is not None:
            document[name] = [measured[name], unit]
    exceeded = native("limits_exceeded")
    if exceeded:
        document["limits_exceeded"] = {name: [value, UNITS.get(name, "")] for name, value in exceeded.items()}
    return document


def write_summary(task: Task, directory: str) -> str:
    """Write the task's summary into ``directory`` (made if missing); return the file's path."""
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, f"wq-{os.getpid()}-task-{getattr(Task, 'id').fget(task)}.summary")
    with open(path, "w") as out:
        json.dump(summary(task), out, indent=1)
        out.write("\n")
    return path
