"""The names ``tune(name, value)`` takes: CCTools' keys (Debian's 9.9 and upstream's), what each does
here, and why the few that do nothing cannot apply. A name that is not CCTools' is refused."""
from __future__ import annotations

from typing import Dict

# name -> what it does here
HONOURED: Dict[str, str] = {
    "keepalive-interval": "seconds between heartbeats to a quiet worker (> 0)",
    "keepalive-timeout": "seconds of silence before a worker is lost (> 0)",
    "hungry-minimum": "hungry() is true while fewer tasks than this wait",
    "hungry-minimum-factor": "... or fewer than this many per connected worker (0: off, the default here)",
    "wait-for-workers": "no task is sent until this many workers have connected (once)",
    "category-steady-n-tasks": "finished tasks of a category before its allocation is guessed",
    "fast-abort-multiplier": "the queue's fast abort multiplier (below 1: off)",
    "prefetch": "1: short tasks may wait queued on busy workers (the default); 0: never",
    "temp-replica-count": "copies of each temporary file kept on distinct workers (1, the default: no extra copy)",
}

# name -> why it changes nothing here (tune warns once with this)
WITHOUT_EFFECT: Dict[str, str] = {
    "asynchrony-multiplier": "workers are not over-committed: a task runs where its resources fit",
    "asynchrony-modifier": "workers are not over-committed: a task runs where its resources fit",
    "resource-submit-multiplier": "workers are not over-committed: a task runs where its resources fit",
    "proportional-resources": "unset resources of a task that declared some count as 0 (cores as 1), as in CCTools 7.3",
    "proportional-whole-tasks": "unset resources of a task that declared some count as 0 (cores as 1), as in CCTools 7.3",
    "force-proportional-resources": "unset resources of a task that declared some count as 0 (cores as 1), as in CCTools 7.3",
    "ramp-down-heuristic": "tasks are never given more than they asked for",
    "wait-retrieve-many": "wait() already takes every task finished in a turn of the master's loop at once",
    "min-transfer-timeout": "transfers are bounded by chunk acknowledgements and the keepalive timeout",
    "transfer-outlier-factor": "transfers are bounded by chunk acknowledgements and the keepalive timeout",
    "default-transfer-rate": "transfers are bounded by chunk acknowledgements and the keepalive timeout",
    "foreman-transfer-timeout": "there are no foremen here",
    "short-timeout": "sends never block the master: there is no short timeout to tune",
    "long-timeout": "sends never block the master: there is no long timeout to tune",
}


def canonical(name: str) -> str:
    return name.replace("_", "-")


def is_known(name: str) -> bool:
    return canonical(name) in HONOURED or canonical(name) in WITHOUT_EFFECT
