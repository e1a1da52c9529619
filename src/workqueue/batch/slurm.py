"""Slurm: N workers as an array job of N one-task jobs, each asking for the worker's cores and memory."""
from __future__ import annotations

import shlex
from typing import Dict, List, Sequence

from .base import BatchSystem, WorkerSpec, run

STATES = {"PENDING": "pending", "CONFIGURING": "pending", "RUNNING": "running", "COMPLETING": "running"}


class Slurm(BatchSystem):
    name = "slurm"

    def script(self, spec: WorkerSpec) -> str:
        lines = ["#SBATCH --job-name=wq-worker", "#SBATCH --ntasks=1", "#SBATCH --nodes=1",
                 f"#SBATCH --output={spec.job_dir()}/worker-%A_%a.log"]
        if spec.cores:
            lines.append(f"#SBATCH --cpus-per-task={int(spec.cores)}")
        if spec.memory:
            lines.append(f"#SBATCH --mem={int(spec.memory)}M")
        if spec.disk:
            lines.append(f"#SBATCH --tmp={int(spec.disk)}M")
        return self.job_script(spec, lines)

    def submit(self, count: int, spec: WorkerSpec) -> List[str]:
        command = ["sbatch", "--parsable", f"--array=0-{count - 1}"] + shlex.split(spec.extra_batch_options)
        job = run(command, input_text=self.script(spec), cwd=spec.job_dir()).strip().split(";")[0]
        return [f"{job}_{i}" for i in range(count)]

    def states(self, job_ids: Sequence[str]) -> Dict[str, str]:
        arrays = sorted({j.split("_")[0] for j in job_ids})
        out = run(["squeue", "-h", "-r", "-o", "%i %T", "-j", ",".join(arrays)]) if arrays else ""
        seen = dict(line.split() for line in out.splitlines() if line.strip())
        return {j: STATES.get(seen.get(j, ""), "done") for j in job_ids}

    def cancel(self, job_ids: Sequence[str]) -> None:
        if job_ids:
            run(["scancel", *job_ids])
