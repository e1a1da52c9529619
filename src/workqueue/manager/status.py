"""What the master tells about itself: its figures, the rows of ``status``, and how much of it
the port may get.

A status request costs the asker one small message and the master one reply that may be megabytes
(every waiting task's row). A peer that asks and never reads would make the master queue those
replies for ever, so replies to the port share a byte budget that refills at a steady rate; what
does not fit is not sent. The rows of a long queue are capped, with the count of the rest.
"""
from __future__ import annotations

import time
from typing import Any, Dict, List

from ..scheduling.capacity import FIGURES as CAPACITY_FIGURES

STATUS_WHAT = ("queue", "workers", "tasks", "dashboard")

STATUS_BYTES_PER_SECOND = 4 << 20
STATUS_BURST_BYTES = 16 << 20
TASK_ROWS_MAX = 10_000
ON_WORKERS_ROWS_MAX = 1000  # of the tasks on workers, those the dashboard is told about one by one


def snapshot(loop: Any) -> Dict[str, Any]:
    """The figures the user's thread reads (``Manager.stats``): counters, workers, tasks, capacity."""
    total, free = loop.scheduler.capacity()
    settings = loop.settings
    hungry_minimum = max(settings.hungry_minimum, int(settings.hungry_minimum_factor * len(loop.workers)))
    busy = sum(1 for c in loop.workers.values() if c.tasks)
    unfit = sum(count for _, count in loop.scheduler.unfit_shapes()) if loop.workers else 0
    figures = dict(loop.counters)
    figures.update(
        workers_connected=len(loop.workers), workers_busy=busy, workers_idle=len(loop.workers) - busy,
        workers_blocked=loop.scheduler.blocked_count, hosts_blocked=loop.blocks.names(),
        handshakes_pending=len(loop.door.pending),
        tasks_waiting=loop.scheduler.ready_count, tasks_running=loop.scheduler.running_count,
        tasks_unfit=unfit, total_cores=total["cores"], free_cores=free["cores"],
        total_memory=total["memory"], total_disk=total["disk"], total_gpus=total["gpus"],
        hungry=loop.scheduler.hungry(hungry_minimum), hungry_minimum=hungry_minimum,
        requeue_reasons=dict(loop.requeue_reasons),
    )
    figures.update(loop.capacity.figures() if loop.capacity is not None else dict.fromkeys(CAPACITY_FIGURES, 0))
    figures.update(loop.data.figures())
    return figures


def worker_rows(loop: Any) -> List[Dict[str, Any]]:
    return [{
        "worker_id": c.worker_id, "hostname": c.hostname, "resources": c.resources,
        "free": dict(loop.scheduler.worker_books(c.identity).free),
        "running": len(c.tasks), "completed": c.completed, "cached_files": len(c.cached),
        "blocked": loop.scheduler.worker_books(c.identity).blocked,
    } for c in loop.workers.values()]


def task_rows(loop: Any, limit: int = TASK_ROWS_MAX) -> List[Dict[str, Any]]:
    """One row per task not yet finished, the first ``limit`` of them; a last row counts the rest."""
    rows = []
    for record in loop.tasks.values():
        if len(rows) == limit:
            rows.append({"task_id": None, "state": "MORE", "command": f"... and {len(loop.tasks) - limit} more"})
            break
        conn = loop.workers.get(record.worker) if record.worker else None
        state = "WAITING"
        if conn is not None:
            state = "QUEUED" if loop.scheduler.is_queued(record.task_id) else "RUNNING"
        spec = record.spec
        rows.append({
            "task_id": record.task_id, "state": state, "command": spec["command"], "tag": spec["tag"],
            "category": spec["category"], "priority": spec["priority"],
            "worker": conn.worker_id if conn else None, "attempts": record.attempts,
            "resources": {k: v for k, v in spec["resources"].items() if v is not None},
        })
    return rows


def dashboard(loop: Any) -> Dict[str, Any]:
    """What the dashboard and ``/metrics`` show (see workqueue/web): the figures, tasks per category,
    the workers and the tasks on them, and the recent history. Computed only when asked; its cost
    grows with the workers and the tasks on them, not with the queue."""
    history = loop.history.answer()
    on_workers = _tasks_on_workers(loop)
    categories = _category_counts(on_workers, history.pop("outcomes"), history.pop("held"))
    return {"time": time.time(), "queue": dict(loop.snapshot), "workers": _worker_rows_in_full(loop),
            "categories": categories, "on_workers": on_workers[:ON_WORKERS_ROWS_MAX], **history}


def _tasks_on_workers(loop: Any) -> List[Dict[str, Any]]:
    """One row per task on a worker: running there, or queued there behind a running one."""
    rows = []
    for conn in loop.workers.values():
        for task_id in conn.tasks:
            record = loop.tasks.get(task_id)
            if record is not None:
                rows.append({"task_id": task_id, "category": record.spec["category"], "worker": conn.worker_id,
                             "start": record.dispatch_time, "queued": loop.scheduler.is_queued(task_id)})
    return rows


def _category_counts(on_workers: List[Dict[str, Any]], outcomes: Dict[str, Dict[str, int]],
                     held: Dict[str, int]) -> Dict[str, Dict[str, int]]:
    """Per category: tasks on a worker (running or queued there), waiting (the rest of those it
    holds), done and failed."""
    running: Dict[str, int] = {}
    for row in on_workers:
        running[row["category"]] = running.get(row["category"], 0) + 1
    counts = {}
    for category in sorted(set(outcomes) | set(held) | set(running)):
        on_workers_now = running.get(category, 0)
        counts[category] = {"waiting": max(0, held.get(category, 0) - on_workers_now), "running": on_workers_now,
                            "done": 0, "failed": 0, **outcomes.get(category, {})}
    return counts


def _worker_rows_in_full(loop: Any) -> List[Dict[str, Any]]:
    """``worker_rows`` with the bytes of each worker's cache that the master knows the size of (the
    files it sent or hashed), its address and the transfers it has on the way."""
    sizes = {digest: version[0] for version, digest in loop.digests._known.values()}  # version: (size, ...)
    rows = worker_rows(loop)
    for row, conn in zip(rows, loop.workers.values()):
        row.update(cached_bytes=sum(sizes.get(d, 0) for d in conn.cached), address=conn.address,
                   sending=conn.outbox.streaming)
    return rows


def task_state(loop: Any, task_id: int) -> str:
    """"running" (on a worker, queued there or started), "ready" (waiting for one), or "gone": the
    loop does not hold it (finished, canceled, or never submitted)."""
    record = loop.tasks.get(task_id)
    if record is None:
        return "gone"
    return "running" if record.worker is not None else "ready"


def category_stats(loop: Any, category: str) -> Dict[str, Any]:
    """CCTools' ``stats_category``: the figures of one category's tasks (a pass over the tasks held)."""
    waiting = running = 0
    for record in loop.tasks.values():
        if record.spec["category"] == category:
            if record.worker is None:
                waiting += 1
            else:
                running += 1
    done, failed = loop.history.outcomes.get(category, (0, 0))
    known = loop.categories.get(category) if (waiting or running or done or failed) else None
    return {
        "category": category, "tasks_waiting": waiting, "tasks_running": running, "tasks_on_workers": running,
        "tasks_done": done, "tasks_failed": failed, "tasks_submitted": waiting + running + done + failed,
        "mode": int(known.mode) if known is not None else 0,
        "max_allocation": dict(known.max) if known is not None else {},
        "first_allocation": dict(known.guess or known.first_guess) if known is not None else {},
    }


def status(loop: Any, what: Any) -> Any:
    """The answer to a status request: a dict for 'queue' and 'dashboard', a list of rows for the others.
    The user's own thread may also ask ("task", id) and ("category", name)."""
    if type(what) is tuple:
        return task_state(loop, what[1]) if what[0] == "task" else category_stats(loop, what[1])
    if what == "dashboard":
        return dashboard(loop)
    if what == "workers":
        return worker_rows(loop)
    if what == "tasks":
        return task_rows(loop)
    return dict(loop.snapshot)
