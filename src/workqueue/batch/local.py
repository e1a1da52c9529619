"""Workers as plain processes on this machine: the factory's default and the test bed for the rest."""
from __future__ import annotations

import os
import signal
import subprocess
from typing import Dict, List, Sequence

from .base import BatchSystem, WorkerSpec


class Local(BatchSystem):
    name = "local"

    def __init__(self) -> None:
        self._processes: Dict[str, subprocess.Popen] = {}

    def submit(self, count: int, spec: WorkerSpec) -> List[str]:
        ids = []
        env = dict(os.environ, **spec.env)
        for _ in range(count):
            process = subprocess.Popen(spec.worker_command(), stdin=subprocess.DEVNULL, env=env,
                                       start_new_session=True)
            job_id = str(process.pid)
            self._processes[job_id] = process
            ids.append(job_id)
        return ids

    def states(self, job_ids: Sequence[str]) -> Dict[str, str]:
        return {j: ("running" if j in self._processes and self._processes[j].poll() is None else "done")
                for j in job_ids}

    def cancel(self, job_ids: Sequence[str]) -> None:
        for job_id in job_ids:
            process = self._processes.pop(job_id, None)
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
