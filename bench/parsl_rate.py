"""Parsl, unmodified: N no-op ``python_app``s on its HighThroughputExecutor (2 workers) and on its
WorkQueueExecutor in coprocess mode over workqueue (2 one-core ``work_queue_worker --coprocess
parsl_coprocess.py`` started by Parsl's LocalProvider), in turn in the same run.

Each executor runs in a fresh interpreter of its own (Parsl starts spawn-context processes that
import ``__main__`` again, and ``parsl.load`` holds global state), bounded by a timeout: a run that
does not finish is reported as such, with its process tree, instead of hanging the harness. The
figure is apps per second from the first submission to the last result, after a warm-up of a few
apps (workers connected, coprocesses started). Skipped when Parsl is not installed.

Why the timeout: once an app fails, the script stops and Parsl's cleanup may never return.
``WorkQueueExecutor.shutdown`` stops its submit process, then joins the feeder thread of its task
queue, which is blocked writing the apps not yet handed over into a pipe nobody reads any more
(py-spy: ``Queue.join_thread`` <- ``WorkQueueExecutor.shutdown``, executor.py:718, Parsl 2026.10.26).

``python -m bench.parsl_rate [N] [RUNS]`` runs the pair RUNS times and prints each figure.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from typing import Dict, Optional

WORKERS = 2
WARM_UP = 20
TIMEOUT = 300.0


SCRIPT = """
import os, sys, time
from parsl.app.app import python_app


@python_app
def noop():
    return None


def executor(kind):
    from parsl.executors import HighThroughputExecutor, WorkQueueExecutor
    from parsl.providers import LocalProvider
    if kind == "htex":
        return HighThroughputExecutor(label="htex", max_workers_per_node={workers}, cores_per_worker=1,
                                      provider=LocalProvider(init_blocks=1, min_blocks=1, max_blocks=1))
    return WorkQueueExecutor(label="wq", port=0, coprocess=True, shared_fs=False, worker_options="--cores 1",
                             provider=LocalProvider(init_blocks={workers}, min_blocks={workers}, max_blocks={workers}))


if __name__ == "__main__":
    import parsl
    from parsl.config import Config
    parsl.load(Config(executors=[executor(sys.argv[1])], run_dir=os.path.join(os.getcwd(), "runinfo")))
    try:
        for future in [noop() for _ in range({warm_up})]:
            future.result()
        n = int(sys.argv[2])
        start = time.perf_counter()
        futures = [noop() for _ in range(n)]
        for future in futures:
            future.result()
        print("{result}", n / (time.perf_counter() - start), flush=True)
    finally:
        parsl.dfk().cleanup()
"""
RESULT = "parsl-rate:"


def measure(kind: str, n: int, timeout: float = TIMEOUT) -> Dict[str, Optional[float]]:
    """``{"rate": apps/s}`` from a fresh interpreter, or ``{"rate": None, "error": why}``."""
    with tempfile.TemporaryDirectory(prefix=f"parsl-{kind}-") as folder:
        script = os.path.join(folder, "noop_apps.py")  # the app is defined in __main__: Parsl sends it by value
        with open(script, "w") as f:
            f.write(SCRIPT.format(workers=WORKERS, warm_up=WARM_UP, result=RESULT))
        command = [sys.executable, script, kind, str(n)]
        process = subprocess.Popen(command, cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   env=dict(os.environ, WORKQUEUE_CATALOG_DIR=os.path.join(folder, "catalog")),
                                   start_new_session=True)
        try:
            out, err = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            tree = _process_tree(process.pid)
            _kill_session(process)
            return {"rate": None, "error": f"no result within {timeout:.0f} s; processes: {tree}"}
        for line in out.splitlines():
            if line.startswith(RESULT):
                return {"rate": float(line.split()[1])}
        return {"rate": None, "error": f"exit {process.returncode}: {err.strip()[-500:]}"}


def _process_tree(pid: int) -> str:
    try:
        import psutil
        parent = psutil.Process(pid)
        return "; ".join(f"{p.pid} {' '.join(p.cmdline())[:120]}" for p in [parent] + parent.children(recursive=True))
    except Exception as error:
        return f"unknown ({error})"


def _kill_session(process: subprocess.Popen) -> None:
    import signal
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()


def available() -> Optional[str]:
    """Why the comparison cannot run here, or None."""
    try:
        import parsl  # noqa: F401
    except ImportError:
        return "Parsl is not installed (pip install parsl)"
    if shutil.which("work_queue_worker") is None or shutil.which("parsl_coprocess.py") is None:
        return "work_queue_worker or parsl_coprocess.py is not on PATH (pip install . parsl)"
    return None


def report(report_to, profile: Dict) -> None:
    """Rows for ``python -m bench``'s table: WorkQueueExecutor's rate as a ratio to HTEX's."""
    missing = available()
    if missing:
        report_to.note(f"parsl skipped: {missing}")
        return
    n = 2000 if profile["functions_n"] >= 1000 else 100  # smoke: 100
    htex = measure("htex", n)
    ours = measure("wq", n)
    for name, figures, other in (("HighThroughputExecutor", htex, ours), ("WorkQueueExecutor", ours, htex)):
        if figures["rate"] is None:
            beside = "" if other["rate"] is None else f" (the other executor did {other['rate']:,.0f} apps/s)"
            report_to.note(f"parsl: {name} failed{beside}: {figures['error']}")
    if ours["rate"] is not None:
        report_to.add("parsl", f"no-op python_app x{n}, WorkQueueExecutor(coprocess=True), {WORKERS} workers",
                      ours["rate"], "apps/s", {f"Parsl HighThroughputExecutor, {WORKERS} workers": htex["rate"]})


if __name__ == "__main__":
    from .machine import precompile
    precompile()
    apps = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    for _ in range(int(sys.argv[2]) if len(sys.argv) > 2 else 1):
        pair = {kind: measure(kind, apps) for kind in ("htex", "wq")}
        print(json.dumps(pair), flush=True)
        if pair["htex"]["rate"] and pair["wq"]["rate"]:
            print(f"WorkQueueExecutor / HTEX: {pair['wq']['rate'] / pair['htex']['rate']:.2f}", flush=True)
