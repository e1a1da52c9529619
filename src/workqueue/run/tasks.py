"""A job as a ``Task``: where its command runs, the resources it declares, the files it ships.

By default the file system is shared, as for GNU parallel on one machine: the command runs in
the directory ``workqueue run`` was started from. A worker runs every task in a private sandbox
(``sandbox.py`` spawns ``/bin/sh -c COMMAND`` there, with no way to choose another directory),
so the command is sent as ``cd /the/user/s/dir && COMMAND``; no change to the protocol is
needed, and the joblog keeps the command as the user gave it. With ``--transfer`` (the files
named by ``{}`` go to the worker) or ``--return`` (files come back), the command runs in its
sandbox instead, and those files keep their relative paths there.
"""
from __future__ import annotations

import os
import shlex
from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple

from ..task import Task
from .commands import BadInput, Job, fill

INFRASTRUCTURE_TRIES = 3  # attempts when a worker dies under a task (not the command's own failures)


@dataclass
class TaskSpec:
    """What every task of a run declares."""

    cores: Optional[float] = 1
    memory: Optional[int] = None
    disk: Optional[int] = None
    gpus: Optional[int] = None
    category: str = "default"
    timeout: Optional[float] = None  # seconds a try may run (GNU parallel's --timeout)
    transfer: bool = False
    returns: List[str] = field(default_factory=list)  # output names, with replacement strings
    directory: str = field(default_factory=os.getcwd)

    @property
    def in_sandbox(self) -> bool:
        return self.transfer or bool(self.returns)


class TaskMaker:
    """Builds each job's Task; the parts shared by every task are worked out once."""

    def __init__(self, spec: TaskSpec) -> None:
        self.spec = spec
        self.prefix = "" if spec.in_sandbox else f"cd {shlex.quote(spec.directory)} && "
        self._resources = {name: value for name, value in (("cores", spec.cores), ("memory", spec.memory),
                                                           ("disk", spec.disk), ("gpus", spec.gpus))
                           if value is not None}

    def check(self, jobs: Sequence[Job]) -> None:
        """BadInput for resources a task refuses, a --transfer without arguments, or a file that
        cannot be shipped either way."""
        if self.spec.transfer and jobs and not jobs[0].args:
            raise BadInput("--transfer ships the files named by {}: it needs arguments (::: ARG ... or -a FILE), "
                           "not a file of commands")
        seen = set()
        for job in jobs:
            settings = tuple(sorted((job.declared or {}).items()))
            if settings not in seen:  # each set of resources once: a Task checks its arguments
                seen.add(settings)
                try:
                    self.make(job)
                except (TypeError, ValueError) as error:
                    raise BadInput(f"job {job.seq} (--cores, --memory, --disk, --gpus, --category, --timeout or a "
                                   f"#workqueue: line above it): {error}") from None
            for local, _ in self.inputs(job):
                if not os.path.isfile(local):
                    raise BadInput(f"--transfer: job {job.seq}'s file {local!r} does not exist (or is not a file)")
            self.outputs(job)

    def make(self, job: Job) -> Task:
        spec = self.spec
        resources, category = self._resources, spec.category
        if job.declared:
            declared = dict(job.declared)
            category = declared.pop("category", category)
            resources = {**resources, **declared}
        task = Task(self.prefix + job.command, category=category, max_retries=INFRASTRUCTURE_TRIES,
                    max_run_time=spec.timeout, **resources)
        if spec.in_sandbox:
            for local, remote in self.inputs(job):
                task.add_input((local, remote))
            for local, remote in self.outputs(job):
                task.add_output((local, remote))
        return task

    def inputs(self, job: Job) -> List[Tuple[str, str]]:
        return [_shipped(self.spec.directory, arg, "--transfer") for arg in job.args] if self.spec.transfer else []

    def outputs(self, job: Job) -> List[Tuple[str, str]]:
        return [_shipped(self.spec.directory, fill(name, job.args, job.seq, quote=False), "--return")
                for name in self.spec.returns]


def _shipped(directory: str, path: str, option: str) -> Tuple[str, str]:
    """(local path, name in the sandbox): a relative path below the run's directory keeps its
    place, so the command finds the file where ``{}`` says."""
    remote = os.path.normpath(path)
    if os.path.isabs(remote) or remote == "." or remote.split(os.sep)[0] == "..":
        raise BadInput(f"{option} needs paths relative to, and below, the current directory (the file keeps "
                       f"that path in the task's sandbox); got {path!r}")
    return os.path.join(directory, remote), remote
