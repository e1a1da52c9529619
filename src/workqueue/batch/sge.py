"""Grid Engine: N workers as one array job (``qsub -t 1-N``)."""
from __future__ import annotations

import re
import shlex
from typing import Dict, List, Sequence

from .base import BatchSystem, WorkerSpec, run


class SGE(BatchSystem):
    name = "sge"

    def script(self, spec: WorkerSpec) -> str:
        lines = ["#$ -N wq-worker", "#$ -S /bin/sh", "#$ -V", f"#$ -o {spec.job_dir()}", "#$ -j y"]
        if spec.memory:
            lines.append(f"#$ -l h_vmem={int(spec.memory)}M")
        return self.job_script(spec, lines)

    def submit(self, count: int, spec: WorkerSpec) -> List[str]:
        path = self.write_script(spec, self.script(spec))
        out = run(["qsub", "-terse", "-t", f"1-{count}", *shlex.split(spec.extra_batch_options), path], cwd=spec.job_dir())
        job = re.match(r"(\d+)", out.strip()).group(1)
        return [f"{job}.{i}" for i in range(1, count + 1)]

    def states(self, job_ids: Sequence[str]) -> Dict[str, str]:
        out = run(["qstat"])
        seen: Dict[str, str] = {}
        for line in out.splitlines()[2:]:
            fields = line.split()
            if len(fields) >= 5:
                state = "running" if "r" in fields[4] else "pending"
                for task in _expand_tasks(fields[-1] if len(fields) >= 10 else ""):
                    seen[f"{fields[0]}.{task}"] = state
                seen.setdefault(fields[0], state)
        return {j: seen.get(j, seen.get(j.split(".")[0], "done")) for j in job_ids}

    def cancel(self, job_ids: Sequence[str]) -> None:
        for job_id in job_ids:
            job, _, task = job_id.partition(".")
            run(["qdel", job, "-t", task] if task else ["qdel", job])


def _expand_tasks(field: str) -> List[str]:
    """'3' or '1-4:1' or '5,7' from qstat's ja-task-ID column."""
    tasks = []
    for part in field.split(","):
        m = re.match(r"(\d+)-(\d+)(?::(\d+))?$", part)
        if m:
            tasks += [str(i) for i in range(int(m.group(1)), int(m.group(2)) + 1, int(m.group(3) or 1))]
        elif part.isdigit():
            tasks.append(part)
    return tasks
