"""The loop of ``workqueue run``: jobs in, tasks out to a ``Manager``, each finished job booked
in the job log before anything else is done with it, retried, printed, saved, counted.

Tasks are submitted ahead of the workers by at most ``WINDOW``, so that a file of a million
lines neither builds a million ``Task`` objects before the first runs nor holds them all.
"""
from __future__ import annotations

import contextlib
import logging
import signal
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Set

import click

from ..constants import Result
from ..manager.api import Manager
from ..task import Task
from ..wire.auth import read_password_file
from . import joblog as joblogs
from .commands import BadInput, Job
from .policy import NEVER, Halt, Policy
from .results import Printer, ResultsDir
from .summary import Progress
from .tasks import TaskMaker, TaskSpec
from .workers import Plan, password, started

log = logging.getLogger(__name__)

WINDOW = 4096  # tasks submitted and not yet finished, at most
WAIT_SLICE = 0.5  # seconds a wait lasts before the live line is redrawn anyway


@dataclass
class Options:
    joblog: Optional[str] = None
    resume: bool = False
    resume_failed: bool = False
    retries: int = 1
    halt: Halt = NEVER
    keep_order: bool = False
    results: Optional[str] = None
    verbose: bool = False  # print each command before its output (GNU parallel's -v)
    live: bool = False
    tasks: TaskSpec = field(default_factory=TaskSpec)


def run(jobs: Sequence[Job], options: Options, plan: Plan) -> int:
    """Run ``jobs``; return the exit status (the number of failed jobs, at most 101)."""
    plan.check()
    todo = to_run(jobs, options)
    skipped = len(jobs) - len(todo)
    maker = TaskMaker(options.tasks)
    maker.check(todo)
    results = ResultsDir(options.results) if options.results else None
    with contextlib.ExitStack() as stack:
        log_file = None
        if options.joblog:
            resuming = options.resume or options.resume_failed
            log_file = stack.enter_context(joblogs.JobLog(options.joblog, append=resuming))
        if not todo:
            click.echo(f"nothing to run: the job log {options.joblog!r} holds all {len(jobs)} jobs", err=True)
            return 0
        loop = RunLoop(todo, options, maker, log_file, results, skipped)
        stack.enter_context(_terminated_cleanly())
        password_file = stack.enter_context(password(plan))
        manager = stack.enter_context(Manager(plan.port or 0, host=plan.host, password=_password(password_file)))
        loop.check_workers = stack.enter_context(started(plan, manager.port, password_file))
        if plan.open_to_others:
            click.echo(f"workqueue run: workers may join on port {manager.port}", err=True)
        return loop.run(manager)


def _password(path: Optional[str]) -> Optional[bytes]:
    return read_password_file(path) if path else None


@contextlib.contextmanager
def _terminated_cleanly() -> Iterator[None]:
    """SIGTERM (a batch system's, a user's kill) unwinds the run like an error, so its batch jobs
    are removed and its workers stopped; the job log already holds every finished job."""
    def on_term(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)
    try:
        previous = signal.signal(signal.SIGTERM, on_term)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def to_run(jobs: Sequence[Job], options: Options) -> List[Job]:
    """The jobs left once those a resume skips are taken out."""
    skipped = _resumed(jobs, options)
    return [job for job in jobs if job.seq not in skipped]


def _resumed(jobs: Sequence[Job], options: Options) -> Set[int]:
    """The Seqs the job log says to leave out, after checking it was written for these jobs."""
    if not (options.resume or options.resume_failed):
        return set()
    if not options.joblog:
        raise BadInput("--resume and --resume-failed need --joblog FILE: the log of the run to resume")
    entries = joblogs.read(options.joblog)
    joblogs.check_same_jobs(options.joblog, entries, jobs)
    return joblogs.to_skip(entries, rerun_failed=options.resume_failed)


class RunLoop:
    """One run's bookkeeping between the manager and the user."""

    def __init__(self, todo: List[Job], options: Options, maker: TaskMaker,
                 log_file: Optional[joblogs.JobLog], results: Optional[ResultsDir], skipped: int) -> None:
        self.todo = todo
        self.options = options
        self.maker = maker
        self.log_file = log_file
        self.results = results
        self.skipped = skipped
        self.policy = Policy(len(todo), options.retries, options.halt)
        self.progress = Progress(len(todo), live=options.live)
        self.printer = Printer(options.keep_order, first_seq=todo[0].seq)
        self.running: Dict[int, Job] = {}  # task id -> job
        self._pending: Iterator[Job] = iter(todo)
        self._more = True
        self._gaps = _gaps(todo)
        self.check_workers: Callable[[], None] = lambda: None

    def run(self, manager: Manager) -> int:
        for seq in self._gaps:
            self.printer.skip(seq)
        self._submit_more(manager)
        try:
            while self.running:
                task = manager.wait(WAIT_SLICE)
                if task is None:
                    self.progress.tick()
                    self.check_workers()
                    continue
                self._finished(manager, task)
                if self.policy.halting:
                    self._halt(manager)
                elif self._more:
                    self._submit_more(manager)
        finally:
            self.printer.flush()
            self.progress.clear()
        click.echo(self.progress.closing_line(self.skipped, self.policy.halting), err=True)
        return self.policy.exit_status()

    def _submit_more(self, manager: Manager) -> None:
        room = WINDOW - len(self.running)
        make, running = self.maker.make, self.running
        for job in self._pending:
            running[manager.submit(make(job))] = job
            room -= 1
            if room <= 0:
                return
        self._more = False

    def _finished(self, manager: Manager, task: Task) -> None:
        job = self.running.pop(task.id)
        ok = task.succeeded
        if not self.policy.finished(job.seq, ok):
            self.progress.retried += 1
            self.running[manager.submit(self.maker.make(job))] = job
            return
        if self.log_file is not None:
            self.log_file.write(_row(job, task))
        output = task.output or ""
        if self.results is not None:
            self.results.save(job, output)
        if self.options.verbose:
            output = job.command + "\n" + output
        if output or self.options.keep_order:
            self.progress.clear()
            self.printer.emit(job.seq, output)
        if not ok:
            self.progress.clear()
            click.echo(f"workqueue run: job {job.seq} failed ({_why(task)}): {job.command}", err=True)
        self.progress.finished(ok, task.bytes_sent + task.bytes_received)

    def _halt(self, manager: Manager) -> None:
        """Stop starting jobs; with ``now`` kill those that run, with ``soon`` let them end.
        Results already back (a worker sends several at once) are booked first, not thrown away."""
        self._more = False
        self._pending = iter(())
        while self.running:
            task = manager.wait(0)
            if task is None:
                break
            self._finished(manager, task)
        keep: Set[int] = set()
        if self.policy.halting == "soon":
            keep = {row["task_id"] for row in manager.status("tasks") if row.get("state") == "RUNNING"}
        for task_id in [tid for tid in self.running if tid not in keep]:
            manager.cancel(task_id)
            self.running.pop(task_id)


def _gaps(todo: Sequence[Job]) -> List[int]:
    """Seqs between the first and last job to run that this run leaves out (resumed)."""
    if not todo:
        return []
    present = {job.seq for job in todo}
    return [seq for seq in range(todo[0].seq, todo[-1].seq + 1) if seq not in present]


def _row(job: Job, task: Task) -> str:
    times = task.times
    start = times.get("start") or times.get("dispatch") or times.get("submit") or 0.0
    end = times.get("end") or start
    exitval, signal = _status(task)
    return joblogs.row(job.seq, task.hostname or ":", start, max(0.0, end - start), task.bytes_sent,
                       task.bytes_received, exitval, signal, job.command)


def _status(task: Task) -> "tuple[int, int]":
    """Exitval and Signal as GNU parallel logs them; a task that failed for a reason other than its
    command's exit code (its worker, a limit, a missing output) has Exitval -1, never 0."""
    code = task.return_status
    if task.result == Result.SUCCESS:
        return code, 0
    if code < 0:
        return -1, -code
    return (code if code > 0 else -1), 0


def _why(task: Task) -> str:
    if task.result == Result.SUCCESS:
        return f"exit {task.return_status}"
    return f"{task.result.name if task.result is not None else 'UNKNOWN'}, exit {task.return_status}"


__all__ = ["Options", "run", "RunLoop"]
