"""What a worker offers: each resource as asked (the option, else CORES, MEMORY, DISK or GPUS in the
environment), else what this machine has; never more than a bound found by ``worker.grant``: what
the batch job was granted, the CPUs this process may run on, its cgroup's limits.

For each resource, in this order:

1. asked: ``--cores`` (``--memory``, ``--disk``, ``--gpus``), else the variable CORES (MEMORY,
   DISK, GPUS) when it is a finite number >= 0. A 0 for cores, memory or disk means "not said", as
   it always has; 0 GPUs is honoured.
2. bound: the smallest of the bounds found (see worker.grant's table).
3. offered: what was asked, capped at the bound with a warning naming both figures; when nothing
   was asked, the smaller of the bound and this machine's figure (``os.cpu_count()``, its total
   memory, the free space of the workspace's file system, the GPUs it shows).

:func:`decide` is the pure decision; :func:`detect_resources` reads the real machine and logs.
"""
from __future__ import annotations

import logging
import math
import os
import resource
import shutil
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Dict, List, Mapping, Optional, Tuple

import psutil

from .grant import RESOURCES, Bound, Reader, batch_job, bounds

if TYPE_CHECKING:
    from .main import Options

log = logging.getLogger("workqueue.worker")

VARIABLES = {"cores": "CORES", "memory": "MEMORY", "disk": "DISK", "gpus": "GPUS"}
UNITS = {"cores": "core(s)", "memory": "MB of memory", "disk": "MB of disk", "gpus": "GPU(s)"}
READ_LIMIT = 1 << 20  # a mountinfo or a machine ad is a few KB


@dataclass
class Offer:
    """What a worker offers, where each figure came from, and what to warn about."""
    resources: Dict[str, float]
    sources: Dict[str, str]
    warnings: List[str] = field(default_factory=list)
    job: Optional[str] = None

    def describe(self) -> str:
        """'1 core(s) (SLURM_CPUS_ON_NODE=1), 2048 MB of memory (this machine), ...' for the log."""
        return ", ".join(f"{self.resources[name]:g} {UNITS[name]} ({self.sources[name]})" for name in RESOURCES)


def decide(asked: Mapping[str, Optional[float]], env: Mapping[str, str], read: Reader,
           affinity: Optional[int], machine: Mapping[str, float], address_space: Optional[int] = None) -> Offer:
    """What to offer. ``asked``: the options by resource (None: not given); ``machine``: this
    machine's own figures; the rest as in :func:`worker.grant.bounds`."""
    found = bounds(env, read, affinity, address_space)
    offer = Offer({}, {}, job=batch_job(env))
    for name in RESOURCES:
        wish = _asked(name, asked.get(name), env, offer.warnings)
        bound = min(found[name], key=lambda b: b.amount, default=None)
        amount, source = _settle(name, wish, float(machine[name]), bound, offer.warnings)
        offer.resources[name], offer.sources[name] = amount, source
    return offer


def _asked(name: str, option: Optional[float], env: Mapping[str, str], warnings: List[str]
           ) -> Optional[Tuple[float, str]]:
    """(amount, who asked) from the option, else from the environment; None when neither says."""
    if option is not None and (option or name == "gpus"):
        return float(option), f"--{name}"
    variable = VARIABLES[name]
    text = env.get(variable)
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 <= value < math.inf:
        warnings.append(f"ignoring {variable}={text[:64]!r}: not a finite non-negative number")
        return None
    if value == 0 and name != "gpus":
        return None
    return value, f"{variable}={text}"


def _settle(name: str, wish: Optional[Tuple[float, str]], machine: float, bound: Optional[Bound],
            warnings: List[str]) -> Tuple[float, str]:
    if wish is None:
        if bound is not None and bound.amount < machine:
            return bound.amount, bound.source
        return machine, "this machine"
    amount, asker = wish
    if bound is None or amount <= bound.amount:
        return amount, asker
    whose = "this job was granted" if bound.granted else "this process may use"
    warnings.append(f"{asker} asks for {amount:g} {UNITS[name]}, more than the {bound.amount:g} {whose} "
                    f"({bound.source}): offering {bound.amount:g}")
    return bound.amount, bound.source


# -- the real machine ----------------------------------------------------------------------------
def detect_resources(workdir: str, options: "Options") -> Dict[str, float]:
    """What this worker offers (memory and disk in MB); warnings logged."""
    return offer_here(workdir, options).resources


def offer_here(workdir: str, options: "Options") -> Offer:
    """:func:`decide` on this machine, with this process's environment; warnings logged."""
    asked = {"cores": options.cores, "memory": options.memory, "disk": options.disk, "gpus": options.gpus}
    offer = decide(asked, os.environ, read_text, _affinity(), _machine(workdir), _address_space())
    for warning in offer.warnings:
        log.warning("%s", warning)
    return offer


def read_text(path: str) -> Optional[str]:
    try:
        with open(path, errors="replace") as file:
            return file.read(READ_LIMIT)
    except (OSError, ValueError):
        return None


def _machine(workdir: str) -> Dict[str, float]:
    return {
        "cores": float(os.cpu_count() or 1),
        "memory": float(psutil.virtual_memory().total // (1 << 20)),
        "disk": float(shutil.disk_usage(workdir).free // (1 << 20)),
        "gpus": float(_count_gpus()),
    }


def _affinity() -> Optional[int]:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on every platform
        return None


def _address_space() -> Optional[int]:
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    return None if soft == resource.RLIM_INFINITY else soft


def _count_gpus() -> int:
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return len([d for d in visible.split(",") if d.strip()])
    return len([d for d in os.listdir("/dev") if d.startswith("nvidia") and d[6:].isdigit()]) if os.path.isdir("/dev") else 0
