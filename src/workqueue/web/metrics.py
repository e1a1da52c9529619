"""``/metrics``: the master's figures in Prometheus' text format.

One ``CollectorRegistry`` per dashboard (so per manager: no global registry, no state shared
between managers in one process, as TaskVine's ``prometheus_port``); its collector reads the
master's ``dashboard`` answer at scrape time. Names follow Dask's (``dask_scheduler_tasks{state}``)
with the namespace ``workqueue``; monotone figures are counters (``_total``).
"""
from __future__ import annotations

from typing import Any, Dict, Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)
from prometheus_client.registry import Collector

from .source import Source

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

COUNTERS = (  # (name without _total, key in the master's figures, help)
    ("tasks_submitted", "tasks_submitted", "Tasks submitted to the master."),
    ("tasks_done", "tasks_done", "Tasks that finished with success."),
    ("tasks_failed", "tasks_failed", "Tasks that finished with a failure."),
    ("tasks_canceled", "tasks_canceled", "Tasks canceled by the user."),
    ("tasks_requeued", "tasks_requeued", "Dispatches that went back to the queue (worker lost, forsaken)."),
    ("tasks_prefetched", "tasks_prefetched", "Tasks queued ahead on a busy worker."),
    ("workers_joined", "workers_joined", "Workers that joined."),
    ("workers_removed", "workers_removed", "Workers that left or were removed."),
    ("workers_lost", "workers_lost", "Workers declared lost (no heartbeat)."),
    ("workers_rejected", "workers_rejected", "Workers refused at the door."),
    ("bytes_sent", "bytes_sent", "Bytes of input files sent to workers."),
    ("bytes_received", "bytes_received", "Bytes of output files received from workers."),
    ("cache_hits", "cache_hits", "Inputs a worker already held in its cache (not sent)."),
    ("messages_dropped", "messages_dropped", "Messages dropped as invalid or unexpected."),
)


class MasterCollector(Collector):
    def __init__(self, source: Source) -> None:
        self.source = source

    def collect(self) -> Iterator[Any]:
        answer = self.source.answer()
        queue = answer["queue"]
        yield _labelled("tasks", "Tasks the master holds, by state.", "state",
                        {"waiting": queue["tasks_waiting"], "running": queue["tasks_running"],
                         "unfit": queue["tasks_unfit"]})
        yield _category_tasks(answer["categories"])
        yield _labelled("workers", "Connected workers, by state.", "state",
                        {"busy": queue["workers_busy"], "idle": queue["workers_idle"],
                         "blocked": queue["workers_blocked"]})
        yield _labelled("resources", "Resources of the connected workers (cores, gpus; memory, disk in MB).",
                        "resource", {"cores": queue["total_cores"], "memory": queue["total_memory"],
                                     "disk": queue["total_disk"], "gpus": queue["total_gpus"]})
        yield GaugeMetricFamily("workqueue_free_cores", "Cores not booked by any task.", value=queue["free_cores"])
        for name, key, text in COUNTERS:
            yield CounterMetricFamily(f"workqueue_{name}", text, value=queue.get(key, 0))
        yield _histogram("task_run_seconds", "Wall time of finished tasks, as their workers measured it.",
                         answer["run_time"])
        yield _histogram("task_dispatch_latency_seconds", "Seconds from a task's submission to its (last) "
                         "dispatch to a worker, queueing included.", answer["dispatch_latency"])


def _labelled(name: str, text: str, label: str, values: Dict[str, float]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(f"workqueue_{name}", text, labels=[label])
    for key, value in values.items():
        family.add_metric([key], value)
    return family


def _category_tasks(categories: Dict[str, Dict[str, int]]) -> GaugeMetricFamily:
    family = GaugeMetricFamily("workqueue_category_tasks", "Tasks per category: waiting, running (on a worker), "
                               "and done or failed so far.", labels=["category", "state"])
    for category, counts in sorted(categories.items()):
        for state, value in counts.items():
            family.add_metric([category, state], value)
    return family


def _histogram(name: str, text: str, data: Dict[str, Any]) -> HistogramMetricFamily:
    cumulative, buckets = 0, []
    for bound, count in zip([*data["bounds"], float("inf")], data["counts"]):
        cumulative += count
        buckets.append(("+Inf" if bound == float("inf") else repr(float(bound)), cumulative))
    return HistogramMetricFamily(f"workqueue_{name}", text, buckets=buckets, sum_value=data["sum"])


def registry(source: Source) -> CollectorRegistry:
    """A registry of its own for one master (nothing registered globally)."""
    reg = CollectorRegistry(auto_describe=False)
    reg.register(MasterCollector(source))
    return reg


def exposition(reg: CollectorRegistry) -> bytes:
    return generate_latest(reg)
