"""The live dashboard (workqueue/web): its JSON from a master running real tasks on real workers, the
remote dashboard over the master's port, the password when bound elsewhere, and that nothing is
computed while nobody looks."""
import base64
import json
import os
import socket
import subprocess
import sys
import urllib.error
import urllib.request

import pytest
from conftest import wait_for

import workqueue as wq
from workqueue.manager import status as manager_status
from workqueue.web import server, source, views


def get(url, password=None):
    request = urllib.request.Request(url)
    if password is not None:
        request.add_header("Authorization", "Basic " + base64.b64encode(b"any:" + password).decode())
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, response.headers.get("Content-Type"), response.read()


def page(url, password=None):
    return json.loads(get(url + "api/status.json", password)[2])


def drain(m):
    finished = []
    while not m.empty():
        task = m.wait(30)
        assert task is not None, "a task did not finish in 30 s"
        finished.append(task)
    return finished


def run_mixed(m, password_file=None, then=lambda: None):
    """Six tasks in two categories, one failing with output; returns them once finished, and what
    ``then`` returns, called while the workers are still there."""
    with wq.local_workers(2, m.port, cores=1, password_file=password_file):
        for i in range(5):
            m.submit(wq.Task(f"echo task {i}", cores=1, category="even" if i % 2 == 0 else "odd"))
        m.submit(wq.Task("echo 'it went wrong' >&2; exit 3", cores=1, category="odd"))
        return drain(m), then()


def test_the_page_shows_categories_stream_workers_and_failures():
    with wq.Manager(port=0, dashboard=0) as m:
        assert m.dashboard_url.startswith("http://127.0.0.1:")
        finished, data = run_mixed(m, then=lambda: page(m.dashboard_url))
    cats = {c["category"]: c for c in data["categories"]}
    assert (cats["even"]["done"], cats["even"]["waiting"], cats["even"]["percent_done"]) == (3, 0, 100.0)
    assert cats["odd"]["done"] + cats["odd"]["failed"] == 3
    assert data["summary"]["tasks_done"] == 6
    by_id = {t.id: t for t in finished}
    assert sorted(row["task_id"] for row in data["stream"]) == sorted(by_id)
    for row in data["stream"]:
        assert row["worker"] == by_id[row["task_id"]].worker_id
        assert row["duration"] >= 0 and row["command"].startswith("echo")
    assert data["stream"][0]["ago"] <= data["stream"][-1]["ago"]  # most recent first
    [failure] = data["failures"]
    assert failure["exit_code"] == 3 and "it went wrong" in failure["output"]
    assert sum(w["completed"] for w in data["workers"]) == 6
    assert {w["cores"] for w in data["workers"]} == {1.0}
    assert sum(data["throughput"]["done"]) == 6


def test_static_files_metrics_and_unknown_paths():
    with wq.Manager(port=0) as m:
        url = m.start_dashboard(0)
        status, kind, body = get(url)
        assert status == 200 and kind.startswith("text/html") and b"dashboard.js" in body
        assert get(url + "static/dashboard.js")[1].startswith("text/javascript")
        assert get(url + "metrics")[2].startswith(b"# HELP workqueue_")
        for path in ("nothing", "static/../server.py", "static/nothing.js"):
            with pytest.raises(urllib.error.HTTPError) as error:
                get(url + path)
            assert error.value.code == 404


def test_nothing_is_computed_until_a_page_asks(monkeypatch):
    calls = []
    real = manager_status.dashboard
    monkeypatch.setattr(manager_status, "dashboard", lambda loop: calls.append(1) or real(loop))
    with wq.Manager(port=0, dashboard=0) as m:
        run_mixed(m)
        assert calls == []  # tasks ran with the dashboard on, nobody looking
        page(m.dashboard_url)
        page(m.dashboard_url)  # within MAX_AGE: the same answer
        get(m.dashboard_url + "metrics")
        assert len(calls) == 1


def test_the_source_asks_again_once_its_answer_is_old():
    answers = iter(range(10))
    src = source.Source(lambda: {"n": next(answers)}, lambda: None, "test", max_age=0)
    assert [src.answer()["n"] for _ in range(3)] == [0, 1, 2]
    src = source.Source(lambda: {"n": next(answers)}, lambda: None, "test", max_age=60)
    assert [src.answer()["n"] for _ in range(3)] == [3, 3, 3]


def get_with(url, authorization):
    request = urllib.request.Request(url, headers={"Authorization": authorization})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status


def test_bound_elsewhere_it_needs_a_token_from_the_masters_password():
    with wq.Manager(port=0) as m:
        with pytest.raises(ValueError, match="needs the master's password"):
            m.start_dashboard(0, host="0.0.0.0")
    with wq.Manager(port=0, password="s3cret") as m:
        url = m.start_dashboard(0, host="0.0.0.0").replace(socket.gethostname(), "127.0.0.1")
        base, token = url.split("?token=")
        assert token == server.token(b"s3cret") and len(token) == 32 and "s3cret" not in url
        for path in ("api/status.json", "metrics", "api/status.json?token=guess"):
            with pytest.raises(urllib.error.HTTPError) as error:
                get(base + path)
            assert error.value.code == 401
        with pytest.raises(urllib.error.HTTPError):
            get(base + "metrics", b"s3cret")  # the password itself is not the token: it never travels
        assert json.loads(get(f"{base}api/status.json?token={token}")[2])["summary"]["workers_connected"] == 0
        assert get(base + "metrics", token.encode())[0] == 200  # basic auth, the token as its password
        assert get_with(base + "metrics", f"Bearer {token}") == 200  # as Prometheus' bearer_token
        assert get(base)[0] == 200 and get(base + "static/dashboard.js")[0] == 200  # no figures in them


def test_on_loopback_no_password_is_asked():
    with wq.Manager(port=0, password="s3cret", dashboard=0) as m:
        assert page(m.dashboard_url)["summary"]["workers_connected"] == 0


def test_bad_arguments_are_named():
    with pytest.raises(TypeError, match="dashboard"):
        wq.Manager(port=0, dashboard="8787")
    with pytest.raises(ValueError, match="dashboard"):
        wq.Manager(port=0, dashboard=70000)
    with wq.Manager(port=0, dashboard=0) as m:
        taken = int(m.dashboard_url.rsplit(":", 1)[1].strip("/"))
        with wq.Manager(port=0) as other:
            with pytest.raises(OSError, match=f"cannot listen on 127.0.0.1:{taken}"):
                other.start_dashboard(taken)
    m.close()
    with pytest.raises(RuntimeError, match="closed"):
        m.start_dashboard(0)


def test_closing_the_manager_stops_its_dashboard():
    m = wq.Manager(port=0, dashboard=0)
    url = m.dashboard_url
    page(url)
    m.close()
    with pytest.raises(urllib.error.URLError):
        get(url + "health")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_workqueue_dashboard_serves_a_master_running_elsewhere(tmp_path):
    """The command asks the master over its port (status 'dashboard', with its password) and serves
    the same page as the master's own dashboard."""
    secret = tmp_path / "pw"
    secret.write_text("s3cret\n")
    with wq.Manager(port=0, password="s3cret", dashboard=0) as m:
        finished, _ = run_mixed(m, str(secret))
        assert wait_for(lambda: m.stats["workers_connected"] == 0)  # the figures stay as they are now
        http_port = free_port()
        command = subprocess.Popen(
            [sys.executable, "-c", "from workqueue.cli.main import main; main()", "dashboard", "localhost",
             str(m.port), "-P", str(secret), "--port", str(http_port)],
            stdout=subprocess.PIPE, text=True)
        try:
            line = command.stdout.readline()
            assert f"dashboard of localhost:{m.port} at http://127.0.0.1:{http_port}/" in line
            remote, local = page(f"http://127.0.0.1:{http_port}/"), page(m.dashboard_url)
        finally:
            command.terminate()
            command.wait(10)
    assert remote["master"] == f"localhost:{m.port}"
    for key in ("summary", "categories", "failures"):
        assert remote[key] == local[key]
    assert sorted(r["task_id"] for r in remote["stream"]) == sorted(t.id for t in finished)


def test_workqueue_dashboard_says_why_it_cannot_start(tmp_path):
    from click.testing import CliRunner

    from workqueue.cli.main import main
    with wq.Manager(port=0, password="s3cret") as m:
        result = CliRunner().invoke(main, ["dashboard", "localhost", str(m.port), "-t", "2"])
        assert result.exit_code != 0 and "requires a password" in result.output
        secret = tmp_path / "pw"
        secret.write_text("s3cret")
    with wq.Manager(port=0) as m:
        result = CliRunner().invoke(main, ["dashboard", f"localhost:{m.port}", "--bind", "0.0.0.0", "--port", "0"])
        assert result.exit_code != 0 and "needs the master's password" in result.output


def test_the_page_stays_bounded_with_a_long_queue_and_history():
    with wq.Manager(port=0, dashboard=0) as m:
        for i in range(3000):
            m.submit(wq.Task("true", category=f"c{i % 3}"))
        assert wait_for(lambda: m.stats["tasks_submitted"] == 3000)
        data = page(m.dashboard_url)
    assert [c["waiting"] for c in data["categories"]] == [1000, 1000, 1000]
    assert data["stream"] == [] and len(data["throughput"]["done"]) == views.THROUGHPUT_SECONDS


def test_the_page_lists_the_tasks_running_now(tmp_path):
    gate = tmp_path / "gate"
    with wq.Manager(port=0, dashboard=0) as m, wq.local_workers(1, m.port, cores=2):
        ids = {m.submit(wq.Task(f"while [ ! -e {gate} ]; do sleep 0.05; done", cores=1, category="held"))
               for _ in range(3)}
        assert wait_for(lambda: m.stats["tasks_running"] == 2, timeout=30)
        data = page(m.dashboard_url)
        gate.touch()
        drain(m)
    assert len(data["running"]) == 2 and {r["task_id"] for r in data["running"]} < ids
    assert all(r["category"] == "held" and r["since"] >= 0 for r in data["running"])
    assert data["categories"] == [{"category": "held", "waiting": 1, "running": 2, "done": 0, "failed": 0,
                                   "total": 3, "percent_done": 0.0}]


def test_views_fill_throughput_and_order_the_stream():
    series = views.throughput([[100, 2, 0], [103, 1, 1], [40, 9, 9]], now=104.5, window=5)
    assert series == {"start": 100, "done": [2, 0, 0, 1, 0], "failed": [0, 0, 0, 1, 0]}
    stream = [{"task_id": i, "category": "c", "worker": "w", "start": 10.0 + i, "end": 11.0 + i, "result": "SUCCESS",
               "exit_code": 0, "command": f"echo {i}", "wall_time": 1.0} for i in range(5)]
    stream[0]["start"] = 0  # never dispatched: took no time
    rows = views.stream_rows(stream, now=17.0, limit=4, detailed=2)
    assert [(r["task_id"], r["ago"], r["duration"]) for r in rows] == [(4, 2.0, 1.0), (3, 3.0, 1.0), (2, 4.0, 1.0),
                                                                       (1, 5.0, 1.0)]
    assert [r.get("command") for r in rows] == ["echo 4", "echo 3", None, None]
    assert views.stream_rows(stream[:1], now=12.0)[0]["duration"] == 0.0


def test_a_dashboard_needs_its_static_files_installed():
    assert {"index.html", "dashboard.js", "dashboard.css"} <= set(os.listdir(server.STATIC))


def test_a_manager_dropped_without_close_takes_its_dashboard_along():
    import gc
    import weakref
    m = wq.Manager(port=0, dashboard=0)
    url, ref = m.dashboard_url, weakref.ref(m)
    page(url)
    del m
    gc.collect()
    assert ref() is None
    with pytest.raises(urllib.error.URLError):
        get(url + "health")


def test_a_master_that_does_not_answer_gives_the_page_an_error_it_shows():
    served = server.start(source.remote("127.0.0.1", free_port(), timeout=0.5), port=0)
    try:
        with pytest.raises(urllib.error.HTTPError) as error:
            get(served.url + "api/status.json")
        assert error.value.code == 502
        assert "no workqueue manager answered" in json.loads(error.value.read())["error"]
        assert get(served.url + "health")[0] == 200
    finally:
        served.close()
