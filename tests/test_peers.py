"""Workers serving their caches to each other: the peer server's door, transfers the master books
between workers, and what happens when a peer cannot be reached."""
import os

import pytest
import zmq
from conftest import drain, start_worker, stop, wait_for

import workqueue as wq
from workqueue.data import fastio
from workqueue.wire import protocol
from workqueue.worker.peer_server import PeerServer
from workqueue.worker.peers import (
    PeerGone,
    PeerRefused,
    PeerUnreachable,
    fetch_from_peer,
)

MiB = 1 << 20
KEY = b"the cluster's key"


@pytest.fixture
def server(tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    data = os.urandom(3 * MiB + 5)
    digest = fastio.hash_bytes(data)
    (cache / digest).write_bytes(data)
    ctx = zmq.Context()
    peer = PeerServer(ctx, str(cache), contact_host="127.0.0.1")
    peer.key = KEY
    yield peer, digest, data
    peer.close()
    ctx.destroy(0)


def test_a_peer_that_knows_the_key_gets_the_file(server, tmp_path):
    peer, digest, data = server
    incoming, _ = fetch_from_peer(zmq.Context.instance(), peer.address, digest, KEY, str(tmp_path / "part"))
    incoming.finish(str(tmp_path / "got"))
    assert (tmp_path / "got").read_bytes() == data


def test_a_peer_without_the_key_gets_nothing(server, tmp_path):
    peer, digest, _ = server
    with pytest.raises(PeerRefused, match="authentication failed"):
        fetch_from_peer(zmq.Context.instance(), peer.address, digest, b"a guess", str(tmp_path / "part"))
    assert not os.path.exists(tmp_path / "part")
    assert peer.served_bytes == 0


def test_a_worker_not_yet_welcomed_serves_no_one(server, tmp_path):
    peer, digest, _ = server
    peer.key = None
    with pytest.raises(PeerRefused, match="authentication failed"):
        fetch_from_peer(zmq.Context.instance(), peer.address, digest, KEY, str(tmp_path / "part"))


def test_fetches_of_a_file_not_held_do_not_use_up_the_places(server, tmp_path):
    """Each answered question frees its peer's place: 70 "not here" answers in a row (the master's
    record of copies out of date) and the next peer still gets its file (from the review)."""
    from workqueue.worker.peer_server import CLIENTS_MAX
    peer, digest, _ = server
    for i in range(CLIENTS_MAX + 6):
        with pytest.raises(PeerGone):
            fetch_from_peer(zmq.Context.instance(), peer.address, "0" * 32, KEY, str(tmp_path / f"p{i}"))
    incoming, _ = fetch_from_peer(zmq.Context.instance(), peer.address, digest, KEY, str(tmp_path / "part"))
    assert incoming.digest == digest


def test_a_file_not_held_or_a_name_that_is_not_a_digest_gets_nothing(server, tmp_path):
    peer, _, _ = server
    with pytest.raises(PeerGone, match="not here"):
        fetch_from_peer(zmq.Context.instance(), peer.address, "0" * 32, KEY, str(tmp_path / "part"))
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(peer.address)
    for frames in ([b"garbage"], protocol.encode("peer-get", digest="0" * 32, proof=b"x"),
                   [protocol.encode("peer-hello", nonce=b"n")[0][:-3]]):
        sock.send_multipart(frames)
        assert sock.poll(5000)
        assert protocol.decode(sock.recv_multipart()).type == "reject"
    sock.close(0)


def test_a_source_that_does_not_answer_is_unreachable_not_waited_on(tmp_path):
    silent = zmq.Context.instance().socket(zmq.ROUTER)  # accepts the connection, never answers
    port = silent.bind_to_random_port("tcp://127.0.0.1")
    try:
        with pytest.raises(PeerUnreachable):
            fetch_from_peer(zmq.Context.instance(), f"tcp://127.0.0.1:{port}", "0" * 32, KEY,
                            str(tmp_path / "part"), answer_timeout=0.5)
    finally:
        silent.close(0)


def test_a_temporary_file_reaches_a_reader_on_another_worker_with_a_password(tmp_path):
    password = tmp_path / "pw"
    password.write_text("sesame\n")
    with wq.Manager(port=0, password=b"sesame", keepalive_interval=0.5, keepalive_timeout=5) as m:
        temp = m.declare_temp()
        a = start_worker(m.port, "--cores", "1", "-P", str(password))
        b = None
        try:
            m.submit(wq.Task("head -c 3000000 /dev/zero > out", outputs=[(temp, "out")], cores=1))
            assert drain(m, 60)[0].succeeded
            blocker = m.submit(wq.Task("sleep 30", cores=1))
            assert wait_for(lambda: m.stats["tasks_running"] == 1)
            b = start_worker(m.port, "--cores", "1", "-P", str(password))
            assert wait_for(lambda: m.stats["workers_connected"] == 2)
            reader = m.submit(wq.Task("wc -c < in", inputs=[(temp, "in")], cores=1))
            while True:
                done = m.wait(60)
                assert done is not None
                if done.id == reader:
                    break
            m.cancel(blocker)
            stats = m.stats
        finally:
            stop(a)
            if b is not None:
                stop(b)
    assert done.succeeded and done.output.strip() == "3000000"
    assert stats["peer_transfers"] == 1 and stats["bytes_peer"] == 3000000
    assert stats["bytes_sent"] == 0 and stats["bytes_received"] == 0


@pytest.mark.parametrize("kind", ["temporary", "cached"])
def test_an_unreachable_peer_is_not_waited_on(manager, tmp_path, kind):
    """Worker A advertises an address no one can reach (TEST-NET-1): a reader on worker B gets the
    file from the master (a cached input) or from its producer run again (a temporary file)."""
    source = tmp_path / "input.bin"
    source.write_bytes(os.urandom(2 * MiB))
    temp = manager.declare_temp()
    if kind == "temporary":
        first = wq.Task(f"cp {source} out", outputs=[(temp, "out")], cores=1)
        second = wq.Task("wc -c < in", inputs=[(temp, "in")], cores=1)
    else:
        first = wq.Task("wc -c < in", inputs=[wq.File(str(source), "in", cache=True)], cores=1)
        second = wq.Task("wc -c < in", inputs=[wq.File(str(source), "in", cache=True)], cores=1)
    a = start_worker(manager.port, "--cores", "1", "--contact-host", "192.0.2.1")
    b = None
    try:
        manager.submit(first)
        assert drain(manager, 60)[0].succeeded
        blocker = manager.submit(wq.Task("sleep 60", cores=1))
        assert wait_for(lambda: manager.stats["tasks_running"] == 1)
        b = start_worker(manager.port, "--cores", "1")
        assert wait_for(lambda: manager.stats["workers_connected"] == 2)
        reader = manager.submit(second)
        done = manager.wait(60)
        assert done is not None and done.id == reader
        manager.cancel(blocker)
        stats = manager.stats
    finally:
        stop(a)
        if b is not None:
            stop(b)
    assert done.succeeded and done.output.strip() == str(2 * MiB)
    assert stats["peer_failures"] == 1
    if kind == "temporary":
        assert stats["tasks_recovered"] == 1
    else:
        assert stats["bytes_sent"] == 2 * 2 * MiB  # once to A, once to B after A could not be reached


def test_a_file_gone_from_its_source_comes_from_the_master_instead(manager, tmp_path):
    """The master thinks worker A holds a cached input that A has lost: B's transfer from A is
    refused (gone), and B gets the file from the master."""
    source = tmp_path / "input.bin"
    source.write_bytes(os.urandom(MiB))
    task = wq.Task("wc -c < in", inputs=[wq.File(str(source), "in", cache=True)], cores=1)
    (tmp_path / "a").mkdir()
    a = start_worker(manager.port, "--cores", "1", "-s", str(tmp_path / "a"))
    b = None
    try:
        manager.submit(task)
        assert drain(manager, 60)[0].succeeded
        cached = [p for p in (tmp_path / "a").glob("worker-*/cache/*") if p.is_file()]
        assert len(cached) == 1
        cached[0].unlink()  # behind everyone's back
        blocker = manager.submit(wq.Task("sleep 60", cores=1))
        assert wait_for(lambda: manager.stats["tasks_running"] == 1)
        b = start_worker(manager.port, "--cores", "1")
        assert wait_for(lambda: manager.stats["workers_connected"] == 2)
        reader = manager.submit(wq.Task("wc -c < in", inputs=[wq.File(str(source), "in", cache=True)], cores=1))
        done = manager.wait(60)
        manager.cancel(blocker)
        stats = manager.stats
    finally:
        stop(a)
        if b is not None:
            stop(b)
    assert done is not None and done.id == reader and done.succeeded and done.output.strip() == str(MiB)
    assert stats["peer_failures"] == 1 and stats["bytes_sent"] == 2 * MiB


def test_a_cached_input_fanned_out_leaves_the_master_at_most_twice(manager, tmp_path):
    size = 16 * MiB
    source = tmp_path / "big.bin"
    source.write_bytes(os.urandom(size))
    with wq.local_workers(4, manager, cores=1):
        assert wait_for(lambda: manager.stats["workers_connected"] == 4, timeout=60)
        for _ in range(8):
            manager.submit(wq.Task("wc -c < in; sleep 0.2", inputs=[wq.File(str(source), "in", cache=True)], cores=1))
        done = drain(manager, 120)
    assert all(t.succeeded and t.output.strip() == str(size) for t in done)
    stats = manager.stats
    assert stats["bytes_sent"] <= 2 * size
    assert stats["peer_transfers"] >= 2


def test_a_worker_claiming_transfers_it_was_not_asked_for_changes_nothing(manager):
    from conftest import dealer

    from workqueue.wire import auth
    sock = dealer(manager.port)
    sock.send_multipart(protocol.hello("worker-liar", "liar", {"cores": 1, "memory": 100, "disk": 100, "gpus": 0},
                                       nonce=auth.new_nonce(), peer="tcp://127.0.0.1:1"))
    assert sock.poll(5000)
    assert protocol.decode(protocol.split(sock.recv_multipart())[0]).type == "welcome"
    digest = fastio.hash_bytes(b"never sent to anyone")
    for xfer in (1, 2, 1 << 40):
        sock.send_multipart(protocol.encode("fetched", xfer=xfer, digest=digest, ok=True))
        sock.send_multipart(protocol.encode("fetched", xfer=xfer, digest=digest, gone=True, reason="lies"))
    sock.send_multipart(protocol.encode("bye", reason="done lying"))  # handled after all of the above
    assert wait_for(lambda: manager.stats["workers_removed"] == 1)
    stats = manager.stats
    assert stats["peer_transfers"] == 0 and stats["peer_failures"] == 0 and stats["messages_failed"] == 0
    assert manager._loop.data.replicas.count(digest) == 0
    sock.close(0)


@pytest.mark.parametrize("value", ["a b", "host:9123", "tcp://host", ""])
def test_a_contact_host_that_is_not_one_is_refused_at_the_command_line(value):
    import subprocess
    import sys
    run = subprocess.run([sys.executable, "-m", "workqueue.worker", "localhost", "9123", "--contact-host", value],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 2
    assert "--contact-host" in run.stderr and "not a host name or address" in run.stderr


def test_a_fetch_that_cannot_be_taken_into_the_cache_fails_alone_not_the_worker(tmp_path):
    import select

    from workqueue.data.cache import Cache
    from workqueue.worker.peers import WorkerPeers

    class Session:
        def __init__(self):
            self.sent = []

        def send(self, frames):
            self.sent.append(protocol.decode(frames))

    ctx = zmq.Context()
    data = os.urandom(MiB)
    digest = fastio.hash_bytes(data)
    source_cache, cache = Cache(str(tmp_path / "a")), Cache(str(tmp_path / "b"))
    (tmp_path / "a" / digest).write_bytes(data)
    source, peers = WorkerPeers(ctx, source_cache, "127.0.0.1"), WorkerPeers(ctx, cache, "127.0.0.1")
    try:
        source.set_key(KEY)
        peers.set_key(KEY)
        session = Session()
        peers.on_fetch(session, protocol.decode(protocol.encode(
            "fetch", xfer=7, digest=digest, size=len(data), source=source.address, keep=True)))
        assert select.select([peers.fileno()], [], [], 30)[0]

        def full(*args, **kwargs):
            raise OSError(28, "No space left on device")
        cache.admit = full
        peers.completed(session)  # raises nothing
        assert [(m.type, m["xfer"], m["ok"]) for m in session.sent] == [("fetched", 7, False)]
        assert "No space left" in session.sent[0]["reason"]
        assert os.listdir(tmp_path / "b" / "tmp") == []
    finally:
        source.close()
        peers.close()
        ctx.destroy(0)
