"""The master against hostile peers, over real sockets: no message ends its loop, strangers get
nothing but a challenge, names from workers cannot leave the declared outputs, and memory stays
bounded whatever peers send. After each attack a real worker still completes a task."""
import logging
import os
import subprocess
import sys
import time

import msgpack
import psutil
import pytest
from conftest import dealer, drain, start_worker, stop, wait_for

import workqueue as wq
from workqueue import status
from workqueue.constants import PROTOCOL_VERSION, Result
from workqueue.data import fastio
from workqueue.wire import auth, protocol

PASSWORD = b"correct horse battery staple"
RESOURCES = {"cores": 1, "memory": 100, "disk": 100, "gpus": 0}


@pytest.fixture
def password_file(tmp_path):
    path = tmp_path / "password"
    path.write_bytes(PASSWORD)
    return str(path)


def assert_still_serving(m, *worker_args):
    """The loop is alive and a real worker completes a real task."""
    assert m._loop.failure is None and m._thread.is_alive()
    process = start_worker(m.port, "--cores", "1", *worker_args)
    try:
        m.submit(wq.Task("echo still serving"))
        [task] = drain(m, timeout=30)
        assert task.result == Result.SUCCESS and task.output.strip() == "still serving"
    finally:
        stop(process)


def fake_worker(m, name="fake"):
    """A peer that joins a master without a password as a worker; returns the socket."""
    sock = dealer(m.port)
    sock.send_multipart(protocol.hello(name, "fakehost", RESOURCES))
    assert next_message(sock).type == "welcome"
    return sock


def return_output(fake, task, name, data, mode=0o644, missing=()):
    """As a worker would: send one output of ``task`` named ``name``, then its result."""
    fake.send_multipart(protocol.encode("output", xfer=1, task_id=task["task_id"], attempt=task["attempt"],
                                        name=name, size=len(data), mode=mode))
    fake.send_multipart(protocol.encode("chunk", [data], xfer=1, seq=0, last=True, digest=fastio.hash_bytes(data)))
    fake.send_multipart(protocol.encode("result", [b""], task_id=task["task_id"], attempt=task["attempt"],
                                        result=0, exit_code=0, missing=list(missing)))


def next_message(sock, skip=("heartbeat",), timeout=5.0):
    deadline = time.monotonic() + timeout
    while sock.poll(max(1, int((deadline - time.monotonic()) * 1000))):
        for part in protocol.split(sock.recv_multipart()):
            message = protocol.decode(part)
            if message.type not in skip:
                return message
    raise AssertionError("no message came")


def test_an_unhashable_type_from_a_stranger_ends_nothing(password_file):
    with wq.Manager(port=0, password=PASSWORD) as m:
        stranger = dealer(m.port)
        unhashable = msgpack.packb({"t": []})
        stranger.send_multipart([unhashable])
        stranger.send_multipart([msgpack.packb({"t": {"a": 1}})])
        stranger.send_multipart([msgpack.packb({"t": "bundle", "m": [unhashable, unhashable]})])
        stranger.send_multipart([msgpack.packb({"t": "bundle", "n": [1]}), unhashable])
        assert wait_for(lambda: m.stats["messages_dropped"] + m.stats["messages_failed"] >= 4)
        assert_still_serving(m, "-P", password_file)


@pytest.mark.parametrize("cores", ["abc", None, [1], float("inf"), float("nan"), -1])
def test_a_hello_with_impossible_resources_joins_nothing(cores):
    with wq.Manager(port=0) as m:
        stranger = dealer(m.port)
        stranger.send_multipart(protocol.hello("liar", "host", {**RESOURCES, "cores": cores}))
        stranger.send_multipart(protocol.encode("hello", version=PROTOCOL_VERSION, worker_id="x", hostname="h",
                                                resources=RESOURCES, cached=[[1], {"a": 1}]))
        time.sleep(0.3)
        assert m.stats["workers_connected"] <= 1  # the second hello is valid but for its cached list
        m.submit(wq.Task("true", cores=1))
        time.sleep(0.3)  # a dispatch to the liar, if it had joined, would happen now
        assert m._loop.failure is None
        m.cancel_by_category("default")
        stranger.close()
        assert_still_serving(m)


@pytest.mark.parametrize("message", [
    protocol.encode("cache-update", added=[[1]]),
    protocol.encode("cache-update", removed=[{"a": 1}]),
    [msgpack.packb({"t": "result", "task_id": 1, "attempt": 1, "result": 0, "measured": {"wall_time": "x"}, "p": [b""]})],
    [msgpack.packb({"t": "result", "task_id": 1, "attempt": 1, "result": 0, "times": {"start": "x"}, "p": [b""]})],
    [msgpack.packb({"t": "result", "task_id": 1, "attempt": 1, "result": 0, "times": {"start": None}, "p": [b""]})],
    [msgpack.packb({"t": "result", "task_id": 1, "attempt": 1, "result": 0, "measured": {"wall_time": float("inf")},
                    "p": [b""]})],
    [msgpack.packb({"t": "output", "xfer": 1, "task_id": 1, "attempt": 1, "name": ["x"], "size": 1})],
])
def test_nonsense_from_a_worker_costs_the_loop_nothing(message):
    with wq.Manager(port=0) as m:
        fake = fake_worker(m)
        task_id = m.submit(wq.Task("true"))
        assert next_message(fake).type == "task"
        fake.send_multipart(message)
        assert wait_for(lambda: m.stats["messages_dropped"] + m.stats["messages_failed"] >= 1)
        fake.close()
        assert m._loop.failure is None
        m.cancel(task_id)
        assert_still_serving(m)


def test_a_handler_that_fails_removes_its_worker_and_the_task_runs_again(caplog):
    with wq.Manager(port=0, keepalive_interval=0.5, keepalive_timeout=5) as m:
        real = m._loop._worker_handlers["result"]
        failures = []

        def fails_once(conn, message):
            if not failures:
                failures.append(message["task_id"])
                raise RuntimeError("a defect in a handler")
            real(conn, message)

        m._loop._worker_handlers["result"] = fails_once
        process = start_worker(m.port, "--cores", "1")
        try:
            m.submit(wq.Task("echo twice"))
            [task] = drain(m, timeout=30)
        finally:
            stop(process)
        assert failures and task.result == Result.SUCCESS and task.attempts == 2
        assert m.stats["messages_failed"] == 1 and m._loop.failure is None
        assert "a defect in a handler" in caplog.text


@pytest.mark.parametrize("name", ["out.txt/{victim}", "out.txt//{victim}", "out.txt/../victim",
                                  "out.txt/./../victim", "{victim}", "../victim"])
def test_an_output_name_cannot_leave_the_declared_output(tmp_path, name):
    victim = tmp_path / "victim"
    victim.write_text("precious")
    with wq.Manager(port=0) as m:
        fake = fake_worker(m)
        m.submit(wq.Task("true", outputs=[(str(tmp_path / "out.txt"), "out.txt")]))
        task = next_message(fake)
        assert task.type == "task"
        return_output(fake, task, name.format(victim=victim), b"overwritten", mode=0o777)
        assert wait_for(lambda: m.stats["workers_removed"] == 1)
        assert m.wait(1) is None, "a worker that sent a bad name must not complete the task"
        assert victim.read_text() == "precious"
        assert sorted(os.listdir(tmp_path)) == ["victim"]
        assert m.stats["tasks_waiting"] == 1  # it runs again elsewhere


def test_an_undeclared_output_is_discarded(tmp_path):
    with wq.Manager(port=0) as m:
        fake = fake_worker(m)
        m.submit(wq.Task("true", outputs=[(str(tmp_path / "out.txt"), "out.txt")]))
        task = next_message(fake)
        return_output(fake, task, "other.txt", b"uninvited", missing=["out.txt"])
        done = m.wait(10)
        assert done is not None and done.result == Result.OUTPUT_MISSING
        assert os.listdir(tmp_path) == []


def test_an_output_gets_no_group_or_other_write_bits(tmp_path):
    with wq.Manager(port=0) as m:
        fake = fake_worker(m)
        m.submit(wq.Task("true", outputs=[(str(tmp_path / "out.txt"), "out.txt")]))
        task = next_message(fake)
        return_output(fake, task, "out.txt", b"result", mode=0o777)
        assert m.wait(10).result == Result.SUCCESS
        assert os.stat(tmp_path / "out.txt").st_mode & 0o777 == 0o755


def test_status_needs_the_password_and_says_nothing_to_strangers(password_file):
    with wq.Manager(port=0, password=PASSWORD) as m:
        m.submit(wq.Task("echo secret-command", tag="secret-tag"))
        stranger = dealer(m.port)
        stranger.send_multipart(protocol.encode("status", what="tasks"))
        reply = next_message(stranger)
        assert reply.type == "challenge"
        with pytest.raises(PermissionError, match="requires a password"):
            status.query("localhost", m.port, "tasks")
        with pytest.raises(PermissionError, match="wrong password"):
            status.query("localhost", m.port, "tasks", password=b"wrong")
        rows = status.query("localhost", m.port, "tasks", password=PASSWORD)
        assert rows[0]["tag"] == "secret-tag"
        cli = subprocess.run([sys.executable, "-c", "from workqueue.cli.main import main; main()", "status",
                              "localhost", str(m.port), "-T", "-P", password_file],
                             capture_output=True, text=True, timeout=30)
        assert cli.returncode == 0 and "secret-command" in cli.stdout


def test_strangers_are_not_workers_and_their_handshakes_expire():
    with wq.Manager(port=0, password=PASSWORD) as m:
        m._loop.door.pending.timeout = 3.0
        strangers = [dealer(m.port) for _ in range(40)]
        for i, sock in enumerate(strangers):
            sock.send_multipart(protocol.hello(f"stranger-{i}", "host", RESOURCES, nonce=auth.new_nonce()))
        assert wait_for(lambda: m.stats["handshakes_pending"] == 40, timeout=5)
        assert m.stats["workers_connected"] == 0
        deadline = time.monotonic() + 4.0
        while time.monotonic() < deadline:  # heartbeats do not keep a handshake alive
            for sock in strangers:
                sock.send_multipart(protocol.encode("heartbeat"))
            time.sleep(0.1)
        stats = m.stats
        assert stats["workers_connected"] == 0 and stats["handshakes_pending"] == 0
        for sock in strangers:
            sock.close()


def test_a_handshake_table_full_of_strangers_still_admits_a_real_worker(password_file):
    with wq.Manager(port=0, password=PASSWORD) as m:
        m._loop.door.pending.limit = 8
        strangers = [dealer(m.port) for _ in range(20)]
        for i, sock in enumerate(strangers):
            sock.send_multipart(protocol.hello(f"stranger-{i}", "host", RESOURCES))
        assert wait_for(lambda: m.stats["handshakes_pending"] == 8)
        assert_still_serving(m, "-P", password_file)
        for sock in strangers:
            sock.close()


def test_rejections_are_logged_a_few_times_not_once_each(caplog):
    caplog.set_level(logging.WARNING, logger="workqueue.manager")
    with wq.Manager(port=0) as m:
        stranger = dealer(m.port)
        for _ in range(500):
            stranger.send_multipart(protocol.encode("hello", version=999, worker_id="old", resources=RESOURCES))
        assert wait_for(lambda: m.stats["workers_rejected"] == 500)
        lines = [r for r in caplog.records if "rejected worker" in r.getMessage()]
        assert 1 <= len(lines) <= 20


def test_an_input_larger_than_every_worker_waits_unfit_instead_of_looping(tmp_path, caplog):
    big = tmp_path / "big"
    big.write_bytes(os.urandom(8 << 20))
    with wq.Manager(port=0) as m:
        process = start_worker(m.port, "--cores", "1", "--disk", "2")
        try:
            m.submit(wq.Task("wc -c big", inputs=[str(big)]))
            assert wait_for(lambda: m.stats["workers_connected"] == 1)
            assert wait_for(lambda: m.stats["tasks_unfit"] == 1)
            time.sleep(1.0)
            stats = m.stats
            assert stats["bytes_sent"] == 0 and stats["tasks_requeued"] == 0 and stats["tasks_running"] == 0
            assert "more than any connected worker has" in caplog.text
        finally:
            stop(process)
        process = start_worker(m.port, "--cores", "1", "--disk", "100")
        try:
            [task] = drain(m, timeout=30)
            assert task.result == Result.SUCCESS and task.output.split()[0] == str(8 << 20)
        finally:
            stop(process)


# -- memory under floods: the master runs in this process; each flood comes from another ----------
def rss_mib():
    return psutil.Process().memory_info().rss / (1 << 20)


def growth_under_flood(m, script, seconds=60):
    """MiB the master's process grew by while another process ran ``script`` against its port."""
    before = rss_mib()
    flood(m.port, script, seconds)
    grown = rss_mib() - before
    print(f"\nthe master grew by {grown:.1f} MiB under the flood")
    return grown


def flood(port, script, seconds=60):
    code = ("import sys, time, zmq, msgpack\n"
            "ctx = zmq.Context()\n"
            "def peer():\n"
            "    s = ctx.socket(zmq.DEALER); s.setsockopt(zmq.LINGER, 0); s.setsockopt(zmq.SNDHWM, 0)\n"
            f"    s.connect('tcp://127.0.0.1:{port}'); return s\n" + script)
    subprocess.run([sys.executable, "-c", code], timeout=seconds, check=True)


def test_unread_status_replies_stay_within_budget():
    with wq.Manager(port=0) as m:
        for i in range(20000):
            m.submit(wq.Task(f"echo a command long enough to make the task rows weigh something {i}", tag=f"t{i}"))
        assert wait_for(lambda: m.stats["tasks_submitted"] == 20000, timeout=30)
        grown = growth_under_flood(m, "s = peer()\n"
                                      "for _ in range(150):\n"
                                      "    s.send_multipart([msgpack.packb({'t': 'status', 'what': 'tasks'})])\n"
                                      "time.sleep(3)\n")
        door = m._loop.door
        assert door.status_budget.refused + door.stranger_time.refused > 0  # one budget or the other held
        assert grown < 100, f"the master grew by {grown:.0f} MiB"
        m.cancel_by_category("default")


def test_frames_larger_than_any_legitimate_one_are_refused():
    with wq.Manager(port=0) as m:
        grown = growth_under_flood(m, "big = b'x' * (512 << 20)\n"
                                      "for _ in range(2):\n"
                                      "    s = peer()\n"
                                      "    for _ in range(3):\n"
                                      "        s.send(big, zmq.NOBLOCK, copy=False)\n"
                                      "time.sleep(2)\n")
        assert grown < 100, f"the master grew by {grown:.0f} MiB"
        assert_still_serving(m)


def test_a_flood_of_small_messages_leaves_memory_bounded():
    with wq.Manager(port=0) as m:
        grown = growth_under_flood(m, "s = peer()\n"
                                      "junk = msgpack.packb({'t': 'heartbeat', 'pad': 'x' * 400})\n"
                                      "deadline = time.time() + 4\n"
                                      "while time.time() < deadline:\n"
                                      "    for _ in range(1000):\n"
                                      "        s.send(junk)\n")
        assert grown < 100, f"the master grew by {grown:.0f} MiB"
        assert_still_serving(m)


def test_a_worker_opening_too_many_outputs_at_once_is_removed_and_leaves_no_files(tmp_path):
    from workqueue.data.outputs import STREAMS_PER_WORKER_MAX
    with wq.Manager(port=0) as m:
        fake = fake_worker(m)
        m.submit(wq.Task("true", outputs=[(str(tmp_path / "dir"), "dir")]))
        task = next_message(fake)
        for xfer in range(1, STREAMS_PER_WORKER_MAX + 2):
            fake.send_multipart(protocol.encode("output", xfer=xfer, task_id=task["task_id"], attempt=task["attempt"],
                                                name=f"dir/f{xfer}", size=10))
        assert wait_for(lambda: m.stats["workers_removed"] == 1)
        assert wait_for(lambda: not any(os.scandir(tmp_path / "dir")))  # partial files removed
        assert m.stats["tasks_waiting"] == 1


def test_a_worker_claiming_too_many_cached_files_is_removed(monkeypatch):
    from workqueue.manager import loop as manager_loop
    monkeypatch.setattr(manager_loop, "CACHED_PER_WORKER_MAX", 10)
    with wq.Manager(port=0) as m:
        fake = fake_worker(m)
        fake.send_multipart(protocol.encode("cache-update", added=[f"{i:032x}" for i in range(6)]))
        fake.send_multipart(protocol.encode("cache-update", added=[f"{i:032x}" for i in range(6, 12)]))
        assert wait_for(lambda: m.stats["workers_removed"] == 1)
        assert m._loop.failure is None


def test_a_closing_master_says_goodbye_so_its_workers_look_for_a_master_at_once(tmp_path):
    from workqueue.manager.loop import CLOSING
    log_file = tmp_path / "worker.log"
    m = wq.Manager(port=0)  # the default keepalive: a silent master is noticed only after 30 s
    worker = start_worker(m.port, "--cores", "1", "-d", "all", "-o", str(log_file))
    try:
        m.submit(wq.Task("echo one", cores=1))
        assert drain(m)[0].output.strip() == "one"
        m.close()
        assert wait_for(lambda: CLOSING in log_file.read_text(), timeout=5), log_file.read_text()[-2000:]
    finally:
        stop(worker)


def test_stats_read_after_the_queue_empties_tell_what_it_saw():
    with wq.Manager(port=0) as m:
        process = start_worker(m.port, "--cores", "1")
        try:
            for round_ in range(1, 4):
                for _ in range(5):
                    m.submit(wq.Task("true"))
                drain(m)
                stats = m.stats
                assert (stats["tasks_waiting"], stats["tasks_running"], stats["workers_busy"]) == (0, 0, 0)
                assert stats["tasks_done"] == 5 * round_
        finally:
            stop(process)


def test_large_hostile_headers_from_strangers_cannot_monopolize_the_loop():
    """Checking a 1 MiB header full of nested values takes a fifth of a second: strangers get a
    share of the loop's time, and the loop keeps serving its worker while they flood."""
    with wq.Manager(port=0) as m:
        process = start_worker(m.port, "--cores", "1")
        try:
            assert wait_for(lambda: m.stats["workers_connected"] == 1)
            heavy = msgpack.packb({"t": "hello", "version": PROTOCOL_VERSION, "worker_id": "x", "resources": RESOURCES,
                                   "cached": [[i] for i in range(190_000)]})
            assert 900_000 < len(heavy) <= protocol.MAX_HEADER_BYTES
            stranger = dealer(m.port)
            for _ in range(100):
                stranger.send(heavy)
            started = time.monotonic()
            for i in range(20):
                m.submit(wq.Task(f"echo {i}", cores=1))
            done = drain(m, timeout=60)
            elapsed = time.monotonic() - started
            assert len(done) == 20 and all(t.result == Result.SUCCESS for t in done)
            assert wait_for(lambda: m.stats["messages_dropped"] >= 100, timeout=30)
            assert m._loop.door.stranger_time.refused > 0
            print(f"\n20 tasks in {elapsed:.2f} s while a stranger sent 100 MiB of heavy headers")
        finally:
            stop(process)
