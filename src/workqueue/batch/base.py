"""One interface for every batch system: submit N workers, ask after them, cancel them."""
from __future__ import annotations

import logging
import os
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

log = logging.getLogger(__name__)


class BatchError(RuntimeError):
    """A batch command failed; the message carries what it printed."""


@dataclass
class WorkerSpec:
    """What each worker is started with, and what the batch system is asked for."""

    host: Optional[str] = None
    port: Optional[int] = None
    manager_name: Optional[str] = None
    timeout: float = 900
    cores: Optional[float] = None
    memory: Optional[int] = None  # MB
    disk: Optional[int] = None  # MB
    password_file: Optional[str] = None
    extra_worker_options: str = ""
    extra_batch_options: str = ""
    workdir: Optional[str] = None  # where job scripts and logs go
    env: Dict[str, str] = field(default_factory=dict)

    def worker_command(self) -> List[str]:
        """The worker, from this very installation (its interpreter), whatever PATH says on the node."""
        command = [sys.executable, "-m", "workqueue.worker", "-t", str(int(self.timeout))]
        for flag, value in (("--cores", self.cores), ("--memory", self.memory), ("--disk", self.disk)):
            if value is not None:
                command += [flag, str(value)]
        if self.password_file:
            command += ["-P", os.path.abspath(self.password_file)]
        command += shlex.split(self.extra_worker_options)
        if self.manager_name:
            command += ["-M", self.manager_name]
        else:
            command += [str(self.host), str(self.port)]
        return command

    def worker_shell(self) -> str:
        return " ".join(shlex.quote(part) for part in self.worker_command())

    def job_dir(self) -> str:
        user = os.environ.get("USER") or os.environ.get("LOGNAME") or str(os.getuid())
        path = os.path.abspath(self.workdir or f"{user}-workers")
        os.makedirs(path, exist_ok=True)
        return path


class BatchSystem:
    """A batch system's commands. Subclasses fill in ``submit``, ``states`` and ``cancel``."""

    name = "base"

    def submit(self, count: int, spec: WorkerSpec) -> List[str]:
        """Start ``count`` workers as an array or as separate jobs (never one N-node job); return job ids."""
        raise NotImplementedError

    def states(self, job_ids: Sequence[str]) -> Dict[str, str]:
        """'pending', 'running' or 'done' for each job id."""
        raise NotImplementedError

    def cancel(self, job_ids: Sequence[str]) -> None:
        raise NotImplementedError

    @staticmethod
    def job_script(spec: WorkerSpec, directives: Sequence[str]) -> str:
        """A shell job script: the system's directives, then the worker, run from the job folder."""
        lines = ["#!/bin/sh", *directives, f"cd {shlex.quote(spec.job_dir())}", f"exec {spec.worker_shell()}"]
        return "\n".join(lines) + "\n"

    def write_script(self, spec: WorkerSpec, text: str) -> str:
        path = os.path.join(spec.job_dir(), f"worker.{self.name}.sh")
        with open(path, "w") as f:
            f.write(text)
        return path


def run(command: Sequence[str], input_text: Optional[str] = None, cwd: Optional[str] = None) -> str:
    """Run a batch command; its stdout, or BatchError with what it said."""
    log.debug("running %s", " ".join(command))
    try:
        done = subprocess.run(list(command), input=input_text, capture_output=True, text=True, cwd=cwd, timeout=120)
    except FileNotFoundError:
        raise BatchError(f"{command[0]} not found: is this batch system installed here?") from None
    if done.returncode != 0:
        raise BatchError(f"{' '.join(command)} failed ({done.returncode}): {done.stderr.strip() or done.stdout.strip()}")
    return done.stdout
