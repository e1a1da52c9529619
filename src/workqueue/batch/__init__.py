"""Worker submitters, one per batch system behind one interface (``base.BatchSystem``)."""
from __future__ import annotations

import importlib
from typing import Dict

from .base import BatchError, BatchSystem, WorkerSpec

SYSTEMS: Dict[str, str] = {
    "local": "local.Local", "slurm": "slurm.Slurm", "sge": "sge.SGE", "pbs": "pbs.PBS",
    "torque": "pbs.Torque", "condor": "condor.Condor", "ec2": "ec2.EC2",
}


def get(name: str, **options) -> BatchSystem:
    """The batch system called ``name`` (local, slurm, sge, pbs, torque, condor, ec2)."""
    if name not in SYSTEMS:
        raise ValueError(f"unknown batch system {name!r}: choose one of {', '.join(SYSTEMS)}")
    module, cls = SYSTEMS[name].split(".")
    return getattr(importlib.import_module(f"{__name__}.{module}"), cls)(**options)


__all__ = ["BatchError", "BatchSystem", "WorkerSpec", "SYSTEMS", "get"]
