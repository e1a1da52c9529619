"""Catalog: directory registry and catalog server, with real processes and loopback sockets."""
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from workqueue import catalog
from workqueue.catalog import CatalogServer, advertise, lookup


@pytest.fixture
def catdir(tmp_path, monkeypatch):
    monkeypatch.delenv("CATALOG_HOST", raising=False)
    monkeypatch.delenv("CATALOG_PORT", raising=False)
    monkeypatch.setenv("WORKQUEUE_CATALOG_DIR", str(tmp_path / "cat"))
    return tmp_path / "cat"


def test_resolve():
    assert catalog.resolve("/some/dir") == ("dir", "/some/dir")
    assert catalog.resolve("cat.example:1234") == ("server", ("cat.example", 1234))
    assert catalog.resolve("cat.example") == ("server", ("cat.example", 9097))


def test_resolve_from_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("CATALOG_HOST", raising=False)
    monkeypatch.setenv("WORKQUEUE_CATALOG_DIR", str(tmp_path))
    assert catalog.resolve(None) == ("dir", str(tmp_path))
    monkeypatch.setenv("CATALOG_HOST", "localhost")
    monkeypatch.setenv("CATALOG_PORT", "5555")
    assert catalog.resolve(None) == ("server", ("localhost", 5555))


def test_directory_advertise_lookup_close(catdir):
    a = advertise("physics-run1", "localhost", 9123)
    b = advertise("physics-run2", "localhost", 9124)
    c = advertise("biology", "localhost", 9125)
    try:
        assert len(os.listdir(catdir)) == 3
        b.refresh()  # newest first
        assert lookup("physics-.*") == [("physics-run2", "localhost", 9124), ("physics-run1", "localhost", 9123)]
        assert lookup("physics") == []  # the whole name must match
        assert lookup("bio.*") == [("biology", "localhost", 9125)]
        c.close()
        assert lookup("bio.*") == []
    finally:
        for adv in (a, b, c):
            adv.close()
    assert os.listdir(catdir) == []


def test_directory_ignores_dead_and_old_masters(catdir):
    script = ("import sys; from workqueue.catalog import advertise; advertise('ghost', 'localhost', 9999)")
    subprocess.run([sys.executable, "-c", script], check=True, env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))
    assert len(os.listdir(catdir)) == 1  # it exited without closing: its file stays
    assert lookup("ghost") == []  # but its pid is dead on this host
    assert os.listdir(catdir) == []  # and lookup cleaned it up
    with advertise("old", "localhost", 9998) as old:
        record = json.loads(open(old.path).read())
        record["updated"] -= 1000
        open(old.path, "w").write(json.dumps(record))
        assert lookup("old") == []
        assert lookup("old", max_age=2000) == [("old", "localhost", 9998)]
        old.refresh()
        assert lookup("old") == [("old", "localhost", 9998)]


def test_maybe_refresh_respects_the_interval(catdir):
    with advertise("m", "localhost", 1) as adv:
        assert not adv.maybe_refresh()
        assert adv.maybe_refresh(time.monotonic() + adv.interval + 1)


def test_directory_ignores_garbage(catdir):
    catdir.mkdir(parents=True, exist_ok=True)
    (catdir / "junk.json").write_text("{not json")
    (catdir / "list.json").write_text("[1, 2]")
    with advertise("ok", "localhost", 2):
        assert lookup(".*") == [("ok", "localhost", 2)]


def test_missing_directory_is_empty(tmp_path):
    assert lookup(".*", catalog=str(tmp_path / "nowhere")) == []


@pytest.fixture
def server():
    with CatalogServer("127.0.0.1", 0, max_age=60) as s:
        yield s


def wait_for_lookup(regex, where, n, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = lookup(regex, catalog=where)
        if len(found) == n:
            return found
        time.sleep(0.02)
    return lookup(regex, catalog=where)


def test_server_udp_advertise_and_http_lookup(server):
    where = f"127.0.0.1:{server.port}"
    a = advertise("alpha", "hostA", 9123, catalog=where)
    b = advertise("alpha-two", "hostB", 9124, catalog=where)
    assert wait_for_lookup("alpha.*", where, 2)[0][0] in ("alpha", "alpha-two")
    assert wait_for_lookup("alpha", where, 1) == [("alpha", "hostA", 9123)]
    a.close()
    assert wait_for_lookup("alpha.*", where, 1) == [("alpha-two", "hostB", 9124)]
    b.close()
    assert wait_for_lookup(".*", where, 0) == []


def test_extra_fields_travel_unless_too_large(server):
    where = f"127.0.0.1:{server.port}"
    with advertise("extra", "h", 3, catalog=where) as adv:
        adv.refresh({"tasks_waiting": 7})
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not any(r.get("tasks_waiting") == 7 for r in server.query()):
            time.sleep(0.02)
        assert [r["tasks_waiting"] for r in server.query()] == [7]
        adv.refresh({"blob": "x" * (catalog.MAX_RECORD + 1)})
        while time.monotonic() < deadline and "tasks_waiting" in server.query()[0]:
            time.sleep(0.02)
        record = server.query()[0]
        assert record["name"] == "extra" and "blob" not in record and "tasks_waiting" not in record


def test_server_http_post_and_validation(server):
    where = f"127.0.0.1:{server.port}"
    catalog.post_update(where, {"type": "wq_master", "name": "posted", "host": "h", "port": 77})
    assert lookup("posted", catalog=where) == [("posted", "h", 77)]
    request = urllib.request.Request(f"http://127.0.0.1:{server.port}/update", data=b"[]", method="POST")
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(request, timeout=5)
    assert err.value.code == 400
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.sendto(b"\xff garbage", ("127.0.0.1", server.port))
    sock.close()
    body = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{server.port}/query.json", timeout=5).read())
    assert [r["name"] for r in body] == ["posted"]


def test_server_forgets_old_records():
    with CatalogServer("127.0.0.1", 0, max_age=0.3) as s:
        catalog.post_update(f"127.0.0.1:{s.port}", {"type": "wq_master", "name": "brief", "host": "h", "port": 1})
        assert [r["name"] for r in s.query()] == ["brief"]
        time.sleep(0.5)
        assert s.query() == []


def test_environment_selects_the_server(server, monkeypatch):
    monkeypatch.setenv("CATALOG_HOST", "127.0.0.1")
    monkeypatch.setenv("CATALOG_PORT", str(server.port))
    with advertise("envy", "h", 5):
        assert wait_for_lookup("envy", None, 1) == [("envy", "h", 5)]


def test_unreachable_server_gives_nothing_and_advertising_does_not_fail():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    with advertise("lonely", "h", 1, catalog=f"127.0.0.1:{port}") as adv:
        adv.refresh()
    assert lookup(".*", catalog=f"127.0.0.1:{port}") == []


WORKQUEUE = [sys.executable, "-c", "import sys; from workqueue.cli.main import main; sys.argv[0] = 'workqueue'; main()"]


def test_cli_server_process_and_list(tmp_path):
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    proc = subprocess.Popen([*WORKQUEUE, "catalog", "--bind", "127.0.0.1",
                             "--port", str(port)], env=env, stderr=subprocess.PIPE)
    try:
        assert b"listening" in proc.stderr.readline()
        where = f"127.0.0.1:{port}"
        with advertise("from-cli", "h", 42, catalog=where):
            assert wait_for_lookup("from-cli", where, 1) == [("from-cli", "h", 42)]
            out = subprocess.run([*WORKQUEUE, "catalog", "--list", "-C", where],
                                 env=env, capture_output=True, text=True, check=True).stdout
            assert out.startswith("from-cli\th:42")
    finally:
        proc.terminate()
        assert proc.wait(10) is not None
