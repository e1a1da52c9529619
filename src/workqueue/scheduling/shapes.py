"""A task's *shape*: the booking it needs from a worker, as a hashable tuple. Pure.

Tasks of one shape are interchangeable to the scheduler, which keeps one queue per shape: a
dispatch round looks at the head of each shape only. A shape is ``(WHOLE,)`` or ``(WHOLE, disk)``
for a task that declared nothing, else ``(cores, memory, disk, gpus)``; either may end with its
``Needs`` (features, minimum time left) when it has any.
"""
from __future__ import annotations

from typing import Dict, FrozenSet, NamedTuple, Optional, Tuple

from ..constants import RESOURCE_NAMES

Resources = Dict[str, float]

WHOLE = "whole"  # the shape of a task that declared nothing: it takes an entire worker
NO_FEATURES: FrozenSet[str] = frozenset()


class Needs(NamedTuple):
    """What a task asks of a worker beyond amounts: the features the worker was started with
    (``--feature``), and at least ``min_time`` seconds of its life left (CCTools'
    ``running_time_min`` against the worker's ``--wall-time``). At the end of a shape when set."""
    features: FrozenSet[str] = NO_FEATURES
    min_time: float = 0.0


NO_NEEDS = Needs()


def request_shape(declared: Dict[str, Optional[float]], input_mb: float = 0.0, needs: Needs = NO_NEEDS) -> Tuple:
    """The booking a task needs, from what it declared (CCTools' rules, simplified), the size of
    its inputs and its other ``needs`` (see Needs).

    Nothing declared: the whole worker. Otherwise unset memory, disk and gpus count as 0, and unset
    cores as 1 (0 for a task that asks for gpus), so declared tasks pack side by side. A worker
    must have room on disk for the inputs: a task whose inputs fill more than a worker's disk is
    never sent there (it could only fail, or be evicted and sent again). The input size is rounded
    down to a power of two, so tasks with inputs of many sizes still fall into a few shapes.
    """
    disk_floor = input_disk_floor(input_mb)
    get = declared.get  # RESOURCE_NAMES, unrolled: this runs once per task submitted
    if get("cores") is None and get("memory") is None and get("disk") is None and get("gpus") is None:
        if needs != NO_NEEDS:
            return (WHOLE, disk_floor, needs)
        return (WHOLE, disk_floor) if disk_floor else (WHOLE,)
    gpus = declared.get("gpus") or 0
    cores = declared.get("cores")
    if cores is None:
        cores = 0 if gpus else 1
    disk = max(float(declared.get("disk") or 0), disk_floor)
    shape = (float(cores), float(declared.get("memory") or 0), disk, float(gpus))
    return shape + (needs,) if needs != NO_NEEDS else shape


def shape_needs(shape: Tuple) -> Needs:
    """What a shape asks beyond amounts (nothing, for most)."""
    last = shape[-1]
    return last if type(last) is Needs else NO_NEEDS


def input_disk_floor(input_mb: float) -> float:
    """The largest power of two (in MB) not above ``input_mb``; 0 below 1 MB."""
    if input_mb < 1:
        return 0.0
    return float(1 << (int(input_mb).bit_length() - 1))


def describe_shape(shape: Tuple) -> str:
    wanted = shape_needs(shape)
    needs = f" with features {', '.join(sorted(wanted.features))}" if wanted.features else ""
    needs += f" and {wanted.min_time:g} s of its wall time left" if wanted.min_time else ""
    if shape[0] == WHOLE:
        return (f"a whole worker with disk >= {shape[1]:g} MB" if len(shape) > 1 and shape[1] else "a whole worker") + needs
    return "cores={:g} memory={:g} disk={:g} gpus={:g}".format(*shape[:4]) + needs


def shape_resources(shape: Tuple) -> Optional[Resources]:
    if shape[0] == WHOLE:
        return None
    return dict(zip(RESOURCE_NAMES, shape))
