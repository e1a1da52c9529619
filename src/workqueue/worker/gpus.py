"""Which of a worker's GPUs each running task holds, and the variables that tell the task.

As in CCTools (work_queue_gpus.c, work_queue_process.c), a task that declares ``gpus=n`` gets
``CUDA_VISIBLE_DEVICES`` naming n devices no other running task holds; a task that declares no
GPUs is given nothing and inherits the worker's own value, as CCTools does.

The ids are the worker's own: those in its ``CUDA_VISIBLE_DEVICES`` when it was started with one
(``2,5`` gives ids 2 and 5; UUIDs are kept as they are), else 0..gpus-1.

Function tasks get the same variables for their call only (pyfunc_child sets them in the pooled
process's ``os.environ`` and puts the worker's values back for the next call). The limit of a
pooled process: CUDA reads ``CUDA_VISIBLE_DEVICES`` once, when the process first initializes it,
so a call that initializes CUDA fixes that process's devices for every later call it runs; such
calls should be commands, or run in a fresh process. Coprocess (remote) tasks get no variables.
"""
from __future__ import annotations

import math
from typing import Dict, List, Optional, Sequence, Set, Tuple

# CUDA_VISIBLE_DEVICES for NVIDIA; HIP_VISIBLE_DEVICES takes the same comma-separated list for AMD
# (HIP also reads CUDA_VISIBLE_DEVICES). ROCR_VISIBLE_DEVICES is not set: HIP numbers its devices
# among those ROCR leaves visible, so both set to physical ids like 2,5 would select nothing.
# ONEAPI_DEVICE_SELECTOR needs a backend name (level_zero:0,1) this worker cannot know.
DEVICE_VARIABLES = ("CUDA_VISIBLE_DEVICES", "HIP_VISIBLE_DEVICES")


def worker_device_ids(visible: Optional[str], count: int) -> List[str]:
    """The ids of a worker's ``count`` GPUs: its visible devices first, then the smallest numbers
    not among them when it offers more GPUs than it sees (``--gpus 4`` with no device)."""
    ids = [part.strip() for part in (visible or "").split(",") if part.strip()][:count]
    number = 0
    while len(ids) < count:
        if str(number) not in ids:
            ids.append(str(number))
        number += 1
    return ids


def devices_needed(amount: float) -> int:
    """A fraction of a GPU still needs a device to run on."""
    return math.ceil(amount - 1e-9) if amount > 0 else 0


def device_env(ids: Sequence[str]) -> Dict[str, str]:
    """The variables a task that holds ``ids`` runs with."""
    value = ",".join(ids)
    return {name: value for name in DEVICE_VARIABLES}


class GpuAllocator:
    """Hands out device ids to tasks and takes them back when the tasks end.

    The worker's books (free GPUs) start a task only when its whole GPUs are free, so a whole
    request always gets devices of its own. A fractional request (0.5) takes the device fewest
    tasks hold, and may share it with another fractional one.
    """

    def __init__(self, ids: Sequence[str]) -> None:
        self.ids: Tuple[str, ...] = tuple(ids)
        self._holders: Dict[str, Set[int]] = {device: set() for device in self.ids}
        self._held: Dict[int, Tuple[str, ...]] = {}

    def take(self, task_id: int, amount: float) -> Tuple[str, ...]:
        """The devices for ``task_id`` (none for no GPUs); a task holds at most one set."""
        self.release(task_id)
        wanted = min(devices_needed(amount), len(self.ids))
        if not wanted:
            return ()
        order = sorted(range(len(self.ids)), key=lambda i: (len(self._holders[self.ids[i]]), i))
        chosen = tuple(self.ids[i] for i in sorted(order[:wanted]))
        for device in chosen:
            self._holders[device].add(task_id)
        self._held[task_id] = chosen
        return chosen

    def release(self, task_id: int) -> None:
        """Give back what ``task_id`` holds (nothing if it holds nothing)."""
        for device in self._held.pop(task_id, ()):
            self._holders[device].discard(task_id)

    def release_all(self) -> None:
        for task_id in list(self._held):
            self.release(task_id)

    def held_by(self, task_id: int) -> Tuple[str, ...]:
        return self._held.get(task_id, ())

    def free(self) -> List[str]:
        return [device for device in self.ids if not self._holders[device]]
