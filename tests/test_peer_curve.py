"""Peer transfers under CURVE: a worker whose master uses CURVE serves its cache encrypted, with a key
pair of its own that the master passes on; a client without that key gets nothing, and the bytes on
the wire are not the file's."""
import os
import select
import socket
import threading

import pytest
import zmq
from conftest import drain, start_worker, stop, wait_for

import workqueue as wq
from workqueue.data import fastio
from workqueue.data.cache import Cache
from workqueue.wire import protocol
from workqueue.worker.peer_server import PeerServer
from workqueue.worker.peers import PeerUnreachable, WorkerPeers, fetch_from_peer

MiB = 1 << 20
KEY = b"the cluster's key"


def make_server(tmp_path, encrypted):
    cache = tmp_path / "cache"
    cache.mkdir(exist_ok=True)
    data = os.urandom(2 * MiB + 7)
    digest = fastio.hash_bytes(data)
    (cache / digest).write_bytes(data)
    ctx = zmq.Context()
    peer = PeerServer(ctx, str(cache), contact_host="127.0.0.1", encrypted=encrypted)
    peer.key = KEY
    return ctx, peer, digest, data


@pytest.fixture
def encrypted(tmp_path):
    ctx, peer, digest, data = make_server(tmp_path, encrypted=True)
    yield peer, digest, data
    peer.close()
    ctx.destroy(0)


class Relay:
    """A TCP relay in front of a server that keeps every byte the server sent: what a listener on
    the network would see."""

    def __init__(self, target_port):
        self.seen = bytearray()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.address = f"tcp://127.0.0.1:{self._listener.getsockname()[1]}"
        self._target = target_port
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        client, _ = self._listener.accept()
        server = socket.create_connection(("127.0.0.1", self._target))
        ends = {client: server, server: client}
        while True:
            readable, _, _ = select.select(list(ends), [], [], 10)
            if not readable:
                return
            for end in readable:
                data = end.recv(1 << 16)
                if not data:
                    return
                if end is server:
                    self.seen += data
                ends[end].sendall(data)


def port_of(address):
    return int(address.rsplit(":", 1)[1])


def test_a_client_with_the_servers_key_gets_the_file_intact_and_the_wire_shows_none_of_it(encrypted, tmp_path):
    peer, digest, data = encrypted
    assert len(peer.curve_public) == 40
    relay = Relay(port_of(peer.address))
    incoming, _ = fetch_from_peer(zmq.Context.instance(), relay.address, digest, KEY, str(tmp_path / "part"),
                                  curve_key=peer.curve_public)
    incoming.finish(str(tmp_path / "got"))
    assert (tmp_path / "got").read_bytes() == data
    assert len(relay.seen) > len(data), "the file went through the relay"
    for offset in (0, len(data) // 2, len(data) - 64):
        assert data[offset:offset + 64] not in relay.seen, "file bytes in plain text on the wire"


def test_without_curve_the_same_relay_sees_the_file(tmp_path):
    """The check above can fail: in plain text, the relay sees the file's bytes."""
    ctx, peer, digest, data = make_server(tmp_path, encrypted=False)
    try:
        relay = Relay(port_of(peer.address))
        incoming, _ = fetch_from_peer(zmq.Context.instance(), relay.address, digest, KEY, str(tmp_path / "part"))
        incoming.abort()
        assert data[MiB:MiB + 64] in relay.seen
    finally:
        peer.close()
        ctx.destroy(0)


@pytest.mark.parametrize("key", ["another server's", "none"])
def test_a_client_without_the_servers_key_gets_nothing(encrypted, tmp_path, key):
    peer, digest, _ = encrypted
    curve_key = zmq.curve_keypair()[0] if key == "another server's" else b""
    with pytest.raises(PeerUnreachable):
        fetch_from_peer(zmq.Context.instance(), peer.address, digest, KEY, str(tmp_path / "part"),
                        answer_timeout=1.0, curve_key=curve_key)
    assert not os.path.exists(tmp_path / "part")
    assert peer.served_bytes == 0


def test_an_encrypted_worker_refuses_a_fetch_from_a_source_without_a_curve_key(tmp_path):
    class Session:
        def __init__(self):
            self.sent = []

        def send(self, frames):
            self.sent.append(protocol.decode(frames))

    ctx = zmq.Context()
    peers = WorkerPeers(ctx, Cache(str(tmp_path / "cache")), "127.0.0.1", encrypted=True)
    try:
        session = Session()
        peers.on_fetch(session, protocol.decode(protocol.encode(
            "fetch", xfer=3, digest="0" * 32, size=10, source="tcp://127.0.0.1:9", keep=True)))
        assert [(m.type, m["xfer"], m["ok"], m["unreachable"]) for m in session.sent] == [("fetched", 3, False, True)]
        assert "CURVE" in session.sent[0]["reason"]
    finally:
        peers.close()
        ctx.destroy(0)


def test_a_temporary_file_goes_worker_to_worker_encrypted_under_a_curve_master(tmp_path):
    manager_secret = str(tmp_path / "manager.key_secret")
    with wq.Manager(port=0, curve_key=manager_secret, keepalive_interval=0.5, keepalive_timeout=5) as m:
        curve = ["--curve-server-key", str(tmp_path / "manager.key")]
        temp = m.declare_temp()
        a = start_worker(m.port, "--cores", "1", *curve, "--curve-key", str(tmp_path / "a.key_secret"))
        b = None
        try:
            m.submit(wq.Task("head -c 3000000 /dev/zero > out", outputs=[(temp, "out")], cores=1))
            assert drain(m, 60)[0].succeeded
            fetched = m.fetch(temp)  # the master's own fetch reaches the worker over CURVE too
            blocker = m.submit(wq.Task("sleep 30", cores=1))
            assert wait_for(lambda: m.stats["tasks_running"] == 1)
            b = start_worker(m.port, "--cores", "1", *curve, "--curve-key", str(tmp_path / "b.key_secret"))
            assert wait_for(lambda: m.stats["workers_connected"] == 2, timeout=30)
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
    assert fetched == bytes(3000000)
