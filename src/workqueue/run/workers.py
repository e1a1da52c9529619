"""Where a run's workers come from, and who else may join.

Safe by default: a run with local workers only listens on loopback (127.0.0.1) and makes a
random password for the run (a 0600 file its workers read), so neither another host nor another
user of this machine can join and receive the user's commands, and no "no password" warning is
printed. ``--port``, ``--password`` or ``--batch`` open the run to workers on other hosts: the
master then listens on every interface, with the password given; with ``--batch`` alone, one made
for the run in the batch job folder; with ``--port`` and no password, none (and the warning).
Local workers run with ``--single-shot``: a master that dies, even by SIGKILL, takes them with it.
"""
from __future__ import annotations

import contextlib
import logging
import os
import secrets
import socket
import tempfile
from dataclasses import dataclass
from typing import Callable, Iterator, List, Optional

from .. import batch
from ..local import LocalWorkers
from ..wire.auth import read_password_file
from .commands import BadInput

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
BATCH_SYSTEMS = ("slurm", "sge", "pbs", "torque", "condor", "local")


class WorkersGone(RuntimeError):
    """Every worker the run could count on has exited: jobs are left that nothing will run."""


@dataclass
class Plan:
    """Who runs the jobs: ``local`` worker processes here, ``batch_count`` through ``batch_system``,
    and whoever has ``port`` (None: any free port) and the password."""

    local: int
    port: Optional[int] = None
    password_file: Optional[str] = None
    batch_system: Optional[str] = None
    batch_count: int = 0
    cores: Optional[float] = 1
    memory: Optional[int] = None
    disk: Optional[int] = None
    gpus: Optional[int] = None

    @property
    def open_to_others(self) -> bool:
        return self.port is not None or self.password_file is not None or self.batch_system is not None

    @property
    def host(self) -> str:
        return "*" if self.open_to_others else LOOPBACK

    def check(self) -> None:
        if self.local < 0:
            raise BadInput(f"--workers must be 0 or more, got {self.local}")
        if self.batch_system is not None and self.batch_system not in BATCH_SYSTEMS:
            raise BadInput(f"--batch must be one of {', '.join(BATCH_SYSTEMS)}, got {self.batch_system!r}")
        if self.batch_system is not None and self.batch_count < 1:
            raise BadInput(f"--batch {self.batch_system} needs -N COUNT (workers to submit), at least 1")
        if self.batch_system is None and self.batch_count:
            raise BadInput("-N COUNT is the number of batch workers: give --batch SYSTEM too")
        if self.local == 0 and not self.open_to_others:
            raise BadInput("--workers 0 starts no worker here: give --port (and --password) for remote "
                           "workers to join, or --batch SYSTEM -N COUNT")


@contextlib.contextmanager
def password(plan: Plan) -> Iterator[Optional[str]]:
    """The password file of the run: the user's; one made for the run when it has only workers it
    starts itself (in a private temporary folder for local workers, in the batch job folder, which
    batch workers read over the shared file system); None when ``--port`` invites others without one."""
    if plan.password_file is not None:
        try:
            read_password_file(plan.password_file)
        except (OSError, ValueError) as error:
            raise BadInput(f"--password {plan.password_file!r}: {error}") from None
        yield plan.password_file
        return
    if plan.port is not None:
        yield None
        return
    if plan.batch_system is not None:
        folder = batch.WorkerSpec().job_dir()
        path = os.path.join(folder, f"run-password.{os.getpid()}")
        try:
            yield _write_secret(path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        return
    with tempfile.TemporaryDirectory(prefix="workqueue-run-") as folder:
        yield _write_secret(os.path.join(folder, "password"))


def _write_secret(path: str) -> str:
    """A new random password in a file only its owner may read."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_hex(32))
    return path


@contextlib.contextmanager
def started(plan: Plan, port: int, password_file: Optional[str]) -> Iterator[Callable[[], None]]:
    """Start the plan's workers for the ``with`` block; stop the local ones and remove the batch
    jobs at its end, however it ends. Yields a check that raises WorkersGone once a run that has
    only local workers has none left (they crashed, or sat idle past their timeout because no
    task fits them), instead of waiting for ever."""
    local = LocalWorkers(plan.local, port, LOOPBACK, cores=plan.cores, password_file=password_file,
                         extra=["--single-shot"])
    system = batch.get(plan.batch_system) if plan.batch_system else None
    job_ids: List[str] = []
    try:
        local.start()
        if system is not None:
            job_ids = _submit(system, plan, port, password_file)
        yield lambda: _check_alive(plan, local)
    finally:
        if job_ids:
            try:
                system.cancel(job_ids)
            except batch.BatchError as error:
                log.warning("could not remove the batch workers %s: %s", " ".join(job_ids), error)
        local.stop()


def _check_alive(plan: Plan, local: LocalWorkers) -> None:
    if plan.open_to_others or any(process.poll() is None for process in local.processes):
        return
    codes = sorted({process.returncode for process in local.processes})
    raise WorkersGone(f"all {plan.local} local workers have exited (exit status {', '.join(map(str, codes))}; "
                      "their messages are above) and no other worker may join: the jobs left cannot run")


def _submit(system: batch.BatchSystem, plan: Plan, port: int, password_file: Optional[str]) -> List[str]:
    spec = batch.WorkerSpec(host=socket.getfqdn(), port=port, cores=plan.cores, memory=plan.memory,
                            disk=plan.disk, gpus=plan.gpus, password_file=password_file)
    try:
        return system.submit(plan.batch_count, spec)
    except batch.BatchError as error:
        raise BadInput(f"--batch {plan.batch_system}: {error}") from None
