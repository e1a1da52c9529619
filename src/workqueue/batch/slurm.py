"""Slurm: N workers as an array job of N one-task jobs, each asking for the worker's cores and memory."""
from __future__ import annotations

import logging
import shlex
from typing import Dict, List, Optional, Sequence, Set, Tuple

from .base import BatchError, BatchSystem, WorkerSpec, run

log = logging.getLogger(__name__)

PENDING = {"PENDING", "CONFIGURING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESIZING", "SPECIAL_EXIT"}
RUNNING = {"RUNNING", "COMPLETING", "SUSPENDED", "STOPPED", "SIGNALING", "STAGE_OUT"}
PURGED = "Invalid job id"  # what squeue says of a job it has forgotten (older than MinJobAge)


def state_of(slurm_state: Optional[str]) -> str:
    """Ours for one of squeue's %T states; a job squeue did not list, or lists as ended, is done."""
    if slurm_state in PENDING:
        return "pending"
    if slurm_state in RUNNING:
        return "running"
    return "done"


class Slurm(BatchSystem):
    name = "slurm"

    def script(self, spec: WorkerSpec) -> str:
        lines = ["#SBATCH --job-name=wq-worker", "#SBATCH --ntasks=1", "#SBATCH --nodes=1",
                 f"#SBATCH --output={spec.job_dir()}/worker-%A_%a.log"]
        cores = spec.requested_cores()
        lines.append(f"#SBATCH --cpus-per-task={cores}" if cores else "#SBATCH --exclusive")
        if spec.memory:
            lines.append(f"#SBATCH --mem={int(spec.memory)}M")
        if spec.disk:
            lines.append(f"#SBATCH --tmp={int(spec.disk)}M")
        if spec.gpus:
            lines.append(f"#SBATCH --gres=gpu:{int(spec.gpus)}")
        return self.job_script(spec, lines)

    def submit(self, count: int, spec: WorkerSpec) -> List[str]:
        command = ["sbatch", "--parsable", f"--array=0-{count - 1}"] + shlex.split(spec.extra_batch_options)
        job = run(command, input_text=self.script(spec), cwd=spec.job_dir()).strip().split(";")[0]
        return [f"{job}_{i}" for i in range(count)]

    def states(self, job_ids: Sequence[str]) -> Dict[str, str]:
        arrays = sorted({_array_of(j) for j in job_ids})
        if not arrays:
            return {}
        try:
            seen, known = _squeue(arrays), set(arrays)
        except BatchError as error:
            if PURGED not in str(error):
                log.warning("squeue failed; the state of %d job(s) is unknown this time: %s", len(job_ids), error)
                return {}
            seen, known = _one_by_one(arrays)  # one forgotten array failed the query for all of them
        return {j: state_of(seen.get(j)) for j in job_ids if _array_of(j) in known}

    def cancel(self, job_ids: Sequence[str]) -> None:
        if job_ids:
            run(["scancel", *job_ids])


def _array_of(job_id: str) -> str:
    return job_id.split("_")[0]


def _squeue(arrays: Sequence[str]) -> Dict[str, str]:
    """{job id: Slurm state} of these arrays' members that Slurm still lists."""
    out = run(["squeue", "-h", "-r", "-o", "%i %T", "-j", ",".join(arrays)])
    return dict(line.split(None, 1) for line in out.splitlines() if len(line.split()) == 2)


def _one_by_one(arrays: Sequence[str]) -> Tuple[Dict[str, str], Set[str]]:
    """Each array asked after on its own: what was seen, and which arrays have a known state (a
    forgotten one is known: done). An array whose query fails otherwise stays unknown."""
    seen: Dict[str, str] = {}
    known: Set[str] = set()
    for array in arrays:
        try:
            seen.update(_squeue([array]))
        except BatchError as error:
            if PURGED not in str(error):
                log.warning("squeue cannot tell the state of job %s this time: %s", array, error)
                continue
        known.add(array)
    return seen, known
