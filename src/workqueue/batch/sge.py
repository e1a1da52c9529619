"""Grid Engine: N workers as one array job (``qsub -t 1-N``)."""
from __future__ import annotations

import logging
import re
import shlex
from typing import Dict, List, Sequence

from .base import BatchSystem, WorkerSpec, query, run

log = logging.getLogger(__name__)


class SGE(BatchSystem):
    name = "sge"

    def script(self, spec: WorkerSpec) -> str:
        lines = ["#$ -N wq-worker", "#$ -S /bin/sh", "#$ -V", f"#$ -o {spec.job_dir()}", "#$ -j y"]
        if spec.memory:
            lines.append(f"#$ -l h_vmem={int(spec.memory)}M")
        return self.job_script(spec, lines)

    def submit(self, count: int, spec: WorkerSpec) -> List[str]:
        if (spec.requested_cores() or 1) > 1 and "-pe" not in spec.extra_batch_options:
            log.warning("each worker offers %s cores but Grid Engine grants one slot unless asked: "
                        "add a parallel environment with -p '-pe NAME %s'", spec.cores, spec.requested_cores())
        path = self.write_script(spec, self.script(spec))
        out = run(["qsub", "-terse", "-t", f"1-{count}", *shlex.split(spec.extra_batch_options), path], cwd=spec.job_dir())
        job = re.match(r"(\d+)", out.strip()).group(1)
        return [f"{job}.{i}" for i in range(1, count + 1)]

    def states(self, job_ids: Sequence[str]) -> Dict[str, str]:
        out = query(["qstat"]) if job_ids else ""
        if out is None:
            return {}
        seen: Dict[str, str] = {}
        for line in out.splitlines()[2:]:
            fields = line.split()
            if len(fields) < 8:
                continue
            tasks = _expand_tasks(_task_column(fields))
            for name in [f"{fields[0]}.{task}" for task in tasks] or [fields[0]]:
                seen[name] = state_of(fields[4])
        return {j: seen.get(j, "done") for j in job_ids}  # qstat lists every job not yet ended

    def cancel(self, job_ids: Sequence[str]) -> None:
        for job_id in job_ids:
            job, _, task = job_id.partition(".")
            run(["qdel", job, "-t", task] if task else ["qdel", job])


def state_of(sge_state: str) -> str:
    """Ours for qstat's state letters: r/t running; E (error: it will never run) or d (being deleted)
    done; anything else (qw, hqw, ...) pending. A job qstat does not list has ended: done."""
    if "E" in sge_state or "d" in sge_state:
        return "done"
    return "running" if ("r" in sge_state or "t" in sge_state) else "pending"


def _task_column(fields: List[str]) -> str:
    """qstat's ja-task-ID, if the line has one: after the queue (running: it has a queue@host) and slots."""
    column = 9 if "@" in fields[7] else 8
    return fields[column] if len(fields) > column else ""


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
