"""Outbox flow control: the window per peer, credits shared by many peers, and the order of items."""
import os

from workqueue.data.transfer import BytesSource, Credits, Outbox
from workqueue.wire import protocol

CHUNK = 1024


def stream_of(outbox, xfer, chunks):
    data = os.urandom(chunks * CHUNK)
    source = BytesSource(data, CHUNK)
    outbox.stream(xfer, protocol.encode("put", xfer=xfer, digest=source.hexdigest(), size=len(data)), source)
    return data


class Wire:
    """What a peer would receive: the message type of each send, and the chunk payloads."""

    def __init__(self):
        self.types = []
        self.chunks = []

    def send(self, frames):
        message = protocol.decode(frames)
        self.types.append(message.type)
        if message.type == "chunk":
            self.chunks.append(bytes(message.payload[0]))


def test_a_stream_never_has_more_than_its_window_unacknowledged():
    outbox, wire = Outbox(window=4), Wire()
    data = stream_of(outbox, 1, 10)
    outbox.message(protocol.encode("heartbeat"))
    assert outbox.pump(wire.send) == 4
    assert outbox.pump(wire.send) == 0, "no acknowledgement, no more chunks"
    for _ in range(6):
        outbox.ack()
        assert outbox.pump(wire.send) == 1
    assert b"".join(wire.chunks) == data
    assert wire.types[0] == "put" and wire.types[-1] == "heartbeat", "a message waits for the file before it"
    assert not outbox.pending


def test_peers_sharing_credits_get_even_turns_and_never_exceed_them():
    credits = Credits(4)
    outboxes = [Outbox(window=8, credits=credits) for _ in range(3)]
    wires = [Wire() for _ in outboxes]
    for xfer, outbox in enumerate(outboxes):
        stream_of(outbox, xfer, 30)
    for _ in range(20):
        pending = list(zip(outboxes, wires))
        while pending:  # one chunk each per round, as the master's loop pumps them
            pending = [(o, w) for o, w in pending if o.pump(w.send, chunks=1)]
        in_flight = sum(o._unacked for o in outboxes)
        assert in_flight + credits.free == 4 and in_flight <= 4
        for outbox in outboxes:
            if outbox._unacked:
                outbox.ack()
    sent = [len(w.chunks) for w in wires]
    assert max(sent) - min(sent) <= 1, sent


def test_a_closed_outbox_gives_back_the_credits_its_peer_never_acknowledged():
    credits = Credits(6)
    lost, alive = Outbox(window=4, credits=credits), Outbox(window=4, credits=credits)
    stream_of(lost, 1, 10)
    stream_of(alive, 2, 10)
    assert lost.pump(Wire().send) == 4 and credits.free == 2
    lost.close()
    assert credits.free == 6
    assert alive.pump(Wire().send) == 4


def send_file(source, incoming):
    """Every chunk of ``source`` into ``incoming``, as a worker receives them; True once verified."""
    seq, done = 0, False
    while not done:
        chunk, last = source.next_chunk()
        done = incoming.add(seq, memoryview(chunk), last, source.hexdigest() if last else "")
        seq += 1
    return done


def test_a_file_sent_with_its_known_digest_arrives_verified(tmp_path):
    from workqueue.data import fastio
    from workqueue.data.transfer import FileSource, Incoming
    data = os.urandom(5 * CHUNK + 3)
    (tmp_path / "src").write_bytes(data)
    digest = fastio.hash_file(str(tmp_path / "src"))
    source = FileSource(str(tmp_path / "src"), CHUNK, digest=digest)
    incoming = Incoming(str(tmp_path / "part"), expected_digest=digest, expected_size=len(data))
    assert send_file(source, incoming)
    incoming.finish(str(tmp_path / "dst"))
    assert (tmp_path / "dst").read_bytes() == data


def test_a_file_changed_since_its_digest_was_taken_is_refused_by_the_receiver(tmp_path):
    """The sender does not hash a file whose digest it knows: the receiver's check catches a change."""
    import pytest

    from workqueue.data import fastio
    from workqueue.data.transfer import FileSource, Incoming, TransferError
    path = tmp_path / "src"
    path.write_bytes(b"a" * (3 * CHUNK))
    digest = fastio.hash_file(str(path))
    path.write_bytes(b"b" * (3 * CHUNK))  # same size, other bytes
    source = FileSource(str(path), CHUNK, digest=digest)
    incoming = Incoming(str(tmp_path / "part"), expected_digest=digest, expected_size=3 * CHUNK)
    with pytest.raises(TransferError, match="digest mismatch"):
        send_file(source, incoming)
    incoming.abort()
    assert not (tmp_path / "part").exists()
