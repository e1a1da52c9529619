"""What the master remembers of finished tasks, for the dashboard and ``/metrics``: the recent task
stream, the last failures, outcomes per category, completions per second, run-time histograms, and
how many tasks each category holds (so that counting them per category never takes a pass over a
long queue).

``add``, ``submitted`` and ``canceled`` run in the loop thread once per task, so they only append to
bounded deques and bump counters; everything else is computed when someone asks (``answer``).
"""
from __future__ import annotations

import bisect
import collections
from typing import Any, Deque, Dict, List, Tuple

from ..constants import Result

SUCCESS = int(Result.SUCCESS)
STREAM_LENGTH = 1000  # finished tasks kept for the task stream (Dask's task-stream-length)
FAILURES_KEPT = 20  # tasks that failed or whose command exited non-zero
FAILURE_OUTPUT_BYTES = 2048  # of a failed task's output, kept from its end
SECONDS_KEPT = 900  # per-second completion counts (15 minutes of throughput)
COMMAND_CHARS = 120
# seconds, upper bounds of the histograms' buckets (the last one, +Inf, is implied)
BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 60.0, 300.0, 1800.0, 3600.0)


class Histogram:
    """Counts per bucket (not cumulative) and the sum of the values."""

    def __init__(self) -> None:
        self.counts = [0] * (len(BUCKETS) + 1)
        self.total = 0.0

    def answer(self) -> Dict[str, Any]:
        return {"bounds": list(BUCKETS), "counts": list(self.counts), "sum": self.total}


class TaskHistory:
    def __init__(self) -> None:
        self.stream: Deque[Tuple] = collections.deque(maxlen=STREAM_LENGTH)
        self.failures: Deque[Dict[str, Any]] = collections.deque(maxlen=FAILURES_KEPT)
        self.outcomes: Dict[str, List[int]] = {}  # category -> [done, failed]
        self.held: Dict[str, int] = {}  # category -> tasks submitted, neither finished nor canceled
        self.per_second: Deque[List[int]] = collections.deque(maxlen=SECONDS_KEPT)  # [second, done, failed]
        self._last_second = [-1, 0, 0]  # the last entry of per_second
        self.run_time = Histogram()
        self.dispatch_latency = Histogram()

    def submitted(self, category: str) -> None:
        self.held[category] = self.held.get(category, 0) + 1

    def canceled(self, category: str) -> None:
        self.held[category] = self.held.get(category, 0) - 1

    def add(self, record: Any, outcome: Dict[str, Any]) -> None:
        """One finished task (a TaskRecord and the outcome handed to the user). Runs once per task in
        the loop thread: local names, no call that is not needed."""
        spec = record.spec
        category = spec["category"]
        done_at = outcome["times"]["done"]
        result, exit_code = outcome["result"], outcome["exit_code"]
        dispatched = record.dispatch_time
        measured = outcome.get("measured")
        wall = cores = memory = None
        if measured:
            wall, cores, memory = measured.get("wall_time"), measured.get("cores"), measured.get("memory")
        self.stream.append((record.task_id, category, spec["command"], outcome["worker_id"], dispatched, done_at,
                            wall, result, exit_code, cores, memory))
        ok = result == SUCCESS
        counts = self.outcomes.get(category)
        if counts is None:
            counts = self.outcomes[category] = [0, 0]
        counts[0 if ok else 1] += 1
        self.held[category] = self.held.get(category, 0) - 1
        second = int(done_at)
        last = self._last_second
        if last[0] != second:
            last = self._last_second = [second, 0, 0]
            self.per_second.append(last)
        last[1 if ok else 2] += 1
        if wall is not None:
            histogram = self.run_time
            histogram.counts[bisect.bisect_left(BUCKETS, wall)] += 1
            histogram.total += wall
        if dispatched:
            waited = max(0.0, dispatched - record.submit_time)
            histogram = self.dispatch_latency
            histogram.counts[bisect.bisect_left(BUCKETS, waited)] += 1
            histogram.total += waited
        if not ok or exit_code:
            self.failures.append({"task_id": record.task_id, "category": category, "command": spec["command"],
                                  "worker": outcome["worker_id"], "time": done_at, "result": result,
                                  "exit_code": exit_code, "output": _tail(outcome["stdout"])})

    def answer(self) -> Dict[str, Any]:
        """Plain data (msgpack-able) of everything above; outputs and commands cut to size."""
        return {
            "stream": [_stream_row(row) for row in self.stream],
            "failures": [dict(f, result=_result_name(f["result"]), command=f["command"][:COMMAND_CHARS],
                              ) for f in self.failures],
            "outcomes": {category: {"done": c[0], "failed": c[1]} for category, c in self.outcomes.items()},
            "held": dict(self.held),
            "per_second": [list(s) for s in self.per_second],
            "run_time": self.run_time.answer(),
            "dispatch_latency": self.dispatch_latency.answer(),
        }


def _stream_row(row: Tuple) -> Dict[str, Any]:
    task_id, category, command, worker, start, end, wall, result, exit_code, cores, memory = row
    return {"task_id": task_id, "category": category, "command": command[:COMMAND_CHARS], "worker": worker,
            "start": start, "end": end, "wall_time": wall, "result": _result_name(result), "exit_code": exit_code,
            "measured_cores": cores, "measured_memory": memory}


def _result_name(result: int) -> str:
    member = Result._value2member_map_.get(result)
    return member.name if member is not None else str(result)


def _tail(output: Any) -> str:
    """The end of a failed task's output (where the error usually is), as text."""
    data = output or b""
    cut = len(data) > FAILURE_OUTPUT_BYTES
    text = bytes(data[-FAILURE_OUTPUT_BYTES:]).decode("utf-8", "replace")
    return ("[...] " + text) if cut else text
