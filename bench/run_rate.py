"""``workqueue run`` against the tools people run files of commands with, in the same run:
GNU parallel (``parallel -j2 true ::: ...``, Debian's ``parallel``) and ``xargs -P2 -n1 sh -c``
(no log, no retries: the bare cost of starting processes two at a time).

Each figure is the wall time of the whole command, start-up and shut-down included (ours starts
its two workers and writes a ``--joblog`` row per task), as the user waits for it. The three run
in turn, ``repeats`` times, and each reports its median rate.

``python -m bench.run_rate [N] [REPEATS]`` runs it alone; ``python -m bench run`` puts it in the table.
"""
from __future__ import annotations

import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Optional

WORKERS = 2


CPU_SECONDS: Dict[str, List[float]] = {}  # CPU time of each tool's last runs, all its processes


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _timed(command: List[str], cwd: str, stdin: Optional[str] = None, name: str = "") -> float:
    """Wall seconds of ``command``; the CPU seconds of it and its descendants (those it waited
    for) go to ``CPU_SECONDS[name]``."""
    cpu = _children_cpu()
    started = time.perf_counter()
    with open(stdin or os.devnull, "rb") as feed:
        done = subprocess.run(command, cwd=cwd, stdin=feed, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - started
    CPU_SECONDS.setdefault(name, []).append(_children_cpu() - cpu)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:4])} ... failed ({done.returncode}): {done.stderr.decode()[-500:]}")
    return elapsed


def ours(n: int, folder: str, lines: str) -> float:
    """Tasks per second of ``workqueue run --joblog`` on ``n`` lines of ``true``; the log is checked."""
    joblog = os.path.join(folder, "joblog.txt")
    command = [sys.executable, "-c", "from workqueue.cli.main import main; main()",
               "run", "--joblog", joblog, "-w", str(WORKERS), lines]
    elapsed = _timed(command, folder, name="ours")
    with open(joblog) as f:
        rows = f.read().splitlines()[1:]
    if len(rows) != n or any(row.split("\t")[6] != "0" for row in rows):
        raise RuntimeError(f"the job log holds {len(rows)} rows for {n} tasks, or a failure")
    os.unlink(joblog)
    return n / elapsed


def gnu_parallel(n: int, folder: str) -> Optional[float]:
    if not shutil.which("parallel"):
        return None
    arguments = [str(i) for i in range(n)]
    return n / _timed(["parallel", "--will-cite", f"-j{WORKERS}", "true", ":::"] + arguments, folder,
                      name="parallel")


def xargs(n: int, folder: str, lines: str) -> float:
    return n / _timed(["xargs", f"-P{WORKERS}", "-n1", "sh", "-c"], folder, stdin=lines, name="xargs")


def measure(n: int, repeats: int = 1) -> Dict[str, Optional[float]]:
    """Median tasks/s of each, measured in turn: ours, GNU parallel (None if absent), xargs; and
    ``cpu_<name>``, the median CPU milliseconds each spent per task (its processes and the shells)."""
    CPU_SECONDS.clear()
    with tempfile.TemporaryDirectory(prefix="bench-run-") as folder:
        lines = os.path.join(folder, "true.txt")
        with open(lines, "w") as f:
            f.write("true\n" * n)
        runs: Dict[str, List[float]] = {"ours": [], "parallel": [], "xargs": []}
        for _ in range(repeats):
            runs["ours"].append(ours(n, folder, lines))
            runs["parallel"].append(gnu_parallel(n, folder))
            runs["xargs"].append(xargs(n, folder, lines))
    figures = {name: None if None in rates else statistics.median(rates) for name, rates in runs.items()}
    for name, seconds in CPU_SECONDS.items():
        figures[f"cpu_{name}"] = 1000 * statistics.median(seconds) / n
    return figures


def sizes(profile: Dict) -> "tuple[int, int]":
    """N and repeats for a bench profile: 10,000 lines (the issue's size) once in the quick profile,
    three times in the full one; the smoke profile's few hundred."""
    n = min(10_000, profile["scale_n"])
    return n, (3 if profile["scale_n"] > 10_000 else 1)


def report(report_to, profile: Dict) -> None:
    """Rows for ``python -m bench``'s table: our rate, as a ratio to GNU parallel's and xargs'."""
    n, repeats = sizes(profile)
    rates = measure(n, repeats)
    if rates["parallel"] is None:
        report_to.note("GNU parallel skipped: 'parallel' is not installed (apt-get install -y parallel)")
    report_to.add("run", f"workqueue run --joblog, true x{n}, {WORKERS} workers", rates["ours"], "tasks/s", {
        f"GNU parallel -j{WORKERS}": rates["parallel"], f"xargs -P{WORKERS} -n1 sh -c": rates["xargs"]})
    # On a loaded machine the rate follows CPU time: where ours goes beside xargs' says why
    report_to.add("run", f"CPU per task, true x{n} (all processes)", rates["cpu_ours"], "ms", {
        f"GNU parallel -j{WORKERS}": rates.get("cpu_parallel"), f"xargs -P{WORKERS} -n1 sh -c": rates["cpu_xargs"]})


if __name__ == "__main__":
    from .machine import precompile
    precompile()
    n_lines = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    figures = measure(n_lines, int(sys.argv[2]) if len(sys.argv) > 2 else 1)
    print({name: None if rate is None else round(rate, 3) for name, rate in figures.items()})
    for name in ("parallel", "xargs"):
        if figures[name]:
            print(f"ours / {name}: {figures['ours'] / figures[name]:.2f}")
