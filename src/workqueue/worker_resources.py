"""What a worker offers: its options, else the environment (CORES, MEMORY, DISK, GPUS), else what
this machine has."""
from __future__ import annotations

import logging
import math
import os
import shutil
from typing import TYPE_CHECKING, Dict, Optional

import psutil

if TYPE_CHECKING:
    from .worker import Options

log = logging.getLogger("workqueue.worker")


def detect_resources(workdir: str, options: "Options") -> Dict[str, float]:
    """What this machine offers, unless the options say otherwise (memory and disk in MB)."""
    cores = options.cores or _env_number("CORES") or os.cpu_count() or 1
    memory = options.memory or _env_number("MEMORY") or psutil.virtual_memory().total // (1 << 20)
    disk = options.disk or _env_number("DISK") or shutil.disk_usage(workdir).free // (1 << 20)
    gpus = options.gpus if options.gpus is not None else (_env_number("GPUS") or _count_gpus())
    return {"cores": float(cores), "memory": float(memory), "disk": float(disk), "gpus": float(gpus)}


def _env_number(name: str) -> Optional[float]:
    """The variable as a finite non-negative number; None, with a warning, for anything else
    (``CORES=inf`` would otherwise be offered to the master)."""
    value = os.environ.get(name)
    if not value:
        return None
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not 0 <= number < math.inf:
        log.warning("ignoring %s=%r: not a finite non-negative number", name, value[:64])
        return None
    return number


def _count_gpus() -> int:
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return len([d for d in visible.split(",") if d.strip()])
    return len([d for d in os.listdir("/dev") if d.startswith("nvidia") and d[6:].isdigit()]) if os.path.isdir("/dev") else 0
