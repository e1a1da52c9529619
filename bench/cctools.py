"""CCTools Work Queue beside us: its driver runs under Debian's python3, where its module lives."""
from __future__ import annotations

import json
import os
import subprocess
from typing import Any, Dict, Optional

DEBIAN_PYTHON = "/usr/bin/python3"
DRIVER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cctools_driver.py")


def unavailable() -> Optional[str]:
    """Why CCTools cannot be measured here, or None when it can."""
    if not os.path.exists("/usr/bin/work_queue_worker"):
        return "CCTools not installed (apt-get install coop-computing-tools python3-workqueue)"
    probe = subprocess.run([DEBIAN_PYTHON, "-c", "import work_queue"], capture_output=True, text=True,
                           env=_clean_env(), cwd="/")
    if probe.returncode != 0:
        return f"Debian's python3 cannot import work_queue: {probe.stderr.strip().splitlines()[-1:]}"
    return None


def run(workload: str, timeout: float = 1800, **spec: Any) -> Dict[str, float]:
    spec["workload"] = workload
    done = subprocess.run([DEBIAN_PYTHON, DRIVER, json.dumps(spec)], capture_output=True, text=True,
                          env=_clean_env(), cwd="/", timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"CCTools driver failed: {done.stderr.strip()[-500:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _clean_env() -> Dict[str, str]:
    """Debian's interpreter must not see our virtualenv or PYTHONPATH (our work_queue would shadow theirs)."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
