"""PBS and Torque: N workers as an array job (``qsub -J`` for PBS, ``-t`` for Torque)."""
from __future__ import annotations

import shlex
from typing import Dict, List, Sequence

from .base import BatchSystem, WorkerSpec, run


class PBS(BatchSystem):
    name = "pbs"
    array_flag = "-J"

    def resources(self, spec: WorkerSpec) -> List[str]:
        request = f"nodes=1:ppn={int(spec.cores or 1)}"
        if spec.memory:
            request += f",mem={int(spec.memory)}mb"
        return [f"#PBS -l {request}"]

    def script(self, spec: WorkerSpec) -> str:
        lines = ["#!/bin/sh", "#PBS -N wq-worker", "#PBS -j oe", f"#PBS -o {spec.job_dir()}", "#PBS -V"]
        lines += self.resources(spec)
        lines += [f"cd {shlex.quote(spec.job_dir())}", f"exec {spec.worker_shell()}"]
        return "\n".join(lines) + "\n"

    def submit(self, count: int, spec: WorkerSpec) -> List[str]:
        path = f"{spec.job_dir()}/worker.{self.name}.sh"
        with open(path, "w") as f:
            f.write(self.script(spec))
        ids = []
        extra = shlex.split(spec.extra_batch_options)
        if count > 1:
            out = run(["qsub", self.array_flag, f"0-{count - 1}", *extra, path], cwd=spec.job_dir())
            base = out.strip().split()[-1] if out.strip() else ""
            ids = [self._array_member(base, i) for i in range(count)]
        else:
            ids = [run(["qsub", *extra, path], cwd=spec.job_dir()).strip().split()[-1]]
        return ids

    @staticmethod
    def _array_member(base: str, index: int) -> str:
        if "[]" in base:
            return base.replace("[]", f"[{index}]")
        return f"{base}_{index}" if base.isdigit() else f"{base}[{index}]"

    def states(self, job_ids: Sequence[str]) -> Dict[str, str]:
        out = run(["qstat", "-t"]) if job_ids else ""
        seen = {}
        for line in out.splitlines():
            fields = line.split()
            if len(fields) >= 5 and fields[0][0].isdigit():
                seen[fields[0].split(".")[0]] = "running" if fields[4] == "R" else "pending"
        return {j: seen.get(j.split(".")[0], "done") for j in job_ids}

    def cancel(self, job_ids: Sequence[str]) -> None:
        if job_ids:
            run(["qdel", *job_ids])


class Torque(PBS):
    name = "torque"
    array_flag = "-t"
