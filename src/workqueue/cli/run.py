"""``workqueue run FILE``: every line of FILE as a shell task, on local workers started for the run."""
from __future__ import annotations

import os
import sys
import time
from typing import List, Optional, TextIO

import click

from ..local import local_workers
from ..manager import Manager
from ..task import Task


def read_commands(stream: TextIO) -> List[str]:
    """Non-empty lines that are not comments."""
    return [line.strip() for line in stream if line.strip() and not line.lstrip().startswith("#")]


@click.command()
@click.argument("file", type=click.File("r"))
@click.option("-w", "--workers", type=int, default=None, help="Local workers to start (default: one per core).")
@click.option("--cores", type=float, default=1, show_default=True, help="Cores each task declares.")
@click.option("--port", type=int, default=0, show_default=True, help="Manager port (0: any free port).")
@click.option("--retries", type=int, default=3, show_default=True, help="Attempts per task if its worker dies.")
@click.option("-v", "--verbose", is_flag=True, help="Print every task's output.")
def run(file: TextIO, workers: Optional[int], cores: float, port: int, retries: int, verbose: bool) -> None:
    """Run each line of FILE as a shell command on local workers; exit 1 if any failed."""
    commands = read_commands(file)
    if not commands:
        raise click.UsageError(f"{file.name} holds no commands")
    n_workers = workers or os.cpu_count() or 1
    failed = 0
    started = time.monotonic()
    with Manager(port) as manager, local_workers(n_workers, manager, cores=cores):
        for command in commands:
            manager.submit(Task(command, cores=cores, max_retries=retries))
        with click.progressbar(length=len(commands), label=f"{n_workers} workers", file=sys.stderr) as bar:
            while not manager.empty():
                task = manager.wait(1)
                if task is None:
                    continue
                bar.update(1)
                if not task.succeeded:
                    failed += 1
                    _report_failure(task)
                elif verbose and task.output:
                    click.echo(task.output, nl=False)
    elapsed = time.monotonic() - started
    click.echo(f"{len(commands) - failed} succeeded, {failed} failed, {len(commands)} tasks in {elapsed:.2f} s "
               f"({len(commands) / elapsed:.1f} tasks/s)", err=True)
    sys.exit(1 if failed else 0)


def _report_failure(task: Task) -> None:
    click.echo(f"\nFAILED {task.command!r}: result {task.result.name}, exit {task.return_status}", err=True)
    if task.output:
        click.echo(task.output.rstrip(), err=True)
