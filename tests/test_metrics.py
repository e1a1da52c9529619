"""``/metrics``: Prometheus text that prometheus_client's own parser reads, whose counts are the
master's figures (``Manager.stats``), from a registry per manager."""
import urllib.request

from conftest import wait_for
from prometheus_client.parser import text_string_to_metric_families

import workqueue as wq


def scrape(url):
    with urllib.request.urlopen(url + "metrics", timeout=10) as response:
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = response.read().decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name, **labels):
    return samples[(name, tuple(sorted(labels.items())))]


def run_tasks(m, tmp_path):
    """Done, failed (an output never made), canceled and waiting tasks; a cached input sent once."""
    data = tmp_path / "in.txt"
    data.write_bytes(b"x" * 5000)
    with wq.local_workers(2, m.port, cores=1):
        for i in range(4):
            m.submit(wq.Task(f"cat in.txt > out{i}", inputs=[wq.File(str(data), "in.txt", cache=True)],
                             outputs=[(str(tmp_path / f"out{i}"), f"out{i}")], cores=1, category="copy"))
        m.submit(wq.Task("true", outputs=[(str(tmp_path / "never"), "never")], cores=1, category="broken"))
        while not m.empty():
            assert m.wait(30) is not None
        m.cancel(m.submit(wq.Task("sleep 60", cores=1, category="slow")))
        assert wait_for(lambda: m.stats["tasks_canceled"] == 1)
    m.submit(wq.Task("true", cores=64, category="later"))  # waits: no worker left
    assert wait_for(lambda: m.stats["tasks_submitted"] == 7 and m.stats["workers_connected"] == 0)


def test_metrics_counts_equal_the_masters_figures(tmp_path):
    with wq.Manager(port=0, dashboard=0) as m:
        run_tasks(m, tmp_path)
        samples = scrape(m.dashboard_url)
        stats = m.stats
    assert stats["tasks_done"] == 4 and stats["tasks_failed"] == 1 and stats["cache_hits"] >= 1
    for key in ("tasks_submitted", "tasks_done", "tasks_failed", "tasks_canceled", "tasks_requeued",
                "workers_joined", "workers_removed", "bytes_sent", "bytes_received", "cache_hits"):
        assert value(samples, f"workqueue_{key}_total") == stats[key], key
    assert value(samples, "workqueue_tasks", state="waiting") == stats["tasks_waiting"] == 1
    assert value(samples, "workqueue_tasks", state="running") == stats["tasks_running"] == 0
    assert value(samples, "workqueue_workers", state="idle") == stats["workers_idle"]
    assert value(samples, "workqueue_workers", state="busy") == stats["workers_busy"]
    assert value(samples, "workqueue_category_tasks", category="copy", state="done") == 4
    assert value(samples, "workqueue_category_tasks", category="broken", state="failed") == 1
    assert value(samples, "workqueue_category_tasks", category="later", state="waiting") == 1
    assert value(samples, "workqueue_category_tasks", category="slow", state="waiting") == 0  # canceled
    assert value(samples, "workqueue_category_tasks", category="slow", state="running") == 0
    assert value(samples, "workqueue_task_run_seconds_count") == 5  # every finished task was measured
    assert value(samples, "workqueue_task_run_seconds_bucket", le="+Inf") == 5
    assert value(samples, "workqueue_task_dispatch_latency_seconds_count") == 5
    assert value(samples, "workqueue_task_run_seconds_sum") > 0


def test_each_manager_has_its_own_registry():
    with wq.Manager(port=0, dashboard=0) as first, wq.Manager(port=0, dashboard=0) as second:
        first.submit(wq.Task("true", cores=1))
        assert wait_for(lambda: first.stats["tasks_submitted"] == 1)
        one, two = scrape(first.dashboard_url), scrape(second.dashboard_url)
    assert value(one, "workqueue_tasks_submitted_total") == 1
    assert value(two, "workqueue_tasks_submitted_total") == 0
    assert not any(name.startswith("process_") or name.startswith("python_") for name, _ in one)
