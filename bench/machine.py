"""A description of the machine a run was made on, stored with its figures."""
from __future__ import annotations

import compileall
import os
import platform
import sys
from typing import Any, Dict

import psutil


def precompile() -> None:
    """Write the bytecode of workqueue's modules, as ``pip install`` does. An editable install run
    with PYTHONDONTWRITEBYTECODE=1 (this project's VM sets it) has none, and then every master,
    worker and function process compiles the package again: 0.04-0.08 s of CPU each, which would
    be charged to the figures."""
    import workqueue
    compileall.compile_dir(os.path.dirname(workqueue.__file__), quiet=1)


def describe() -> Dict[str, Any]:
    import zmq

    import workqueue
    from workqueue.data import fastio
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / (1 << 30), 1),
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "workqueue": workqueue.__version__,
        "fastio": fastio.BACKEND,
        "pyzmq": zmq.__version__,
        "libzmq": zmq.zmq_version(),
        # other work on a shared machine moves every figure: the load at the start says how much to trust them
        "load_average_1min": round(os.getloadavg()[0], 2),
    }


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"
