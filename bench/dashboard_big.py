"""The page with 100,000 tasks queued and 200 simulated workers (bench/simulated_workers.py: DEALERs
speaking the real protocol that answer each task at once). 2,000 tasks run first (a full task
stream), then 100,000 tasks that need 2 cores wait (the simulated workers have 1).

    python -m bench.dashboard_big"""
import statistics
import time
import urllib.request

import psutil

import workqueue as wq
from bench import simulated_workers as sim
from workqueue.manager import status as manager_status


def timed_get(url):
    started = time.perf_counter()
    body = urllib.request.urlopen(url, timeout=30).read()
    return time.perf_counter() - started, len(body)


me = psutil.Process()
import http.server

served = []  # (path, started, finished) of each request the dashboard answered
_parse, _finish = http.server.BaseHTTPRequestHandler.parse_request, http.server.BaseHTTPRequestHandler.finish


def parse_request(self):
    self._began = time.perf_counter()
    return _parse(self)


def finish(self):
    _finish(self)
    if hasattr(self, "_began"):
        served.append((self.path, self._began, time.perf_counter()))


http.server.BaseHTTPRequestHandler.parse_request = parse_request
http.server.BaseHTTPRequestHandler.finish = finish

with wq.Manager(port=0, host="127.0.0.1", keepalive_timeout=3600) as m:
    simulators = sim._start(m.port, 200)
    sim._wait_connected(m, 200)
    for _ in range(2000):
        m.submit(wq.Task("true", cores=1, category="ran"))
    for _ in range(2000):
        assert m.wait(30) is not None
    for i in range(100_000):
        m.submit(wq.Task("true", cores=2, category=f"queued-{i % 5}"))
    while m.stats["tasks_submitted"] < 102_000:
        time.sleep(0.1)
    time.sleep(1)
    rss_off = me.memory_info().rss
    url = m.start_dashboard(0)
    pages, metrics = [], []
    for _ in range(10):
        time.sleep(0.6)  # past the source's 0.5 s: each request asks the loop anew
        pages.append(timed_get(url + "api/status.json"))
        time.sleep(0.6)
        metrics.append(timed_get(url + "metrics"))
    rss_on = me.memory_info().rss
    loop_times = []
    for _ in range(10):
        started = time.perf_counter()
        manager_status.dashboard(m._loop)  # the loop's share, timed here in this thread (the loop is idle)
        loop_times.append(time.perf_counter() - started)
    page_load = timed_get(url)
    import shutil
    import subprocess
    import tempfile
    chromium = shutil.which("chromium")
    loads = []
    for _ in range(3):
        served.clear()
        with tempfile.TemporaryDirectory() as profile:
            subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                            "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
                            "--virtual-time-budget=1500", "--dump-dom", url], capture_output=True, text=True, timeout=120)
        page_start = next(began for path, began, _ in served if path == "/")
        data_done = next(done for path, _, done in served if path.startswith("/api/status.json"))
        loads.append(round((data_done - page_start) * 1000))
    stats = m.stats
    print(f"tasks waiting {stats['tasks_waiting']}, unfit {stats['tasks_unfit']}, workers {stats['workers_connected']}, "
          f"done {stats['tasks_done']}")
    print(f"/api/status.json: {pages[0][1]:,} bytes; time median {statistics.median(t for t, _ in pages) * 1000:.1f} ms, "
          f"max {max(t for t, _ in pages) * 1000:.1f} ms (10 requests)")
    print(f"/metrics: {metrics[0][1]:,} bytes; time median {statistics.median(t for t, _ in metrics) * 1000:.1f} ms, "
          f"max {max(t for t, _ in metrics) * 1000:.1f} ms")
    print(f"manager_status.dashboard (the loop's work per request): median {statistics.median(loop_times) * 1000:.1f} ms, "
          f"max {max(loop_times) * 1000:.1f} ms")
    print(f"chromium: from its request for / to the end of its first /api/status.json answer: {loads} ms (3 cold starts)")
    print(f"/ (index.html): {page_load[1]:,} bytes in {page_load[0] * 1000:.1f} ms")
    print(f"master process RSS: {rss_off / 2**20:.1f} MiB before the dashboard, {rss_on / 2**20:.1f} MiB after 20 requests "
          f"(+{(rss_on - rss_off) / 2**20:.1f} MiB)")
    m.close()
    for process in simulators:
        process.wait(60)
