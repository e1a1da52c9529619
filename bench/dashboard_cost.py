"""Dashboard off vs on with a poller, alternating, on bench's own workloads (throughput, functions).

    python -m bench.dashboard_cost [repeats]

"On": every Manager the workload makes starts its dashboard (port 18787), and a process of its own GETs /api/status.json once
a second (what the page does) and /metrics every 5 s (a scraper), for the whole run."""

import os
import statistics
import subprocess
import sys

import workqueue as wq
from bench import workloads

_init = wq.Manager.__init__
polls = {"status": 0, "metrics": 0, "bytes": 0}


DASH_PORT = 18787
POLLER = """
import sys, time, urllib.request
url, tick = sys.argv[1], 0
while True:
    time.sleep(1.0)
    try:
        urllib.request.urlopen(url + "api/status.json", timeout=5).read()
        tick += 1
        if tick % 5 == 0:
            urllib.request.urlopen(url + "metrics", timeout=5).read()
        print(tick, flush=True)
    except OSError:
        pass
"""


def watched_init(self, *args, **kwargs):
    """The dashboard on, on a fixed port, where the poller (a process of its own, as a browser is,
    started once for the whole run) finds it."""
    _init(self, *args, **kwargs)
    self.start_dashboard(DASH_PORT)


ROWS = [("throughput N=2000, 1 worker", lambda: workloads.throughput(2000, 1)),
        ("throughput N=2000, 2 workers", lambda: workloads.throughput(2000, 2)),
        ("functions noop x5000, 2 workers", lambda: workloads.functions(5000, 2))]


def main(repeats):
    poller = subprocess.Popen([sys.executable, "-c", POLLER, f"http://127.0.0.1:{DASH_PORT}/"],
                              stdout=subprocess.PIPE, text=True)
    results = {name: {"off": [], "on": [], "off_cpu": [], "on_cpu": []} for name, _ in ROWS}
    for r in range(repeats):
        for mode in (("off", "on") if r % 2 == 0 else ("on", "off")):
            wq.Manager.__init__ = watched_init if mode == "on" else _init
            for name, run in ROWS:
                cpu = os.times()
                rate = run()
                spent = os.times()
                master_cpu = (spent.user - cpu.user) + (spent.system - cpu.system)  # this process only
                results[name][mode].append(rate)
                results[name][mode + "_cpu"].append(master_cpu)
                print(f"run {r + 1} {mode:3} {name}: {rate:,.0f} tasks/s, master process CPU {master_cpu:.2f} s, "
                      f"load {os.getloadavg()[0]:.1f}", flush=True)
    wq.Manager.__init__ = _init
    print()
    for name, got in results.items():
        off, on = statistics.median(got["off"]), statistics.median(got["on"])
        print(f"{name}: off {off:,.0f}/s (runs {', '.join(f'{x:,.0f}' for x in got['off'])}), "
              f"on {on:,.0f}/s (runs {', '.join(f'{x:,.0f}' for x in got['on'])}): on/off = {on / off:.3f}; "
              f"master CPU s off {statistics.median(got['off_cpu']):.2f}, on {statistics.median(got['on_cpu']):.2f}")
    poller.kill()
    print(f"polls answered: {poller.communicate()[0].split()[-1:]}")
    return results


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
