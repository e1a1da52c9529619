"""One interface for every batch system: submit N workers, ask after them, cancel them."""
from __future__ import annotations

import getpass
import logging
import math
import os
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

log = logging.getLogger(__name__)

DEFAULT_CORES = 1  # CCTools' submitters ask for one core per worker unless told otherwise


class BatchError(RuntimeError):
    """A batch command failed; the message carries what it printed."""


@dataclass
class WorkerSpec:
    """What each worker is started with, and what the batch system is asked for.

    ``cores`` is asked of the batch system and given to the worker, the same number both ways, so a
    worker never offers more than its job holds. ``cores=0`` (CCTools' "auto") asks for the whole
    node where the system can say so and lets the worker take what its job was granted.
    """

    host: Optional[str] = None
    port: Optional[int] = None
    manager_name: Optional[str] = None
    timeout: float = 900
    cores: Optional[float] = DEFAULT_CORES
    memory: Optional[int] = None  # MB
    disk: Optional[int] = None  # MB
    gpus: Optional[int] = None
    password_file: Optional[str] = None
    worker_flags: List[str] = field(default_factory=list)  # CCTools worker options passed through (-C, -d, -s, ...)
    extra_worker_options: str = ""
    extra_batch_options: str = ""
    workdir: Optional[str] = None  # where job scripts and logs go
    env: Dict[str, str] = field(default_factory=dict)  # set in each worker's environment
    worker_binary: Optional[str] = None  # a worker program to run instead of this installation's
    wrapper: str = ""  # a command the worker runs under (CCTools' --wrapper)

    def requested_cores(self) -> Optional[int]:
        """Whole CPUs to ask of the batch system; None when the worker takes what it is granted."""
        return math.ceil(self.cores) if self.cores else None

    def worker_program(self) -> List[str]:
        """The worker, from this very installation (its interpreter), whatever PATH says on the node."""
        if self.worker_binary:
            return [os.path.abspath(self.worker_binary)]
        return [sys.executable, "-m", "workqueue.worker"]

    def worker_arguments(self) -> List[str]:
        arguments = ["-t", str(int(self.timeout))]
        for flag, value in (("--cores", self.cores or None), ("--memory", self.memory), ("--disk", self.disk),
                            ("--gpus", self.gpus)):
            if value is not None:
                arguments += [flag, f"{value:g}" if isinstance(value, float) else str(value)]
        if self.password_file:
            arguments += ["-P", os.path.abspath(self.password_file)]
        arguments += list(self.worker_flags) + shlex.split(self.extra_worker_options)
        if self.manager_name:
            return arguments + ["-M", self.manager_name]
        return arguments + [str(self.host), str(self.port)]

    def worker_command(self) -> List[str]:
        return shlex.split(self.wrapper) + self.worker_program() + self.worker_arguments()

    def worker_shell(self) -> str:
        return " ".join(shlex.quote(part) for part in self.worker_command())

    def job_dir(self) -> str:
        path = os.path.abspath(self.workdir or f"{user_name()}-workers")
        os.makedirs(path, exist_ok=True)
        return path


def user_name() -> str:
    """Who submits: $USER, $LOGNAME, the password database, else uid<N> (never an empty name)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid{os.getuid()}"


class BatchSystem:
    """A batch system's commands. Subclasses fill in ``submit``, ``states`` and ``cancel``."""

    name = "base"

    def submit(self, count: int, spec: WorkerSpec) -> List[str]:
        """Start ``count`` workers as an array or as separate jobs (never one N-node job); return job ids."""
        raise NotImplementedError

    def states(self, job_ids: Sequence[str]) -> Dict[str, str]:
        """'pending', 'running' or 'done' for the job ids whose state could be learned.

        A job the batch system no longer knows is 'done': systems forget a job some time after it
        ends (Slurm's MinJobAge, for one). A job whose query failed is left out of the answer, and
        the caller keeps what it knew of it; one failing query never fails the others.
        """
        raise NotImplementedError

    def cancel(self, job_ids: Sequence[str]) -> None:
        raise NotImplementedError

    @staticmethod
    def job_script(spec: WorkerSpec, directives: Sequence[str]) -> str:
        """A shell job script: the system's directives, the worker's environment, then the worker,
        run from the job folder."""
        exports = [f"export {name}={shlex.quote(value)}" for name, value in spec.env.items()]
        lines = ["#!/bin/sh", *directives, *exports, f"cd {shlex.quote(spec.job_dir())}", f"exec {spec.worker_shell()}"]
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
    except subprocess.TimeoutExpired:
        raise BatchError(f"{' '.join(command)} gave no answer within 120 s") from None
    if done.returncode != 0:
        raise BatchError(f"{' '.join(command)} failed ({done.returncode}): {done.stderr.strip() or done.stdout.strip()}")
    return done.stdout


def query(command: Sequence[str]) -> Optional[str]:
    """A state query's stdout, or None (logged) when it failed: nothing new is known this time."""
    try:
        return run(command)
    except BatchError as error:
        log.warning("%s; the state of the jobs is unknown this time", error)
        return None
