"""``python -m bench.input_path [--mib M] [--rounds R] [--no-raw]``

The input path alone, against its references in the same run, taken in turn round after round (this
VM's speed drifts, and other work shares it): a file of M MiB sent to a task, warm (the file in
memory, as ``python -m bench transfer``) and from a cold page cache, by us and by CCTools Work Queue,
and the raw file-to-file ZeroMQ stream (``references.zmq_throughput``). Each figure is the best of
3 runs in its round; printed per round, then the medians of the rounds and their ratios, with the
load average at each round.
"""
from __future__ import annotations

import argparse
import os
import statistics
from typing import Dict, List

from . import cctools, references, workloads

MiB = 1 << 20


def rounds(mib: int, count: int, raw: bool) -> Dict[str, List[float]]:
    size = mib * MiB
    figures: Dict[str, List[float]] = {"ours in": [], "ours cold": [], "CCTools in": [], "CCTools cold": [],
                                       "raw file to file": []}
    for i in range(count):
        load = os.getloadavg()[0]
        ours = workloads.transfer_in(size)
        theirs = cctools.run("transfer_in", size=size, workers=1)
        figures["ours in"].append(ours["in"])
        figures["ours cold"].append(ours["in_cold"])
        figures["CCTools in"].append(theirs["in"])
        figures["CCTools cold"].append(theirs["in_cold"])
        if raw:
            figures["raw file to file"].append(references.zmq_throughput(size, files=True))
        print(f"round {i}: " + "  ".join(f"{k} {v[-1] / MiB:.0f}" for k, v in figures.items() if v)
              + f" MiB/s; load {load:.1f} -> {os.getloadavg()[0]:.1f}", flush=True)
    return figures


def main(argv: List[str] = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.input_path")
    parser.add_argument("--mib", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-raw", action="store_true", help="leave out the raw ZeroMQ stream")
    args = parser.parse_args(argv)
    missing = cctools.unavailable()
    if missing:
        raise SystemExit(f"CCTools is needed here: {missing}")
    figures = rounds(args.mib, args.rounds, not args.no_raw)
    median = {k: statistics.median(v) for k, v in figures.items() if v}
    print(f"{args.mib} MiB, medians of {args.rounds} rounds: " + "  ".join(f"{k} {v / MiB:.0f}" for k, v in median.items())
          + " MiB/s")
    print(f"warm: {median['ours in'] / median['CCTools in']:.2f}x CCTools"
          + (f", {median['ours in'] / median['raw file to file']:.2f}x raw file to file" if not args.no_raw else "")
          + f"; cold: {median['ours cold'] / median['CCTools cold']:.2f}x CCTools")
    print("per round, warm vs CCTools: " + ", ".join(
        f"{a / b:.2f}" for a, b in zip(figures["ours in"], figures["CCTools in"])))


if __name__ == "__main__":
    main()
