"""The dashboard in a real browser (headless Chromium, Debian's ``chromium``, which .ci/run installs):
a master runs real tasks on real local workers, and the numbers the page shows change as tasks
finish. The tasks wait for a gate file, so what the page must show at each look is certain.

``WORKQUEUE_SCREENSHOT_TO=docs/dashboard.png`` also keeps the screenshot (the README's picture).
"""
import os
import re
import shutil
import subprocess

import pytest
from conftest import wait_for

import workqueue as wq

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium on this machine and it could not be installed "
                                                         "(.ci/run runs apt-get install -y chromium)")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
         "--virtual-time-budget=4000"]  # lets the page's first polls complete before the DOM is taken


def chromium(url, profile, *action):
    done = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *action, url],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def shown(dom, element_id):
    found = re.search(rf'id="{element_id}">([^<]*)<', dom)
    assert found, f"no #{element_id} in the page"
    return found.group(1)


def category_row(dom, name):
    """The numbers of a category's row: waiting, running, done, failed."""
    row = re.search(rf"<tr><td>{name}</td><td>.*?</td><td>(\d+)</td><td>(\d+)</td><td>(\d+)</td><td>(\d+)</td></tr>",
                    dom)
    assert row, f"no row for category {name!r} in the page"
    return tuple(int(n) for n in row.groups())


def test_the_page_in_a_browser_follows_the_tasks(tmp_path):
    gate = tmp_path / "gate"
    wait_for_gate = f"while [ ! -e {gate} ]; do sleep 0.05; done; echo done"
    with wq.Manager(port=0, dashboard=0) as m, wq.local_workers(2, m.port, cores=1):
        for i in range(4):
            m.submit(wq.Task(f"echo quick {i}", cores=1, category="quick"))
        m.submit(wq.Task("echo 'the-failure-output' >&2; exit 1", cores=1, category="quick"))
        for i in range(6):
            m.submit(wq.Task(wait_for_gate, cores=1, category="gated"))
        assert wait_for(lambda: m.stats["tasks_done"] == 5 and m.stats["tasks_running"] == 2, timeout=60)

        before = chromium(m.dashboard_url, tmp_path / "profile1", "--dump-dom")
        assert shown(before, "tasks-done") == "5"
        assert (shown(before, "tasks-waiting"), shown(before, "tasks-running")) == ("4", "2")
        assert category_row(before, "gated") == (4, 2, 0, 0)
        assert category_row(before, "quick") == (0, 0, 5, 0)
        assert "the-failure-output" in before
        picture = tmp_path / "dashboard.png"  # mid-run, as the README shows it
        chromium(m.dashboard_url, tmp_path / "profile3", "--window-size=1200,1400", f"--screenshot={picture}")
        assert picture.read_bytes().startswith(b"\x89PNG")
        if os.environ.get("WORKQUEUE_SCREENSHOT_TO"):
            shutil.copy(picture, os.environ["WORKQUEUE_SCREENSHOT_TO"])

        gate.touch()
        for _ in range(11):
            assert m.wait(60) is not None
        after = chromium(m.dashboard_url, tmp_path / "profile2", "--dump-dom")
        assert shown(after, "tasks-done") == str(m.stats["tasks_done"]) == "11"
        assert (shown(after, "tasks-waiting"), shown(after, "tasks-running")) == ("0", "0")
        assert category_row(after, "gated") == (0, 0, 6, 0)
        assert shown(after, "workers-connected") == "2"


def test_the_page_passes_on_the_token_of_a_dashboard_bound_elsewhere(tmp_path):
    import socket
    with wq.Manager(port=0, password="s3cret") as m:
        url = m.start_dashboard(0, host="0.0.0.0").replace(socket.gethostname(), "127.0.0.1")
        m.submit(wq.Task("true", cores=1))
        assert wait_for(lambda: m.stats["tasks_waiting"] == 1)
        with_token = chromium(url, tmp_path / "profile1", "--dump-dom")
        assert shown(with_token, "tasks-waiting") == "1"
        without = chromium(url.split("?")[0], tmp_path / "profile2", "--dump-dom")
        assert shown(without, "tasks-waiting") == "–" and "needs its token" in without
