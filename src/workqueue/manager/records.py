"""What the master's loop knows of each worker and each task, and its settings: plain records."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Set, Tuple

from ..constants import Result
from ..data.transfer import Incoming, Outbox

PREFETCH_MAX_SECONDS = 0.2  # tasks of a category that run shorter than this on average may be prefetched
PREFETCH_MIN_SAMPLES = 5  # ... once this many have finished


# results a worker reports that are not the task's fault: the task runs again elsewhere
TRANSIENT = {Result.FORSAKEN}


@dataclass
class Settings:
    password: Optional[bytes] = None
    keepalive_interval: float = 5.0
    keepalive_timeout: float = 30.0
    transactions_log: Optional[str] = None
    hungry_minimum: int = 10
    hungry_minimum_factor: float = 0.0  # hungry while fewer than this many tasks per worker wait
    wait_for_workers: int = 0
    prefetch: bool = True
    encrypted: bool = False  # the master uses CURVE: so do the transfers between its workers


@dataclass
class WorkerConn:
    identity: bytes
    worker_id: str
    hostname: str
    address: str
    resources: Dict[str, float]
    last_heard: float
    cached: Set[str] = field(default_factory=set)
    outbox: Outbox = field(default_factory=Outbox)
    last_sent: float = 0.0
    tasks: Set[int] = field(default_factory=set)
    completed: int = 0
    task_seconds: float = 0.0  # wall time of its finished tasks, summed
    timed: int = 0  # ... over this many (results without a measured wall time are not counted)
    ends_at: Optional[float] = None  # monotonic, when its --wall-time is over
    features: List[str] = field(default_factory=list)


@dataclass
class TaskRecord:
    task_id: int
    spec: Dict[str, Any]
    submit_time: float
    program: str = ""  # categories.task_program: what its wall time predicts for prefetching
    attempts: int = 0  # times sent to a worker
    revoked: int = 0  # ... and taken back before it started there (not a try)
    worker: Optional[bytes] = None
    allocation: Dict[str, float] = field(default_factory=dict)
    dispatch_time: float = 0.0
    prefetched: bool = False  # its latest dispatch queued it on a busy worker
    incoming: Dict[str, Tuple[Incoming, str, int]] = field(default_factory=dict)
    bytes_sent: int = 0
    bytes_received: int = 0
    cache_hits: int = 0
    warned_unfit: bool = False
