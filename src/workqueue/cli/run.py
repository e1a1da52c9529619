"""``workqueue run``: every line of a file, or a command over arguments, as tasks (GNU parallel's
way; see ``workqueue/run/``). This module only reads the command line."""
from __future__ import annotations

import os
import sys
from typing import Optional, Sequence

import click

from ..run import commands, policy, runner
from ..run.tasks import TaskSpec
from ..run.workers import BATCH_SYSTEMS, Plan, WorkersGone


class BadRunInput(click.ClickException):
    """Input the run cannot use, or a run left without workers; exit 255, GNU parallel's status
    for errors that are not jobs failing (1 to 101 count failed jobs)."""

    exit_code = 255

    def show(self, file=None) -> None:
        click.echo(f"workqueue run: {self.format_message()}", err=True)


@click.command(context_settings={"allow_interspersed_args": False, "help_option_names": ["-h", "--help"]})
@click.argument("words", nargs=-1, metavar="FILE | COMMAND [::: ARG ...]")
@click.option("-a", "--arg-file", "arg_files", multiple=True, metavar="FILE",
              help="Arguments for COMMAND, one a line (repeatable: every combination runs).")
@click.option("-w", "--workers", type=int, default=None,
              help="Local workers to start (default: one per core; 0: none).")
@click.option("--port", type=click.IntRange(0, 65535), default=None, help="Listen on this port on every interface, for remote workers.")
@click.option("--password", "password_file", metavar="FILE", help="Workers must know this password (file).")
@click.option("--batch", "batch_system", type=click.Choice(BATCH_SYSTEMS),
              help="Submit workers to this batch system.")
@click.option("-N", "--batch-workers", type=int, default=0, help="How many workers --batch submits (removed at the end).")
@click.option("--joblog", metavar="FILE", help="GNU parallel's job log, a row written as each job ends.")
@click.option("--resume", is_flag=True, help="Leave out the jobs the job log holds.")
@click.option("--resume-failed", is_flag=True, help="Leave out the jobs the job log holds as succeeded.")
@click.option("--retries", type=int, default=1, show_default=True, help="Tries in all for a job that fails.")
@click.option("--halt", "halt_spec", metavar="now|soon,fail=N|P%", help="Stop once N jobs (or P%) have failed.")
@click.option("-k", "--keep-order", is_flag=True, help="Print outputs in the order of the input.")
@click.option("--results", metavar="DIR", help="Save each job's output in DIR, GNU parallel's layout.")
@click.option("--eta", "--bar", "live", is_flag=True, default=None,
              help="Show the live progress line (default: on a terminal).")
@click.option("-v", "--verbose", is_flag=True, help="Print each job's command before its output.")
@click.option("--dry-run", is_flag=True, help="Print the commands that would run; run nothing.")
@click.option("--cores", type=float, default=1, show_default=True, help="Cores each task declares.")
@click.option("--memory", type=int, help="Memory each task declares (MB).")
@click.option("--disk", type=int, help="Disk each task declares (MB).")
@click.option("--gpus", type=int, help="GPUs each task declares.")
@click.option("--category", default="default", show_default=True, help="The tasks' category.")
@click.option("--timeout", type=float, help="Kill a try that runs longer than this (seconds).")
@click.option("--transfer", is_flag=True, help="Send the files named by {} to the worker.")
@click.option("--return", "returns", multiple=True, metavar="NAME",
              help="Bring this file back ({} etc. replaced; repeatable).")
def run(words: Sequence[str], arg_files: Sequence[str], workers: Optional[int], port: Optional[int],
        password_file: Optional[str], batch_system: Optional[str], batch_workers: int, joblog: Optional[str],
        resume: bool, resume_failed: bool, retries: int, halt_spec: Optional[str], keep_order: bool,
        results: Optional[str], live: Optional[bool], verbose: bool, dry_run: bool, cores: float, memory: Optional[int],
        disk: Optional[int], gpus: Optional[int], category: str, timeout: Optional[float], transfer: bool,
        returns: Sequence[str]) -> None:
    """Run each line of FILE as a shell command, or COMMAND once per argument (after ::: or in
    -a FILE; {} {.} {/} {//} {/.} {#} are replaced, as GNU parallel). Commands run in the current
    directory (a shared file system) unless --transfer/--return ship files. A line
    '#workqueue: cores=2 memory=1000' in FILE sets what the lines below it declare. Options go
    before FILE or COMMAND. Exit status: the number of failed jobs (at most 101); 255 for bad
    input."""
    try:
        jobs = commands.jobs_from_words(words, arg_files)
        options = runner.Options(
            joblog=joblog, resume=resume, resume_failed=resume_failed, retries=retries,
            halt=policy.parse_halt(halt_spec), keep_order=keep_order, results=results, verbose=verbose,
            live=sys.stderr.isatty() if live is None else live,
            tasks=TaskSpec(cores=cores, memory=memory, disk=disk, gpus=gpus, category=category, timeout=timeout,
                           transfer=transfer, returns=list(returns)))
        plan = Plan(local=(os.cpu_count() or 1) if workers is None else workers, port=port, password_file=password_file,
                    batch_system=batch_system, batch_count=batch_workers, cores=cores, memory=memory, disk=disk,
                    gpus=gpus)
        if dry_run:
            for job in runner.to_run(jobs, options):
                click.echo(job.command)
            return
        status = runner.run(jobs, options, plan)
    except (commands.BadInput, WorkersGone) as error:
        raise BadRunInput(str(error)) from None
    except OSError as error:  # a port in use, a file that cannot be written: the run cannot start
        raise BadRunInput(str(error)) from None
    sys.exit(status)
