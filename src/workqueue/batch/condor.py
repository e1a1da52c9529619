"""HTCondor: one submit description, ``queue N``, with request_cpus/memory/disk."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Dict, List, Sequence

from .base import BatchSystem, WorkerSpec, query, run

# JobStatus: 1 idle, 2 running, 3 removed, 4 completed, 5 held, 6 transferring output, 7 suspended
STATES = {"1": "pending", "2": "running", "3": "done", "4": "done", "5": "pending", "6": "running", "7": "running"}
SLOT_SIZE = ["--cores", "$$([TARGET.Cpus])", "--memory", "$$([TARGET.Memory])", "--disk", "$$([TARGET.Disk/1024])"]


@dataclass
class CondorOptions:
    """What condor_submit_workers and the factory may add: requirements (ANDed), class ads, autosize."""

    requirements: List[str] = field(default_factory=list)
    class_ads: List[str] = field(default_factory=list)
    autosize: bool = False


class Condor(BatchSystem):
    name = "condor"

    def __init__(self, requirements: Sequence[str] = (), class_ads: Sequence[str] = (), autosize: bool = False) -> None:
        self.options = CondorOptions(list(requirements), list(class_ads), autosize)

    def description(self, count: int, spec: WorkerSpec) -> str:
        command = spec.worker_command()
        if self.options.autosize:  # the worker takes the size of the slot it lands in, as CCTools' does
            command = _without_resources(command) + SLOT_SIZE
        lines = [
            "universe = vanilla",
            f"executable = {command[0]}",
            f"arguments = \"{' '.join(_condor_quote(a) for a in command[1:])}\"",
            f"initialdir = {spec.job_dir()}",
            "output = worker.$(Cluster).$(Process).out",
            "error = worker.$(Cluster).$(Process).err",
            "log = workers.log",
            "getenv = true",
            "should_transfer_files = if_needed",
            "when_to_transfer_output = on_exit",
        ]
        lines += self._requests(spec)
        if spec.env:
            lines.append(f"environment = \"{' '.join(_condor_quote(f'{k}={v}') for k, v in spec.env.items())}\"")
        if self.options.requirements:
            lines.append("requirements = " + " && ".join(f"({r})" for r in self.options.requirements))
        lines += self.options.class_ads
        lines += [line for line in spec.extra_batch_options.split(";") if line.strip()]
        lines.append(f"queue {count}")
        return "\n".join(lines) + "\n"

    @staticmethod
    def _requests(spec: WorkerSpec) -> List[str]:
        lines = []
        if spec.requested_cores():
            lines.append(f"request_cpus = {spec.requested_cores()}")
        if spec.memory:
            lines.append(f"request_memory = {int(spec.memory)}")
        if spec.disk:
            lines.append(f"request_disk = {int(spec.disk) * 1024}")  # KiB
        if spec.gpus:
            lines.append(f"request_gpus = {int(spec.gpus)}")
        return lines

    def submit(self, count: int, spec: WorkerSpec) -> List[str]:
        path = f"{spec.job_dir()}/workers.submit"
        with open(path, "w") as f:
            f.write(self.description(count, spec))
        out = run(["condor_submit", path], cwd=spec.job_dir())
        match = re.search(r"submitted to cluster (\d+)", out)
        if not match:
            raise RuntimeError(f"condor_submit said: {out.strip()}")
        return [f"{match.group(1)}.{i}" for i in range(count)]

    def states(self, job_ids: Sequence[str]) -> Dict[str, str]:
        out = query(["condor_q", "-af", "ClusterId", "ProcId", "JobStatus"]) if job_ids else ""
        if out is None:
            return {}
        rows = (line.split() for line in out.splitlines())
        seen = {f"{row[0]}.{row[1]}": STATES.get(row[2], "pending") for row in rows if len(row) == 3}
        return {j: seen.get(j, "done") for j in job_ids}  # condor_q lists only jobs still in the queue

    def cancel(self, job_ids: Sequence[str]) -> None:
        if job_ids:
            run(["condor_rm", *job_ids])


def _without_resources(command: List[str]) -> List[str]:
    """The command less its --cores/--memory/--disk/--gpus pairs."""
    out: List[str] = []
    skip = False
    for part in command:
        if skip:
            skip = False
        elif part in ("--cores", "--memory", "--disk", "--gpus"):
            skip = True
        else:
            out.append(part)
    return out


def _condor_quote(arg: str) -> str:
    """An argument in HTCondor's new-style quoted syntax."""
    arg = arg.replace('"', '""')
    return f"'{arg.replace(chr(39), chr(39) * 2)}'" if (" " in arg or "'" in arg) else arg
