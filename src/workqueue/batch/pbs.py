"""PBS and Torque: N workers as N one-node jobs (array ids differ between PBS Pro, Torque and the
Slurm-backed qsub, and cancelling one member can cancel them all; separate jobs behave the same everywhere)."""
from __future__ import annotations

import shlex
from typing import Dict, List, Sequence

from .base import BatchSystem, WorkerSpec, query, run

PBS_STATES = {"R": "running", "E": "running", "C": "done", "F": "done", "X": "done"}


class PBS(BatchSystem):
    name = "pbs"

    def resources(self, spec: WorkerSpec) -> List[str]:
        request = f"nodes=1:ppn={spec.requested_cores() or 1}"
        if spec.memory:
            request += f",mem={int(spec.memory)}mb"
        return [f"#PBS -l {request}"]

    def script(self, spec: WorkerSpec) -> str:
        lines = ["#PBS -N wq-worker", "#PBS -j oe", f"#PBS -o {spec.job_dir()}", "#PBS -V"]
        return self.job_script(spec, lines + self.resources(spec))

    def submit(self, count: int, spec: WorkerSpec) -> List[str]:
        path = self.write_script(spec, self.script(spec))
        extra = shlex.split(spec.extra_batch_options)
        return [run(["qsub", *extra, path], cwd=spec.job_dir()).strip().split()[-1] for _ in range(count)]

    def states(self, job_ids: Sequence[str]) -> Dict[str, str]:
        out = query(["qstat"]) if job_ids else ""
        if out is None:
            return {}
        seen = {}
        for line in out.splitlines():
            fields = line.split()
            if len(fields) >= 5 and fields[0][0].isdigit():
                seen[fields[0].split(".")[0]] = PBS_STATES.get(fields[4], "pending")
        return {j: seen.get(j.split(".")[0], "done") for j in job_ids}

    def cancel(self, job_ids: Sequence[str]) -> None:
        if job_ids:
            run(["qdel", *job_ids])


class Torque(PBS):
    name = "torque"
