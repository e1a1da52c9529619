"""How long ``protocol.decode`` takes for the messages of the hot path, against a baseline.

The baseline is ``src/workqueue/wire/protocol.py`` as committed at ``--baseline`` (default HEAD), loaded
under another module name beside the working tree's; ``--baseline c10a2be`` is the decode that
checked top-level types only, before issue 14's deep checks. The two run in alternation (A B A B ...), since
on a shared machine the speed drifts from one second to the next: each figure is the median of
``--rounds`` timeit runs of a few ms, taken in alternation with the other implementation's, and the
change is also given as the median of the ratios of the runs taken side by side (which a machine
whose speed drifts disturbs least).

Cases: a command task (2 inputs, 1 output, an env of 3 variables), a function task (its pickled call
inline), the result of each, a 1 MiB file chunk, and a packed bundle of 64 function results (split,
then each part decoded: what the master does with a busy worker's results).

    python bench/protocol_decode.py [--baseline REF] [--rounds 60] [--run-ms 5]
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import subprocess
import sys
import timeit
from types import ModuleType
from typing import Any, Callable, Dict, List, Tuple

from workqueue.wire import protocol

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DIGEST = "99aa06d3014798d86001c324468d497f"
START = 1_760_000_000.25


def load_baseline(ref: str) -> ModuleType:
    """protocol.py as committed at ``ref``, as the module ``workqueue._protocol_at_baseline``."""
    source = subprocess.run(["git", "show", f"{ref}:src/workqueue/wire/protocol.py"], cwd=ROOT, check=True,
                            capture_output=True, text=True).stdout
    spec = importlib.util.spec_from_loader("workqueue._protocol_at_baseline", loader=None)
    module = importlib.util.module_from_spec(spec)
    module.__package__ = "workqueue"
    sys.modules[spec.name] = module
    exec(compile(source, f"{ref}:src/workqueue/wire/protocol.py", "exec"), module.__dict__)
    return module


def command_task() -> List[Any]:
    return protocol.encode(
        "task", [b""], task_id=123_456, attempt=1, command="./rev in.txt > out.txt", kind="command",
        env={"OMP_NUM_THREADS": "1", "LANG": "C.UTF-8", "DATASET": "/data/run-7"},
        resources={"cores": 1.0, "memory": 100.0, "disk": 200.0, "gpus": 0.0}, declared={"cores": 1, "memory": 100},
        inputs=[[DIGEST, "rev", 0o755, True], ["0123456789abcdef0123456789abcdef", "in.txt", 0o644, False]],
        outputs=["out.txt"], limits={}, call={})


def function_task() -> List[Any]:
    return protocol.encode(
        "task", [b"\x80\x05" + b"c" * 458], task_id=123_456, attempt=1, command="noop", kind="function", env={},
        resources={"cores": 1.0, "memory": 100.0, "disk": 200.0, "gpus": 0.0}, declared={"cores": 1},
        inputs=[], outputs=[], limits={}, call={})


def command_result() -> List[Any]:
    measured = {"wall_time": 0.0042, "cpu_time": 0.0031, "memory": 3.5, "start": START, "end": START + 0.0042,
                "cores": 0.74, "disk": 0.01}
    return protocol.encode("result", [b"hello\n"], task_id=123_456, attempt=1, result=0, exit_code=0,
                           measured=measured, limits_exceeded={}, missing=[],
                           times={"start": measured["start"], "end": measured["end"]})


def function_result(task_id: int = 123_456) -> List[Any]:
    measured = {"wall_time": 0.00009, "start": START, "end": START + 0.00009, "disk": 0.0}
    return protocol.encode("result", [b"o\x80\x05" + b"r" * 40], task_id=task_id, attempt=1, result=0,
                           exit_code=0, measured=measured, limits_exceeded={}, missing=[],
                           times={"start": measured["start"], "end": measured["end"]})


def chunk() -> List[Any]:
    return protocol.encode("chunk", [bytes(1 << 20)], xfer=17, seq=3, last=False, digest="")


def results_bundle() -> List[Any]:
    return protocol.bundle([function_result(task_id) for task_id in range(1000, 1064)])


CASES: Dict[str, Tuple[Callable[[], List[Any]], bool]] = {  # name -> (frames, a bundle to split first)
    "command task": (command_task, False),
    "function task": (function_task, False),
    "command result": (command_result, False),
    "function result": (function_result, False),
    "chunk (1 MiB)": (chunk, False),
    "64 results, packed": (results_bundle, True),
}


def runner(module: ModuleType, frames: List[Any], is_bundle: bool) -> Callable[[], Any]:
    decode, split = module.decode, module.split
    if is_bundle:
        return lambda: [decode(part) for part in split(frames)]
    return lambda: decode(frames)


def calls_per_run(run: Callable[[], Any], seconds: float) -> int:
    return max(1, int(seconds / max(timeit.timeit(run, number=20) / 20, 1e-9)))


def compare(runs: Dict[str, Callable[[], Any]], rounds: int, seconds: float) -> Dict[str, List[float]]:
    """Microseconds per call of each run, measured in alternation: A B, B A, A B, ... (the order
    flips each round, so that neither always runs just after the other)."""
    number = calls_per_run(runs["baseline"], seconds)
    samples: Dict[str, List[float]] = {label: [] for label in runs}
    for round_number in range(rounds):
        order = list(runs) if round_number % 2 == 0 else list(runs)[::-1]
        for label in order:
            samples[label].append(timeit.timeit(runs[label], number=number) / number * 1e6)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", default="HEAD", help="git ref of the protocol.py to compare with")
    parser.add_argument("--rounds", type=int, default=60, help="alternating runs per case and implementation")
    parser.add_argument("--run-ms", type=float, default=5.0, help="length of one timeit run")
    args = parser.parse_args()
    implementations = {"baseline": load_baseline(args.baseline), "new": protocol}
    print(f"protocol.decode: {args.baseline} (baseline) against the working tree; {args.rounds} runs of about "
          f"{args.run_ms:g} ms per case and implementation, in alternation")
    print(f"{'case':<22}{'baseline us':>12}{'new us':>9}{'change':>9}{'paired':>9}")
    for case, (make, is_bundle) in CASES.items():
        frames = make()
        runs = {label: runner(module, frames, is_bundle) for label, module in implementations.items()}
        for run in runs.values():
            run()  # both must accept the message
        samples = compare(runs, args.rounds, args.run_ms / 1000)
        old, new = statistics.median(samples["baseline"]), statistics.median(samples["new"])
        paired = statistics.median(n / o for o, n in zip(samples["baseline"], samples["new"]))
        print(f"{case:<22}{old:>12.2f}{new:>9.2f}{(new / old - 1) * 100:>+8.1f}%{(paired - 1) * 100:>+8.1f}%")
    print("change: of the medians; paired: the median of the ratios of runs taken side by side")


if __name__ == "__main__":
    main()
