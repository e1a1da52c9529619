import functools
import math

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workqueue.constants import PROTOCOL_VERSION, Result
from workqueue.data import fastio
from workqueue.files import File
from workqueue.pytask import CALL_FILE, INLINE_LIMIT, PythonTask, RemoteTask
from workqueue.wire import auth, protocol

DIGEST = fastio.hash_bytes(b"some input")
RESOURCES = {"cores": 4.0, "memory": 7900.0, "disk": 51_000.0, "gpus": 0.0}


def header(**fields):
    return msgpack.packb(fields, use_bin_type=True)


def refused(frames, reason=""):
    with pytest.raises(protocol.ProtocolError, match=reason):
        protocol.decode(frames)


def test_round_trip_keeps_fields_and_payload():
    frames = protocol.encode("chunk", [b"data"], xfer=3, seq=0, last=True, digest=DIGEST)
    message = protocol.decode(frames)
    assert message.type == "chunk"
    assert message["xfer"] == 3 and message["last"] is True and message["digest"] == DIGEST
    assert message.payload == [b"data"]


def test_defaults_fill_optional_fields():
    message = protocol.decode(protocol.hello("w1", "host", {"cores": 2}))
    assert message["version"] == PROTOCOL_VERSION
    assert message["nonce"] == b"" and message["features"] == []


def test_an_int_where_a_float_is_declared_becomes_a_float():
    message = protocol.decode(protocol.encode("welcome", version=PROTOCOL_VERSION, keepalive=5, timeout=30))
    assert type(message["keepalive"]) is float and message["keepalive"] == 5.0


def test_unknown_fields_are_dropped():
    message = protocol.decode([header(t="kill", task_id=1, extra={"x": [1]})])
    assert message.fields == {"task_id": 1}


@pytest.mark.parametrize("frames, reason", [
    ([], "empty"),
    ([b"\xc1garbage"], "undecodable"),
    ([msgpack.packb([1, 2])], "not a map"),
    ([msgpack.packb({"t": "launch-missiles"})], "unknown message type"),
    ([msgpack.packb({"t": "bundle", "m": []})], "unknown message type"),
    ([msgpack.packb({"t": "kill"})], "missing field 'task_id'"),
    ([msgpack.packb({"t": "kill", "task_id": "7"})], "field 'task_id' has type str"),
    ([msgpack.packb({"t": "kill", "task_id": True})], "field 'task_id' has type bool"),
    ([msgpack.packb({"t": "chunk", "xfer": 1, "seq": 0})], "expected 1 payload frames"),
    ([b"x" * (protocol.MAX_HEADER_BYTES + 1)], "exceeds"),
    ([42], "a frame of type int"),
])
def test_malformed_messages_are_refused_with_a_reason(frames, reason):
    refused(frames, reason)


def test_unknown_type_cannot_be_encoded():
    with pytest.raises(ValueError):
        protocol.encode("nope")


# -- issue 14: every peer is hostile. Each case got past decode before, or broke it with another error.
def test_an_unhashable_type_is_refused():
    refused([header(t=[])], "unknown message type")
    refused([header(t={"a": 1})], "unknown message type")


@pytest.mark.parametrize("resources", [
    {"cores": "abc"}, {"cores": math.inf}, {"cores": math.nan}, {"memory": -1.0}, {"disk": 1e16},
    {"cores": True}, {"cores": None}, {"cores": [1]}, {"bogus": 1.0}, {"cores": 1.0, "power": 9000},
])
def test_a_hello_with_resources_that_are_not_amounts_is_refused(resources):
    refused(protocol.hello("w", "h", resources), "resources")


@pytest.mark.parametrize("added", [[[1]], [1], ["../../x"], [DIGEST.upper()], [DIGEST + "0"], [None]])
def test_a_cache_update_that_is_not_a_list_of_digests_is_refused(added):
    refused(protocol.encode("cache-update", added=added), "added")
    refused(protocol.hello("w", "h", {}, cached=added), "cached")
    refused(protocol.encode("auth", proof=b"p", cached=added), "cached")


@pytest.mark.parametrize("fields, name", [
    ({"measured": {"wall_time": "x"}}, "measured"),
    ({"measured": {"wall_time": math.nan}}, "measured"),
    ({"measured": {"wall_time": [1.0]}}, "measured"),
    ({"measured": {"x" * 65: 1.0}}, "measured"),
    ({"measured": {f"k{i}": 1.0 for i in range(65)}}, "measured"),
    ({"times": {"start": None}}, "times"),
    ({"times": {"start": -1.0}}, "times"),
    ({"times": {"end": math.inf}}, "times"),
    ({"limits_exceeded": {"memory": "much"}}, "limits_exceeded"),
    ({"missing": ["/etc/passwd"]}, "missing"),
    ({"missing": [["a"]]}, "missing"),
    ({"exit_code": 1 << 63}, "exit_code"),
    ({"task_id": -1}, "task_id"),
])
def test_a_result_with_fields_that_would_break_the_master_is_refused(fields, name):
    good = dict(task_id=1, attempt=1, result=0, exit_code=0)
    refused(protocol.encode("result", [b"out"], **{**good, **fields}), name)


@pytest.mark.parametrize("digest", ["../../x", "/etc/passwd", "", DIGEST[:-1], DIGEST.upper(), " " + DIGEST[1:]])
def test_a_put_whose_digest_is_not_one_is_refused(digest):
    refused(protocol.encode("put", xfer=1, digest=digest, size=3), "digest")


def test_an_invalidate_whose_digest_is_a_path_is_refused():
    refused(protocol.encode("invalidate", digest="../../cache/x"), "digest")


def task(**fields):
    return protocol.encode("task", [b""], **{"task_id": 1, "command": "true", **fields})


@pytest.mark.parametrize("inputs", [
    [[DIGEST, "../../x", 0o644, False]], [[DIGEST, "/etc/cron.d/x", 0o644, False]],
    [[DIGEST, "a//b", 0o644, False]], [[DIGEST, "", 0o644, False]], [[DIGEST, "a/./b", 0o644, False]],
    [["../../x", "in.txt", 0o644, False]], [[DIGEST, "in.txt", 0o10000, False]], [[DIGEST, "in.txt", -1, False]],
    [[DIGEST, "in.txt", 420.0, False]],
    [[DIGEST, "in.txt", 0o644, 1]], [[DIGEST, "in.txt", 0o644]], [DIGEST], [[DIGEST, ["in.txt"], 0o644, False]],
])
def test_a_task_whose_inputs_would_be_written_outside_its_sandbox_or_break_staging_is_refused(inputs):
    refused(task(inputs=inputs), "inputs")


@pytest.mark.parametrize("fields, name", [
    ({"outputs": ["../../x"]}, "outputs"),
    ({"outputs": ["/tmp/x"]}, "outputs"),
    ({"env": {"A=B": "1"}}, "env"),
    ({"env": {"": "1"}}, "env"),
    ({"env": {"A": "\0"}}, "env"),
    ({"env": {"A": 1}}, "env"),
    ({"kind": "rootkit"}, "kind"),
    ({"resources": {"cores": -1}}, "resources"),
    ({"declared": {"memory": math.inf}}, "declared"),
    ({"limits": {"wall_time": math.nan}}, "limits"),
    ({"limits": {"wall_time": -5.0}}, "limits"),
    ({"call": {"file": "../../x"}}, "call"),
    ({"call": {"evil": 1}}, "call"),
    ({"kind": "remote", "call": {"fn_name": "two words", "payload": "{}"}}, "call"),
    ({"kind": "remote", "call": {}}, "do not belong together"),
    ({"attempt": 1 << 63}, "attempt"),
])
def test_a_task_that_would_break_the_worker_is_refused(fields, name):
    refused(task(**fields), name)


@pytest.mark.parametrize("name", ["out.txt//etc/x", "../../x", "/etc/passwd", "d/../../x", "", "a/"])
def test_an_output_named_outside_its_task_is_refused(name):
    refused(protocol.encode("output", xfer=1, task_id=1, attempt=1, name=name, size=3), "name")


@pytest.mark.parametrize("fields, name", [
    ({"size": -1}, "size"), ({"size": (1 << 62) + 1}, "size"), ({"mode": 0o10000}, "mode"), ({"xfer": -1}, "xfer"),
])
def test_an_output_with_impossible_numbers_is_refused(fields, name):
    good = dict(xfer=1, task_id=1, attempt=1, name="out.txt", size=3)
    refused(protocol.encode("output", **{**good, **fields}), name)


@pytest.mark.parametrize("fields, name", [
    ({"last": True, "digest": ""}, "do not belong together"),
    ({"last": False, "digest": DIGEST}, "do not belong together"),
    ({"digest": "../x"}, "digest"),
    ({"seq": -1}, "seq"),
])
def test_a_chunk_that_lies_is_refused(fields, name):
    refused(protocol.encode("chunk", [b"x"], **{"xfer": 1, "seq": 0, **fields}), name)


@pytest.mark.parametrize("fields, name", [
    ({"keepalive": 0}, "keepalive"), ({"keepalive": math.nan}, "keepalive"), ({"timeout": math.inf}, "timeout"),
    ({"timeout": -1.0}, "timeout"), ({"proof": b"p" * 65}, "proof"),
])
def test_a_welcome_with_timings_that_would_stall_the_worker_is_refused(fields, name):
    refused(protocol.encode("welcome", **{"version": PROTOCOL_VERSION, **fields}), name)


@pytest.mark.parametrize("frames, name", [
    (protocol.hello("w" * 257, "h", {}), "worker_id"),
    (protocol.hello("w", "h" * 257, {}), "hostname"),
    (protocol.hello("w", "h", {}, nonce=b"n" * 65), "nonce"),
    (protocol.hello("w", "h", {}, features=["f"] * 65), "features"),
    (protocol.hello("w", "h", {}, features=[7]), "features"),
    (protocol.hello("w", "h", {}, coprocesses=["c"] * 17), "coprocesses"),
    (protocol.encode("bye", reason="r" * 4097), "reason"),
    (protocol.encode("reject", reason="r" * 4097), "reason"),
    (protocol.encode("auth", proof=b"p" * 65), "proof"),
    (protocol.encode("status", what="secrets"), "what"),
    (protocol.encode("status-reply", data="text"), "data"),
])
def test_overlong_or_unknown_values_are_refused(frames, name):
    refused(frames, name)


SMALL = protocol.INLINE_FILE_MAX


@pytest.mark.parametrize("msg_type, fields", [("task", {"task_id": 1}), ("result", {"task_id": 1, "attempt": 1, "result": 0})])
def test_small_files_inline_are_bounded_in_size_count_total_and_name(msg_type, fields):
    """A task's inputs or a result's outputs carried inline: each at most INLINE_FILE_MAX bytes,
    at most INLINE_FILES_MAX of them, INLINE_BYTES_MAX bytes in all, under clean names."""
    encode = functools.partial(protocol.encode, msg_type, [b""])
    most = [[f"f{i}", 0o644, bytes(SMALL)] for i in range(protocol.INLINE_BYTES_MAX // SMALL)]
    assert protocol.decode(encode(files=most, **fields))["files"] == most
    count = protocol.INLINE_FILES_MAX
    assert len(protocol.decode(encode(files=[[f"f{i}", 0, b""] for i in range(count)], **fields))["files"]) == count
    for files in ([["f", 0o644, bytes(SMALL + 1)]], most + [["g", 0o644, b"x"]], [[f"f{i}", 0, b""] for i in range(count + 1)],
                  [["../f", 0o644, b"x"]], [["/etc/f", 0o644, b"x"]], [["f", 0o10000, b"x"]], [["f", 0o644, "text"]],
                  [["f", 0o644]], [["f", -1, b"x"]]):
        refused(encode(files=files, **fields), "files")


@pytest.mark.parametrize("inline", ["text", [b"a", b"b"], [7], [None], {"a": b"b"}, [[b"a"]]])
def test_an_inline_payload_of_the_wrong_shape_is_refused(inline):
    refused([header(t="result", task_id=1, attempt=1, result=0, p=inline)], "payload")


def test_a_payload_both_inline_and_in_frames_is_refused():
    refused([header(t="result", task_id=1, attempt=1, result=0, p=[b"a"]), b"b"], "inline")


@pytest.mark.parametrize("msg_type, fields, limit", [
    ("chunk", {"xfer": 1, "seq": 0}, protocol.CHUNK_MAX),
    ("task", {"task_id": 1}, protocol.CALL_PAYLOAD_MAX),
])
def test_a_payload_larger_than_its_type_allows_is_refused(msg_type, fields, limit):
    assert protocol.decode(protocol.encode(msg_type, [bytes(limit)], **fields)).payload[0] == bytes(limit)
    refused(protocol.encode(msg_type, [bytes(limit + 1)], **fields), f"more than {limit}")


def test_a_result_payload_larger_than_its_limit_is_refused():
    class Frame:  # a received frame as the loop sees it, without allocating 64 MiB
        buffer = b""

        def __len__(self):
            return protocol.RESULT_PAYLOAD_MAX + 1
    refused([protocol.encode("result", task_id=1, attempt=1, result=0)[0], Frame()], "more than")


# -- what our own code sends is accepted, unchanged --------------------------------------------
def own_messages():
    """Every message type, with the values our master, worker and status client put there."""
    function_spec = PythonTask(len, "abc").to_spec()
    big_call = PythonTask(len, b"x" * (INLINE_LIMIT + 1)).to_spec()
    remote_spec = RemoteTask("double", "coproc", 21).to_spec()
    measured = {"wall_time": 0.004, "cpu_time": 0.003, "memory": 3.5, "start": 1.7e9, "end": 1.7e9 + 0.004,
                "cores": 0.75, "disk": 0.0}
    inputs = [[DIGEST, File("/bin/rev", "rev", cache=True).remote, 0o755, True],
              ["", File("/data/dir", "dir/sub").remote, 0o755, False],
              [DIGEST, CALL_FILE, 0o644, False]]
    return {
        "hello": protocol.hello("worker-0123456789ab", "node17.cluster", RESOURCES, nonce=auth.new_nonce(),
                                features=["gpu-a100"], coprocesses=["parsl"], cached=[DIGEST],
                                peer="tcp://node17.cluster:41234"),
        "auth": protocol.encode("auth", proof=auth.worker_proof(b"pw", auth.new_nonce(), auth.new_nonce()),
                                cached=[DIGEST]),
        "output": protocol.encode("output", xfer=3, task_id=12, attempt=1, name="results/part-1.csv", size=1 << 40,
                                  mode=0o755),
        "result": protocol.encode("result", [b"hello\n"], task_id=12, attempt=2, result=int(Result.SUCCESS),
                                  exit_code=-9, measured=measured, limits_exceeded={"memory": 100},
                                  missing=["out.txt"], times={"start": measured["start"], "end": measured["end"]},
                                  temps=[["part.dat", DIGEST, 1 << 25]]),
        "cache-update": protocol.encode("cache-update", added=[DIGEST], removed=[fastio.hash_bytes(b"")]),
        "bye": protocol.encode("bye", reason="idle timeout"),
        "welcome": protocol.encode("welcome", version=PROTOCOL_VERSION, keepalive=5.0, timeout=30.0,
                                   proof=auth.manager_proof(b"pw", auth.new_nonce(), auth.new_nonce()),
                                   peer_key=auth.new_nonce()),
        "reject": protocol.encode("reject", reason="protocol version mismatch: the manager speaks 4, the worker 3"),
        "reset": protocol.encode("reset", reason="unknown worker: say hello"),
        "challenge": protocol.encode("challenge", nonce=auth.new_nonce()),
        "put": protocol.encode("put", xfer=1, digest=DIGEST, size=0, mode=0o644, keep=True),
        "fetch": protocol.encode("fetch", xfer=2, digest=DIGEST, size=1 << 25, mode=0o644,
                                 source="tcp://10.0.0.7:40001", keep=True),
        "fetched": protocol.encode("fetched", xfer=2, digest=DIGEST, ok=False, unreachable=True, gone=False,
                                   reason="tcp://10.0.0.7:40001 did not answer in 5 s"),
        "fetched, downloaded": protocol.encode("fetched", xfer=3, digest=DIGEST, size=1 << 30, ok=True),
        "fetched, not downloaded": protocol.encode("fetched", xfer=4, reason="http://h/x: HTTP 404 Not Found"),
        "unpack": protocol.encode("unpack", xfer=5, digest=DIGEST),
        "fetch-url": protocol.encode("fetch-url", xfer=3, url="https://data.example.org/set/a.root?v=2", keep=True),
        "peer-hello": protocol.encode("peer-hello", nonce=auth.new_nonce()),
        "peer-get": protocol.encode("peer-get", digest=DIGEST,
                                    proof=auth.peer_proof(b"pw", auth.new_nonce(), auth.new_nonce())),
        "task": protocol.encode("task", [b""], task_id=7, attempt=1, command="./rev in.txt > out.txt", kind="command",
                                env={"OMP_NUM_THREADS": "1", "UNSET_ME": None}, resources=RESOURCES,
                                declared={"cores": 1, "memory": 100}, inputs=inputs, outputs=["out.txt", "d/e"],
                                limits={"wall_time": 60.0, "end_time": 1.8e9}, call={}, temps=["d/e"], unpack=["env"]),
        "function task": protocol.encode("task", [function_spec["call_payload"]], task_id=8, command=function_spec["command"],
                                         kind="function", resources={"cores": 1.0, "memory": 0.0, "disk": 0.0, "gpus": 0.0},
                                         call=function_spec["call"]),
        "function task, call as a file": protocol.encode("task", [b""], task_id=9, kind="function", call=big_call["call"],
                                                         inputs=[[DIGEST, CALL_FILE, 0o644, False]]),
        "remote task": protocol.encode("task", [b""], task_id=10, command=remote_spec["command"], kind="remote",
                                       call=remote_spec["call"]),
        "kill": protocol.encode("kill", task_id=7),
        "revoke": protocol.encode("revoke", task_id=7, attempt=2),
        "revoked": protocol.encode("revoked", task_id=7, attempt=2, revoked=True),
        "invalidate": protocol.encode("invalidate", digest=DIGEST),
        "shutdown": protocol.encode("shutdown", reason="asked by the manager"),
        "heartbeat": protocol.encode("heartbeat"),
        "chunk": protocol.encode("chunk", [bytes(fastio.CHUNK_SIZE)], xfer=1, seq=0, last=False, digest=""),
        "last chunk": protocol.encode("chunk", [b"tail"], xfer=1, seq=1, last=True, digest=DIGEST),
        "ack": protocol.encode("ack", xfer=1, seq=1),
        "status": protocol.encode("status", what="workers", nonce=auth.new_nonce(), proof=b""),
        "status-reply": protocol.encode("status-reply", data=[{"worker_id": "w", "resources": RESOURCES}]),
    }


def test_every_type_has_one_of_our_messages_here():
    assert {protocol.decode(frames).type for frames in own_messages().values()} == set(protocol.SCHEMA)


@pytest.mark.parametrize("name", sorted(own_messages()))
def test_what_our_own_code_sends_decodes_unchanged(name):
    frames = own_messages()[name]
    sent = msgpack.unpackb(frames[0])
    message = protocol.decode(frames)
    assert message.type == sent.pop("t")
    payload = sent.pop("p", frames[1:])
    assert {k: v for k, v in message.fields.items() if k in sent} == sent
    assert [protocol.as_bytes(p) for p in message.payload] == list(payload)
    again = protocol.decode(protocol.encode(message.type, message.payload, **message.fields))
    assert again.fields == message.fields


def test_the_largest_frame_covers_every_frame_we_send():
    assert protocol.MAX_FRAME_BYTES >= max(protocol.RESULT_PAYLOAD_MAX, protocol.MAX_HEADER_BYTES,
                                           protocol.CALL_PAYLOAD_MAX, fastio.CHUNK_SIZE)
    assert protocol.CHUNK_MAX == fastio.CHUNK_SIZE
    assert INLINE_LIMIT <= protocol.CALL_PAYLOAD_MAX  # a function task's call travels in its task up to this


def test_a_packed_bundle_of_the_largest_inline_calls_is_a_valid_header():
    count = protocol.PACKED_MAX // (protocol.INLINE_MAX + 64)
    calls = [protocol.encode("task", [bytes(protocol.INLINE_MAX)], task_id=i, kind="function") for i in range(count)]
    packed = protocol.bundle(calls)
    assert len(packed) == 1 and len(packed[0]) <= protocol.MAX_HEADER_BYTES
    assert [protocol.decode(part)["task_id"] for part in protocol.split(packed)] == list(range(count))


# -- bundles ------------------------------------------------------------------------------------
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
    bundle_header = msgpack.packb({"t": "bundle", "n": counts})
    try:
        for part in protocol.split([bundle_header, *frames]):
            protocol.decode(part)
    except protocol.ProtocolError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(max_size=8), st.one_of(st.integers(-2**63, 2**63 - 1), st.text(), st.binary(), st.booleans(),
                                                      st.none(), st.lists(st.integers(0, 9))), max_size=6),
       st.sampled_from(sorted(protocol.SCHEMA)))
def test_random_headers_of_real_types_are_validated(fields, msg_type):
    fields["t"] = msg_type
    frames = [msgpack.packb(fields, use_bin_type=True)] + [b""] * protocol.SCHEMA[msg_type].payload_count
    try:
        message = protocol.decode(frames)
    except protocol.ProtocolError:
        return
    for name, f in protocol.SCHEMA[msg_type].fields.items():
        assert type(message[name]) in (f.kind if type(f.kind) is tuple else (f.kind,))


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
    bundle_header = msgpack.packb({"t": "bundle", **fields}, use_bin_type=True)
    with pytest.raises(protocol.ProtocolError, match="packed bundle"):
        protocol.split([bundle_header, *extra])


def test_a_bundle_whose_counts_lie_is_refused():
    bundle_header = msgpack.packb({"t": "bundle", "n": [2, 2]})
    with pytest.raises(protocol.ProtocolError, match="frame counts"):
        protocol.split([bundle_header, b"a", b"b"])


def test_a_bundle_inside_a_bundle_is_refused_when_decoded():
    inner = protocol.bundle([protocol.encode("heartbeat"), protocol.encode("heartbeat")])
    outer = protocol.bundle([inner, protocol.encode("heartbeat")])
    with pytest.raises(protocol.ProtocolError, match="unknown message type"):
        for part in protocol.split(outer):
            protocol.decode(part)


def test_each_message_of_a_bundle_is_checked_like_a_lone_one():
    bad = protocol.encode("output", xfer=1, task_id=1, attempt=1, name="../x", size=1)
    parts = protocol.split(protocol.bundle([protocol.encode("heartbeat"), bad]))
    assert protocol.decode(parts[0]).type == "heartbeat"
    refused(parts[1], "name")


def test_small_payloads_ride_in_the_header_and_large_ones_in_frames():
    small = protocol.encode("result", [b"out"], task_id=1, attempt=1, result=0)
    large = protocol.encode("result", [b"x" * (protocol.INLINE_MAX + 1)], task_id=1, attempt=1, result=0)
    assert len(small) == 1 and len(large) == 2
    assert protocol.decode(small).payload == [b"out"]
    assert protocol.as_bytes(protocol.decode(large).payload[0]) == b"x" * (protocol.INLINE_MAX + 1)


def test_received_zmq_frames_decode_like_bytes():
    zmq = pytest.importorskip("zmq")
    frames = protocol.encode("chunk", [b"x" * (protocol.INLINE_MAX + 1)], xfer=1, seq=0)
    message = protocol.decode([zmq.Frame(frame) for frame in frames])
    assert message["xfer"] == 1 and bytes(protocol.as_buffer(message.payload[0])) == frames[1]
