import msgpack
import pytest
from hypothesis import given, settings, strategies as st

from workqueue import protocol
from workqueue.constants import PROTOCOL_VERSION


def test_round_trip_keeps_fields_and_payload():
    frames = protocol.encode("chunk", [b"data"], xfer=3, seq=0, last=True, digest="ab")
    message = protocol.decode(frames)
    assert message.type == "chunk"
    assert message["xfer"] == 3 and message["last"] is True and message["digest"] == "ab"
    assert message.payload == [b"data"]


def test_defaults_fill_optional_fields():
    message = protocol.decode(protocol.hello("w1", "host", {"cores": 2}))
    assert message["version"] == PROTOCOL_VERSION
    assert message["nonce"] == b"" and message["features"] == []


@pytest.mark.parametrize("frames, reason", [
    ([], "empty"),
    ([b"\xc1garbage"], "undecodable"),
    ([msgpack.packb([1, 2])], "not a map"),
    ([msgpack.packb({"t": "launch-missiles"})], "unknown message type"),
    ([msgpack.packb({"t": "kill"})], "missing field 'task_id'"),
    ([msgpack.packb({"t": "kill", "task_id": "7"})], "field 'task_id' has type str"),
    ([msgpack.packb({"t": "kill", "task_id": True})], "field 'task_id' has type bool"),
    ([msgpack.packb({"t": "chunk", "xfer": 1, "seq": 0})], "expected 1 payload frames"),
    ([b"x" * (protocol.MAX_HEADER_BYTES + 1)], "exceeds"),
])
def test_malformed_messages_are_refused_with_a_reason(frames, reason):
    with pytest.raises(protocol.ProtocolError, match=reason):
        protocol.decode(frames)


def test_unknown_type_cannot_be_encoded():
    with pytest.raises(ValueError):
        protocol.encode("nope")


@settings(max_examples=500, deadline=None)
@given(st.lists(st.binary(max_size=64), min_size=0, max_size=4))
def test_random_frames_never_raise_anything_but_protocol_error(frames):
    try:
        for part in protocol.split(frames):
            protocol.decode(part)
    except protocol.ProtocolError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(-3, 4), max_size=4), st.lists(st.binary(max_size=16), max_size=6))
def test_random_bundles_never_raise_anything_but_protocol_error(counts, frames):
    header = msgpack.packb({"t": "bundle", "n": counts})
    try:
        for part in protocol.split([header, *frames]):
            protocol.decode(part)
    except protocol.ProtocolError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(max_size=8), st.one_of(st.integers(-2**63, 2**63 - 1), st.text(), st.binary(), st.booleans(),
                                                      st.none(), st.lists(st.integers(0, 9))), max_size=6),
       st.sampled_from(sorted(protocol.SCHEMA)))
def test_random_headers_of_real_types_are_validated(fields, msg_type):
    fields["t"] = msg_type
    frames = [msgpack.packb(fields, use_bin_type=True)] + [b""] * protocol.SCHEMA[msg_type][1]
    try:
        message = protocol.decode(frames)
    except protocol.ProtocolError:
        return
    spec, _ = protocol.SCHEMA[msg_type]
    for name, (kind, _) in spec.items():
        assert isinstance(message[name], kind)


def test_a_bundle_splits_back_into_its_messages():
    first = protocol.encode("heartbeat")
    second = protocol.encode("result", [b"stdout"], task_id=3, attempt=1, result=0)
    parts = protocol.split(protocol.bundle([first, second]))
    assert [protocol.decode(p).type for p in parts] == ["heartbeat", "result"]
    assert protocol.decode(parts[1]).payload == [b"stdout"]
    assert protocol.split(first) == [first]


def test_single_frame_messages_are_packed_into_one_frame_and_others_are_not():
    small = [protocol.encode("result", [b"out %d" % i], task_id=i, attempt=1, result=0) for i in range(3)]
    packed = protocol.bundle(small)
    assert len(packed) == 1
    assert [protocol.decode(p)["task_id"] for p in protocol.split(packed)] == [0, 1, 2]
    chunk = protocol.encode("chunk", [b"x" * (protocol.INLINE_MAX + 1)], xfer=1, seq=0)
    mixed = protocol.bundle([small[0], chunk])
    assert len(mixed) == 4  # the bundle header, the result, the chunk header and its payload
    assert [protocol.decode(p).type for p in protocol.split(mixed)] == ["result", "chunk"]


@pytest.mark.parametrize("fields, extra", [
    ({"m": "not a list"}, []), ({"m": []}, []), ({"m": [b"ok", 7]}, []), ({"m": [b"ok"]}, [b"stray frame"]),
])
def test_a_packed_bundle_that_is_not_one_is_refused(fields, extra):
    header = msgpack.packb({"t": "bundle", **fields}, use_bin_type=True)
    with pytest.raises(protocol.ProtocolError, match="packed bundle"):
        protocol.split([header, *extra])


def test_a_bundle_whose_counts_lie_is_refused():
    import msgpack
    header = msgpack.packb({"t": "bundle", "n": [2, 2]})
    with pytest.raises(protocol.ProtocolError, match="frame counts"):
        protocol.split([header, b"a", b"b"])


def test_small_payloads_ride_in_the_header_and_large_ones_in_frames():
    small = protocol.encode("result", [b"out"], task_id=1, attempt=1, result=0)
    large = protocol.encode("result", [b"x" * (protocol.INLINE_MAX + 1)], task_id=1, attempt=1, result=0)
    assert len(small) == 1 and len(large) == 2
    assert protocol.decode(small).payload == [b"out"]
    assert protocol.as_bytes(protocol.decode(large).payload[0]) == b"x" * (protocol.INLINE_MAX + 1)


def test_an_inline_payload_of_the_wrong_shape_is_refused():
    header = msgpack.packb({"t": "result", "task_id": 1, "attempt": 1, "result": 0, "p": "text"})
    with pytest.raises(protocol.ProtocolError, match="inline"):
        protocol.decode([header])
    header = msgpack.packb({"t": "result", "task_id": 1, "attempt": 1, "result": 0, "p": [b"a", b"b"]})
    with pytest.raises(protocol.ProtocolError, match="payload frames"):
        protocol.decode([header])
