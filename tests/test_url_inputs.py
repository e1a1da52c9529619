"""Inputs a worker downloads itself (File.url): never through the master, cached by content, and a
bad URL fails the task with INPUT_MISSING and the reason."""
import functools
import http.server
import os
import socket
import threading

import pytest
from conftest import drain

import workqueue as wq
from workqueue.constants import Result

MiB = 1 << 20


class CountingHandler(http.server.SimpleHTTPRequestHandler):
    gets = 0

    def do_GET(self):
        type(self).gets += 1
        super().do_GET()

    def log_message(self, *args):
        pass


@pytest.fixture
def web(tmp_path):
    """A local HTTP server over tmp_path/www: (base URL, its directory, its handler class)."""
    root = tmp_path / "www"
    root.mkdir()
    handler = type("Handler", (CountingHandler,), {"gets": 0})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", root, handler
    server.shutdown()
    server.server_close()


def test_a_url_input_is_downloaded_by_the_worker_not_sent_by_the_master(manager, web):
    base, root, _ = web
    data = os.urandom(3 * MiB)
    (root / "data.bin").write_bytes(data)
    with wq.local_workers(1, manager, cores=1):
        manager.submit(wq.Task("wc -c < data.bin", inputs=[wq.File.url(f"{base}/data.bin")]))
        task = drain(manager, 60)[0]
    assert task.succeeded and task.output.strip() == str(len(data))
    assert manager.stats["bytes_sent"] == 0


def test_a_url_used_by_several_tasks_on_a_worker_is_downloaded_once(manager, web):
    base, root, handler = web
    (root / "table.csv").write_text("a,b\n1,2\n")
    with wq.local_workers(1, manager, cores=1):
        for i in range(4):
            manager.submit(wq.Task("cat in.csv", inputs=[wq.File.url(f"{base}/table.csv", "in.csv")]))
        done = drain(manager, 60)
    assert [t.output for t in done] == ["a,b\n1,2\n"] * 4
    assert handler.gets == 1


def test_a_missing_page_fails_the_task_with_input_missing_and_the_status(manager, web):
    base, _, _ = web
    with wq.local_workers(1, manager, cores=1):
        manager.submit(wq.Task("cat x", inputs=[wq.File.url(f"{base}/nothing-here", "x")]))
        task = drain(manager, 60)[0]
    assert task.result == Result.INPUT_MISSING
    assert "HTTP 404" in task.output


def test_a_server_that_is_not_there_fails_the_task_not_the_worker(manager):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    with wq.local_workers(1, manager, cores=1):
        manager.submit(wq.Task("cat x", inputs=[wq.File.url(f"http://127.0.0.1:{port}/x", "x")]))
        failed = drain(manager, 60)[0]
        manager.submit(wq.Task("echo still here"))
        after = drain(manager, 60)[0]
    assert failed.result == Result.INPUT_MISSING and "refused" in failed.output.lower()
    assert after.succeeded and after.output == "still here\n"


def test_only_http_urls_are_taken():
    with pytest.raises(ValueError, match="not an http"):
        wq.File.url("file:///etc/passwd")
    with pytest.raises(ValueError, match="output"):
        wq.Task("true", outputs=[wq.File.url("http://example.org/x")])


def test_a_url_not_to_be_cached_is_downloaded_for_each_task(manager, web):
    base, root, handler = web
    (root / "fresh.txt").write_text("fresh\n")
    with wq.local_workers(1, manager, cores=1):
        for _ in range(3):
            manager.submit(wq.Task("cat in", inputs=[wq.File.url(f"{base}/fresh.txt", "in", cache=False)]))
            assert drain(manager, 60)[0].output == "fresh\n"
    assert handler.gets == 3
