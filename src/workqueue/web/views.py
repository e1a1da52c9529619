"""The JSON the dashboard page shows, made from the master's ``dashboard`` answer; pure.

Bounded whatever the queue holds: per-category counts, one row per worker, the recent task stream
(at most ``manager.history.STREAM_LENGTH`` tasks), a throughput series of ``THROUGHPUT_SECONDS``
points and the last failures.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional

THROUGHPUT_SECONDS = 300  # the throughput chart's window
STREAM_ROWS = 1000
DETAILED_ROWS = 100  # stream rows with their command (the page's table shows these)
SUMMARY_KEYS = ("tasks_submitted", "tasks_waiting", "tasks_running", "tasks_done", "tasks_failed",
                "tasks_canceled", "tasks_requeued", "tasks_unfit", "workers_connected", "workers_busy",
                "workers_idle", "workers_blocked", "total_cores", "free_cores", "total_memory", "bytes_sent",
                "bytes_received", "cache_hits")


def page(answer: Dict[str, Any], label: str = "") -> Dict[str, Any]:
    """Everything one refresh of the page needs."""
    queue = answer["queue"]
    now = answer["time"]
    stream = answer.get("stream", [])
    return {
        "master": label, "time": now,
        "summary": {key: queue.get(key, 0) for key in SUMMARY_KEYS},
        "categories": categories(answer.get("categories", {})),
        "workers": workers(answer.get("workers", []), stream),
        "stream": stream_rows(stream, now),
        "running": running_rows(answer.get("on_workers", []), now),
        "throughput": throughput(answer.get("per_second", []), now),
        "failures": list(reversed(answer.get("failures", []))),
    }


def categories(counts: Dict[str, Dict[str, int]]) -> List[Dict[str, Any]]:
    rows = []
    for name in sorted(counts):
        c = counts[name]
        total = c["waiting"] + c["running"] + c["done"] + c["failed"]
        rows.append({"category": name, **c, "total": total,
                     "percent_done": round(100.0 * (c["done"] + c["failed"]) / total, 1) if total else 100.0})
    return rows


def workers(rows: List[Dict[str, Any]], stream: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """One row per worker: what it has, what is booked on it, and what its last task measured."""
    last = {}
    for task in stream:
        last[task["worker"]] = task
    out = []
    for w in rows:
        res, free = w.get("resources") or {}, w.get("free") or {}
        recent = last.get(w["worker_id"], {})
        out.append({
            "worker_id": w["worker_id"], "hostname": w.get("hostname"), "running": w.get("running", 0),
            "completed": w.get("completed", 0), "blocked": w.get("blocked", False), "sending": w.get("sending", False),
            "cores": res.get("cores"), "cores_used": _used(res, free, "cores"),
            "memory": res.get("memory"), "memory_used": _used(res, free, "memory"),
            "disk": res.get("disk"), "disk_used": _used(res, free, "disk"),
            "last_measured_cores": recent.get("measured_cores"), "last_measured_memory": recent.get("measured_memory"),
            "cached_files": w.get("cached_files", 0), "cached_bytes": w.get("cached_bytes", 0),
        })
    return out


def _used(resources: Dict[str, float], free: Dict[str, float], key: str) -> Optional[float]:
    total = resources.get(key)
    return None if total is None else total - free.get(key, total)


def stream_rows(stream: List[Dict[str, Any]], now: float, limit: int = STREAM_ROWS,
                detailed: int = DETAILED_ROWS) -> List[Dict[str, Any]]:
    """The most recent tasks first, each with how long ago it ended and how long it took; the first
    ``detailed`` (the page's table) also with their command and measurements, the rest only what
    the task-stream chart draws."""
    rows = []
    for task in reversed(stream[-limit:]):
        start = task["start"] or task["end"]
        row = {"task_id": task["task_id"], "category": task["category"], "worker": task["worker"],
               "ago": round(now - task["end"], 3), "duration": round(task["end"] - start, 4),
               "result": task["result"], "exit_code": task["exit_code"]}
        if len(rows) < detailed:
            row.update(command=task["command"], wall_time=task["wall_time"])
        rows.append(row)
    return rows


def running_rows(on_workers: List[Dict[str, Any]], now: float) -> List[Dict[str, Any]]:
    """The tasks running now (not those queued behind them), with how long they have run."""
    return [{"task_id": t["task_id"], "category": t["category"], "worker": t["worker"],
             "since": round(max(0.0, now - t["start"]), 3)} for t in on_workers if not t["queued"] and t["start"]]


def throughput(per_second: List[List[int]], now: float, window: int = THROUGHPUT_SECONDS) -> Dict[str, Any]:
    """Tasks finished in each of the last ``window`` seconds (zero where none did)."""
    end = int(now)
    start = end - window + 1
    done = [0] * window
    failed = [0] * window
    for second, ok, bad in per_second:
        if start <= second <= end:
            done[second - start] += ok
            failed[second - start] += bad
    return {"start": start, "done": done, "failed": failed}
