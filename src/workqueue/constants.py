"""Numbers shared by the master, the worker and the CCTools skin (CCTools' own values)."""
import enum

DEFAULT_PORT = 9123
PROTOCOL_VERSION = 5


class Result(enum.IntEnum):
    """Infrastructure outcome of a task; the command's exit code is separate (``return_status``)."""

    SUCCESS = 0
    INPUT_MISSING = 1
    OUTPUT_MISSING = 2
    STDOUT_MISSING = 4
    SIGNAL = 8
    RESOURCE_EXHAUSTION = 16
    TASK_TIMEOUT = 24
    UNKNOWN = 32
    FORSAKEN = 40
    MAX_RETRIES = 48
    TASK_MAX_RUN_TIME = 56
    DISK_ALLOC_FULL = 64
    RMONITOR_ERROR = 72
    OUTPUT_TRANSFER_ERROR = 80


class TaskState(enum.IntEnum):
    UNKNOWN = 0
    READY = 1
    RUNNING = 2
    WAITING_RETRIEVAL = 3
    RETRIEVED = 4
    DONE = 5
    CANCELED = 6


RESOURCE_NAMES = ("cores", "memory", "disk", "gpus")
