"""Where the jobs' output goes: to stdout, each job's whole output at once (in the order jobs end,
or with ``--keep-order`` in the order of the input, as GNU parallel's ``-k``), and with
``--results DIR`` into GNU parallel's layout: ``DIR/1/<arg 1>/[2/<arg 2>/...]{stdout,stderr,seq}``
(a command file's line is its job's argument). Workers merge a task's stderr into its stdout, so
``stderr`` is there for the layout's sake and stays empty.
"""
from __future__ import annotations

import os
import sys
from typing import Dict, Optional, TextIO

from .commands import BadInput, Job

NAME_MAX = 255  # bytes in one path component on Linux file systems


def component(arg: str) -> str:
    """An argument as one directory name, as GNU parallel writes it: \\ doubled, / as \\_."""
    name = arg.replace("\\", "\\\\").replace("/", "\\_")
    encoded = name.encode("utf-8", "surrogateescape")
    return name if len(encoded) <= NAME_MAX else encoded[:NAME_MAX].decode("utf-8", "ignore")


class ResultsDir:
    """``--results DIR``: one folder per job, named by its arguments."""

    def __init__(self, root: str) -> None:
        if os.path.exists(root) and not os.path.isdir(root):
            raise BadInput(f"--results {root!r} exists and is not a directory")
        try:
            os.makedirs(root, exist_ok=True)
        except OSError as error:
            raise BadInput(f"cannot make --results directory {root!r}: {error.strerror}") from None
        self.root = root

    def folder(self, job: Job) -> str:
        args = job.args or (job.command,)
        parts = [self.root]
        for index, arg in enumerate(args, 1):
            parts.append(str(index))
            if arg:
                parts.append(component(arg))
        return os.path.join(*parts)

    def save(self, job: Job, output: str) -> None:
        folder = self.folder(job)
        os.makedirs(folder, exist_ok=True)
        for name, text in (("stdout", output), ("stderr", ""), ("seq", f"{job.seq}\n")):
            with open(os.path.join(folder, name), "w", encoding="utf-8", errors="surrogateescape") as f:
                f.write(text)


class Printer:
    """Each finished job's output on ``stream``, whole; with ``keep_order``, held until every job
    before it has been printed (a job that will not be printed is ``skip``-ped)."""

    def __init__(self, keep_order: bool, stream: Optional[TextIO] = None, first_seq: int = 1) -> None:
        self.keep_order = keep_order
        self.stream = stream or sys.stdout
        self._held: Dict[int, str] = {}
        self._next = first_seq

    def emit(self, seq: int, text: str) -> None:
        if not self.keep_order:
            self._write(text)
            return
        self._held[seq] = text
        self._release()

    def skip(self, seq: int) -> None:
        if self.keep_order:
            self._held[seq] = ""
            self._release()

    def flush(self) -> None:
        """Whatever is held (at the end of a run cut short): in order, gaps and all."""
        for seq in sorted(self._held):
            self._write(self._held.pop(seq))
        self.stream.flush()

    def _release(self) -> None:
        while self._next in self._held:
            self._write(self._held.pop(self._next))
            self._next += 1

    def _write(self, text: str) -> None:
        if text:
            self.stream.write(text)
