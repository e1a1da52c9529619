"""GNU parallel's job log: one tab-separated row per finished job, written and flushed as it ends.

The header and columns are GNU parallel's (Seq, Host, Starttime, JobRuntime, Send, Receive,
Exitval, Signal, Command), so tools that read its logs read ours. Each row leaves in one
``write`` on a file opened for appending: a master killed with SIGKILL loses at most the rows of
tasks that had not yet come back, never half a row that a resume would misread (a torn last line,
should the machine itself fail, is cut off before appending again).

A resume trusts a log only when it was written for the same jobs: every row's Command must be
the command this run gives its Seq; a log of another command file is refused, naming the first
row that differs.
"""
from __future__ import annotations

import os
from typing import List, NamedTuple, Sequence, Set

from .commands import BadInput, Job

COLUMNS = ("Seq", "Host", "Starttime", "JobRuntime", "Send", "Receive", "Exitval", "Signal", "Command")
HEADER = "\t".join(COLUMNS) + "\n"


class Entry(NamedTuple):
    seq: int
    exitval: int
    signal: int
    command: str

    @property
    def succeeded(self) -> bool:
        return self.exitval == 0 and self.signal == 0


def one_line(command: str) -> str:
    """A command as the Command column holds it: tabs and line breaks would split the row."""
    if "\t" in command or "\n" in command or "\r" in command or "\\" in command:
        return command.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return command


def row(seq: int, host: str, start: float, runtime: float, sent: int, received: int, exitval: int,
        signal: int, command: str) -> str:
    """One row, formatted as GNU parallel formats it."""
    return (f"{seq}\t{host}\t{start:.3f}\t{runtime:10.3f}\t{sent}\t{received}\t{exitval}\t{signal}\t"
            f"{one_line(command)}\n")


class JobLog:
    """An open job log; ``write`` puts one row on disk (in the kernel's hands) before it returns."""

    def __init__(self, path: str, *, append: bool) -> None:
        self.path = path
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | (0 if append else os.O_TRUNC)
        try:
            self._fd = os.open(path, flags, 0o644)
        except OSError as error:
            raise BadInput(f"cannot write the job log {path!r}: {error.strerror}") from None
        if os.fstat(self._fd).st_size == 0:
            os.write(self._fd, HEADER.encode())

    def write(self, line: str) -> None:
        os.write(self._fd, line.encode("utf-8", "surrogateescape"))

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> "JobLog":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read(path: str) -> List[Entry]:
    """The rows of an existing job log (none if it does not exist); a torn last line is cut off
    the file, so that the rows appended next start on a line of their own."""
    if not os.path.exists(path):
        return []
    with open(path, "rb+") as f:
        data = f.read()
        if data and not data.endswith(b"\n"):
            data = data[:data.rfind(b"\n") + 1]
            f.truncate(len(data))
    lines = data.decode("utf-8", "surrogateescape").split("\n")
    if not lines[0]:
        return []
    if lines[0] + "\n" != HEADER:
        raise BadInput(f"{path!r} is not a job log: its first line is not GNU parallel's header "
                       f"({' '.join(COLUMNS)})")
    return [_parse(path, number, line) for number, line in enumerate(lines[1:], 2) if line]


def _parse(path: str, number: int, line: str) -> Entry:
    fields = line.split("\t", len(COLUMNS) - 1)
    try:
        if len(fields) != len(COLUMNS):
            raise ValueError
        return Entry(int(fields[0]), int(fields[6]), int(fields[7]), fields[8])
    except ValueError:
        raise BadInput(f"job log {path!r}, line {number}: not a row of {len(COLUMNS)} tab-separated columns "
                       f"with numbers in Seq, Exitval and Signal: {line[:80]!r}") from None


def check_same_jobs(path: str, entries: Sequence[Entry], jobs: Sequence[Job]) -> None:
    """BadInput unless every row names a job of this run by its Seq and its command."""
    for entry in entries:
        if not 1 <= entry.seq <= len(jobs):
            raise BadInput(f"the job log {path!r} was written by another run: it has job {entry.seq}, "
                           f"this run has {len(jobs)} jobs (use another --joblog, or remove this one)")
        ours = one_line(jobs[entry.seq - 1].command)
        if entry.command != ours:
            raise BadInput(f"the job log {path!r} was written by another command file: its job {entry.seq} "
                           f"is {entry.command!r}, this run's is {ours!r} (use another --joblog, or remove this one)")


def to_skip(entries: Sequence[Entry], *, rerun_failed: bool) -> Set[int]:
    """The Seqs a resume leaves out: every job the log holds (``--resume``), or only those that
    succeeded (``--resume-failed``)."""
    if not rerun_failed:
        return {entry.seq for entry in entries}
    return {entry.seq for entry in entries if entry.succeeded}
