"""HTCondor: one submit description, ``queue N``, with request_cpus/memory/disk."""
from __future__ import annotations

import re
from typing import Dict, List, Sequence

from .base import BatchSystem, WorkerSpec, run

STATES = {"1": "pending", "2": "running", "5": "pending"}


class Condor(BatchSystem):
    name = "condor"

    def description(self, count: int, spec: WorkerSpec) -> str:
        command = spec.worker_command()
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
        if spec.cores:
            lines.append(f"request_cpus = {int(spec.cores)}")
        if spec.memory:
            lines.append(f"request_memory = {int(spec.memory)}")
        if spec.disk:
            lines.append(f"request_disk = {int(spec.disk) * 1024}")  # KiB
        lines += [line for line in spec.extra_batch_options.split(";") if line.strip()]
        lines.append(f"queue {count}")
        return "\n".join(lines) + "\n"

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
        out = run(["condor_q", "-af", "ClusterId", "ProcId", "JobStatus"])
        seen = {f"{c}.{p}": STATES.get(s, "done") for c, p, s in (l.split() for l in out.splitlines() if l.strip())}
        return {j: seen.get(j, "done") for j in job_ids}

    def cancel(self, job_ids: Sequence[str]) -> None:
        if job_ids:
            run(["condor_rm", *job_ids])


def _condor_quote(arg: str) -> str:
    """An argument in HTCondor's new-style quoted syntax."""
    arg = arg.replace('"', '""')
    return f"'{arg.replace(chr(39), chr(39) * 2)}'" if (" " in arg or "'" in arg) else arg
