"""Hostile headers for every message type: decode and split raise ProtocolError and nothing else, and
whatever decodes satisfies the rules, as restated here without protocol.py's own checks.

The strategies build a valid message of each type, then mutate it: wrong types in any field or
nested element, wrong nesting, huge, negative, infinite or nan numbers, long strings, extra and
missing keys, bad inline payloads; alone, or in bundles, packed or not. A deterministic test also
replaces every node of a rich message of each type by every hostile value: with any one field's
check or bounds taken out of SCHEMA (or a check across fields), it fails. The soak variant (marked
slow) runs the properties for a while: about 60 s when WORKQUEUE_SOAK_SCALE=ci, 4 s otherwise.
"""
import math
import os
import posixpath
import re
import time

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workqueue.wire import protocol

# -- the rules, restated -----------------------------------------------------------------------
I64, U64 = 1 << 63, 1 << 64
DIGEST = re.compile(r"[0-9a-f]{32}")


def integer(low, high):
    return lambda v: type(v) is int and low <= v <= high


def number(low=-math.inf):
    return lambda v: type(v) in (int, float) and math.isfinite(v) and v >= low


def text(limit=None):
    return lambda v: type(v) is str and (limit is None or len(v) <= limit)


def blob(limit):
    return lambda v: type(v) is bytes and len(v) <= limit


def is_digest(v):
    return type(v) is str and DIGEST.fullmatch(v) is not None


def is_name(v):
    return (type(v) is str and 0 < len(v) <= 4096 and "\0" not in v and not v.startswith("/")
            and posixpath.normpath(v) == v and v != ".." and not v.startswith("../"))


def list_of(item, limit=None):
    return lambda v: type(v) is list and (limit is None or len(v) <= limit) and all(item(x) for x in v)


def numbers(low=-math.inf):
    return lambda v: (type(v) is dict and len(v) <= 64
                      and all(type(k) is str and len(k) <= 64 and number(low)(x) for k, x in v.items()))


def resources(v):
    return type(v) is dict and all(k in ("cores", "memory", "disk", "gpus") and number(0)(x) and x <= 1e15
                                   for k, x in v.items())


def env(v):
    return type(v) is dict and all(type(k) is str and k and "=" not in k and "\0" not in k
                                   and (x is None or (type(x) is str and "\0" not in x)) for k, x in v.items())


def inputs(v):
    return type(v) is list and all(type(e) is list and len(e) == 4 and (e[0] == "" or is_digest(e[0]))
                                   and is_name(e[1]) and integer(0, 0o7777)(e[2]) and type(e[3]) is bool for e in v)


def call(v):
    rules = {"file": is_name, "fn_name": lambda x: text(256)(x) and x != "" and len(x.split()) == 1 and x.split()[0] == x,
             "coprocess": text(256), "payload": text()}
    return type(v) is dict and all(k in rules and rules[k](x) for k, x in v.items())


def peer_address(v):
    if type(v) is not str or len(v) > 256:
        return False
    host, _, port = v[len("tcp://"):].rpartition(":")
    return v == "" or (v.startswith("tcp://") and bool(host) and port.isdigit() and 0 < int(port) < 65536
                       and not any(c.isspace() for c in host))


Z85 = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#"


def curve_key(v):
    return type(v) is bytes and (v == b"" or (len(v) == 40 and all(c in Z85 for c in v)))


def temps(v):
    return type(v) is list and len(v) <= 4096 and all(
        type(e) is list and len(e) == 3 and is_name(e[0]) and is_digest(e[1]) and integer(0, 1 << 62)(e[2]) for e in v)


def inline_files(v):
    """[name, mode, bytes]: at most 16 files of at most 64 KiB, 256 KiB in all."""
    return (type(v) is list and len(v) <= 16
            and all(type(e) is list and len(e) == 3 and is_name(e[0]) and integer(0, 0o7777)(e[1])
                    and blob(64 << 10)(e[2]) for e in v)
            and sum(len(e[2]) for e in v) <= 256 << 10)


ID = integer(0, I64 - 1)
RULES = {
    "hello": {"version": ID, "worker_id": text(256), "hostname": text(256), "resources": resources,
              "nonce": blob(64), "features": list_of(text(256), 64), "coprocesses": list_of(text(256), 16),
              "cached": list_of(is_digest), "time_left": lambda v: type(v) is float and 0 <= v < math.inf,
              "peer": peer_address, "peer_curve": curve_key},
    "auth": {"proof": blob(64), "cached": list_of(is_digest)},
    "output": {"xfer": ID, "task_id": ID, "attempt": ID, "name": is_name, "size": integer(0, 1 << 62),
               "mode": integer(0, 0o7777)},
    "result": {"task_id": ID, "attempt": ID, "result": integer(-I64, U64), "exit_code": integer(-I64, I64 - 1),
               "measured": numbers(), "limits_exceeded": numbers(), "missing": list_of(is_name), "times": numbers(0),
               "temps": temps, "files": inline_files},
    "cache-update": {"added": list_of(is_digest), "removed": list_of(is_digest)},
    "bye": {"reason": text(4096)},
    "fetched": {"xfer": ID, "digest": lambda v: v == "" or is_digest(v), "size": integer(0, 1 << 62),
                "ok": lambda v: type(v) is bool,
                "unreachable": lambda v: type(v) is bool, "gone": lambda v: type(v) is bool, "reason": text(4096)},
    "welcome": {"version": ID, "keepalive": lambda v: type(v) is float and 0 < v < math.inf,
                "timeout": lambda v: type(v) is float and 0 < v < math.inf, "proof": blob(64),
                "peer_key": blob(64)},
    "reject": {"reason": text(4096)},
    "reset": {"reason": text(4096)},
    "challenge": {"nonce": blob(64)},
    "put": {"xfer": ID, "digest": is_digest, "size": integer(0, 1 << 62), "mode": integer(0, 0o7777),
            "keep": lambda v: type(v) is bool},
    "fetch": {"xfer": ID, "digest": is_digest, "size": integer(0, 1 << 62), "mode": integer(0, 0o7777),
              "source": peer_address, "source_curve": curve_key, "keep": lambda v: type(v) is bool},
    "unpack": {"xfer": ID, "digest": is_digest},
    "fetch-url": {"xfer": ID, "url": lambda v: (type(v) is str and len(v) <= 4096 and v.startswith(("http://", "https://"))
                                                and v.isprintable() and " " not in v),
                  "keep": lambda v: type(v) is bool},
    "task": {"task_id": ID, "attempt": ID, "command": text(), "kind": lambda v: v in ("command", "function", "remote"),
             "env": env, "resources": resources, "declared": resources, "inputs": inputs, "outputs": list_of(is_name),
             "limits": numbers(0), "call": call, "temps": list_of(is_name), "unpack": list_of(is_name),
             "files": inline_files},
    "kill": {"task_id": ID},
    "revoke": {"task_id": ID, "attempt": ID},
    "revoked": {"task_id": ID, "attempt": ID, "revoked": lambda v: type(v) is bool},
    "invalidate": {"digest": is_digest},
    "shutdown": {"reason": text(4096)},
    "heartbeat": {},
    "chunk": {"xfer": ID, "seq": ID, "last": lambda v: type(v) is bool, "digest": lambda v: v == "" or is_digest(v)},
    "ack": {"xfer": ID, "seq": ID},
    "peer-hello": {"nonce": blob(64)},
    "peer-get": {"digest": is_digest, "proof": blob(64)},
    "status": {"what": lambda v: v in ("queue", "workers", "tasks"), "nonce": blob(64), "proof": blob(64)},
    "status-reply": {"data": lambda v: type(v) in (dict, list)},
}
PAYLOADS = {"result": 64 << 20, "task": 1 << 20, "chunk": 1 << 20}  # one payload frame, at most this many bytes


def conforms(message):
    rules = RULES[message.type]
    fields = message.fields
    if set(fields) != set(rules) or not all(rules[name](value) for name, value in fields.items()):
        return False
    if len(message.payload) != (1 if message.type in PAYLOADS else 0):
        return False
    if any(len(protocol.as_bytes(p)) > PAYLOADS[message.type] for p in message.payload):
        return False
    if message.type == "chunk" and fields["last"] != (fields["digest"] != ""):
        return False
    if message.type == "task" and fields["kind"] == "remote":
        return "fn_name" in fields["call"] and "payload" in fields["call"]
    return True


def test_the_restated_rules_cover_every_type():
    assert set(RULES) == set(protocol.SCHEMA)
    for msg_type, spec in protocol.SCHEMA.items():
        assert set(RULES[msg_type]) == set(spec.fields)


# -- valid messages ----------------------------------------------------------------------------
ids = st.integers(0, I64 - 1)
digests = st.text("0123456789abcdef", min_size=32, max_size=32)
names = st.lists(st.text("abc.-_ é", min_size=1, max_size=6).filter(lambda p: p not in (".", "..")),
                 min_size=1, max_size=4).map("/".join)
finite = st.floats(allow_nan=False, allow_infinity=False)
amounts = st.one_of(st.floats(0, 1e15), st.integers(0, 10 ** 15))
resource_maps = st.dictionaries(st.sampled_from(["cores", "memory", "disk", "gpus"]), amounts)
short_keys = st.text(max_size=12)
words = st.text(st.characters(blacklist_categories=("Zs", "Zl", "Zp", "Cc")), min_size=1, max_size=12)
curve_keys = st.one_of(st.just(b""), st.binary(min_size=40, max_size=40).map(
    lambda b: bytes(Z85[c % 85] for c in b)))
inline_file_lists = st.lists(st.tuples(names, st.integers(0, 0o7777), st.binary(max_size=16)).map(list), max_size=3)
messages_valid = {
    "hello": st.fixed_dictionaries(
        {"version": ids, "worker_id": st.text(max_size=40), "resources": resource_maps},
        optional={"hostname": st.text(max_size=40), "nonce": st.binary(max_size=64),
                  "features": st.lists(st.text(max_size=20), max_size=5),
                  "coprocesses": st.lists(st.text(max_size=20), max_size=3), "cached": st.lists(digests, max_size=3),
                  "time_left": st.floats(0, 1e9),
                  "peer": st.one_of(st.just(""), st.builds("tcp://{}:{}".format, st.sampled_from(["h", "10.0.0.1"]),
                                                           st.integers(1, 65535))),
                  "peer_curve": curve_keys}),
    "auth": st.fixed_dictionaries({"proof": st.binary(max_size=64)}, optional={"cached": st.lists(digests, max_size=3)}),
    "output": st.fixed_dictionaries({"xfer": ids, "task_id": ids, "attempt": ids, "name": names,
                                     "size": st.integers(0, 1 << 62)}, optional={"mode": st.integers(0, 0o7777)}),
    "result": st.fixed_dictionaries(
        {"task_id": ids, "attempt": ids, "result": st.integers(-I64, U64 - 1)},
        optional={"exit_code": st.integers(-I64, I64 - 1),
                  "measured": st.dictionaries(short_keys, st.one_of(finite, st.integers(-I64, I64 - 1)), max_size=8),
                  "limits_exceeded": st.dictionaries(short_keys, finite, max_size=3),
                  "missing": st.lists(names, max_size=3),
                  "times": st.dictionaries(st.sampled_from(["start", "end"]), st.floats(0, 2e9)),
                  "temps": st.lists(st.tuples(names, digests, st.integers(0, 1 << 62)).map(list), max_size=3),
                  "files": inline_file_lists}),
    "cache-update": st.fixed_dictionaries({}, optional={"added": st.lists(digests, max_size=4),
                                                        "removed": st.lists(digests, max_size=4)}),
    "bye": st.fixed_dictionaries({}, optional={"reason": st.text(max_size=40)}),
    "fetched": st.fixed_dictionaries({"xfer": ids}, optional={
        "digest": st.one_of(st.just(""), digests), "size": st.integers(0, 1 << 62),
        "ok": st.booleans(), "unreachable": st.booleans(), "gone": st.booleans(), "reason": st.text(max_size=40)}),
    "unpack": st.fixed_dictionaries({"xfer": ids, "digest": digests}),
    "fetch-url": st.fixed_dictionaries({"xfer": ids, "url": st.builds("http://{}/{}".format, st.sampled_from(["h", "h:8080"]),
                                                                      st.text("abc/._-", max_size=10))},
                                       optional={"keep": st.booleans()}),
    "welcome": st.fixed_dictionaries({"version": ids}, optional={
        "keepalive": st.floats(1e-3, 1e6), "timeout": st.integers(1, 10 ** 6), "proof": st.binary(max_size=64),
        "peer_key": st.binary(max_size=64)}),
    "reject": st.fixed_dictionaries({"reason": st.text(max_size=40)}),
    "reset": st.fixed_dictionaries({}, optional={"reason": st.text(max_size=40)}),
    "challenge": st.fixed_dictionaries({"nonce": st.binary(max_size=64)}),
    "put": st.fixed_dictionaries({"xfer": ids, "digest": digests, "size": st.integers(0, 1 << 62)},
                                 optional={"mode": st.integers(0, 0o7777), "keep": st.booleans()}),
    "fetch": st.fixed_dictionaries({"xfer": ids, "digest": digests, "size": st.integers(0, 1 << 62),
                                   "source": st.builds("tcp://{}:{}".format, st.sampled_from(["h", "10.0.0.1"]),
                                                       st.integers(1, 65535))},
                                  optional={"mode": st.integers(0, 0o7777), "keep": st.booleans(),
                                            "source_curve": curve_keys}),
    "task": st.fixed_dictionaries({"task_id": ids}, optional={
        "attempt": ids, "command": st.text(max_size=40), "kind": st.sampled_from(["command", "function"]),
        "env": st.dictionaries(st.text(max_size=8).filter(lambda k: k and "=" not in k and "\0" not in k),
                               st.one_of(st.none(), st.text(max_size=8).filter(lambda v: "\0" not in v)), max_size=4),
        "resources": resource_maps, "declared": resource_maps,
        "inputs": st.lists(st.tuples(st.one_of(st.just(""), digests), names, st.integers(0, 0o7777), st.booleans())
                           .map(list), max_size=4),
        "outputs": st.lists(names, max_size=3),
        "limits": st.dictionaries(st.sampled_from(["wall_time", "end_time"]), st.floats(0, 2e9)),
        "call": st.fixed_dictionaries({}, optional={"file": names}), "temps": st.lists(names, max_size=2),
        "unpack": st.lists(names, max_size=2), "files": inline_file_lists}),
    "kill": st.fixed_dictionaries({"task_id": ids}),
    "revoke": st.fixed_dictionaries({"task_id": ids, "attempt": ids}),
    "revoked": st.fixed_dictionaries({"task_id": ids, "attempt": ids, "revoked": st.booleans()}),
    "invalidate": st.fixed_dictionaries({"digest": digests}),
    "shutdown": st.fixed_dictionaries({}, optional={"reason": st.text(max_size=40)}),
    "heartbeat": st.fixed_dictionaries({}),
    "chunk": st.one_of(st.fixed_dictionaries({"xfer": ids, "seq": ids, "last": st.just(True), "digest": digests}),
                       st.fixed_dictionaries({"xfer": ids, "seq": ids}, optional={"last": st.just(False),
                                                                                  "digest": st.just("")})),
    "ack": st.fixed_dictionaries({"xfer": ids, "seq": ids}),
    "peer-hello": st.fixed_dictionaries({"nonce": st.binary(max_size=64)}),
    "peer-get": st.fixed_dictionaries({"digest": digests, "proof": st.binary(max_size=64)}),
    "status": st.fixed_dictionaries({}, optional={"what": st.sampled_from(["queue", "workers", "tasks"]),
                                                  "nonce": st.binary(max_size=64), "proof": st.binary(max_size=64)}),
    "status-reply": st.fixed_dictionaries({"data": st.one_of(st.dictionaries(st.text(max_size=5), ids),
                                                             st.lists(ids))}),
}
remote_tasks = st.fixed_dictionaries({"task_id": ids, "kind": st.just("remote"), "call": st.fixed_dictionaries(
    {"fn_name": words, "payload": st.text(max_size=20)}, optional={"coprocess": st.text(max_size=20)})})
types = st.sampled_from(sorted(protocol.SCHEMA))


def valid_headers(msg_type):
    fields = messages_valid[msg_type]
    return st.one_of(fields, remote_tasks) if msg_type == "task" else fields


# -- hostile values ----------------------------------------------------------------------------
nasty_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-I64, U64 - 1), st.sampled_from([-1, I64 - 1, I64, U64 - 1, 0o10000]),
    st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([math.inf, -math.inf, math.nan, -0.0, 1e300]),
    st.text(max_size=10), st.binary(max_size=10),
    st.sampled_from(["", ".", "..", "../../x", "/etc/passwd", "a//b", "a/", "x" * 5000, "A=B", "\0",
                     "0123456789ABCDEF0123456789ABCDEF", "two words", "remote", "t", "p"]),
    st.builds(lambda n: "x" * n, st.integers(60, 5000)), st.builds(lambda n: b"x" * n, st.integers(60, 200)),
)
msgpack_values = st.recursive(nasty_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.one_of(st.text(max_size=6), st.binary(max_size=4)), inner, max_size=4)),
    max_leaves=10)


NASTY_OF_TYPE = {  # hostile values of the type a field expects, so that its deeper rules are what refuse them
    int: [-1, -2, -I64, I64, U64 - 1, 0o10000, (1 << 62) + 1, I64 - 1, 0],
    float: [math.inf, -math.inf, math.nan, -1.0, -1e-300, 1e16, 1e300, 0.0],
    str: ["", ".", "..", "../../x", "/etc/passwd", "a//b", "a/", "./a", "a/./b", "x" * 300, "x" * 5000, "A=B", "\0",
          "a\0b", "two words", "0123456789ABCDEF0123456789ABCDEF", "0123456789abcdef0123456789abcdef0", "remote",
          "secrets", "bundle"],
    bytes: [b"x" * 65, b"x" * 300, b"x" * ((64 << 10) + 1)],
    bool: [0, 1],
}


class Mutator:
    """Hostile changes to a valid value. Its choices come from a Random that hypothesis controls
    (uniform, where hypothesis's own draws favour the simplest choice), its new values from
    msgpack_values."""

    def __init__(self, draw):
        self.draw = draw
        self.random = draw(st.randoms(use_true_random=False))

    def garbage(self):
        return self.draw(msgpack_values)

    def mutate(self, value, depth=0):
        """``value`` with one change somewhere inside: a node replaced (mostly by a hostile value
        of its own type), an element added or removed, a key renamed or added; an empty list or
        map gets a hostile element."""
        choose = self.random.choice
        if type(value) in (list, dict) and not value and choose([True, False]):
            return [self.garbage()] if type(value) is list else {self.draw(st.text(max_size=6)): self.garbage()}
        if type(value) not in (list, dict) or not value or (depth and self.random.random() < 0.25):
            if type(value) in NASTY_OF_TYPE and self.random.random() < 0.75:
                return choose(NASTY_OF_TYPE[type(value)])
            return self.garbage()
        if type(value) is list:
            index = self.random.randrange(len(value))
            action = choose(["into", "into", "drop", "append"])
            if action == "drop":
                return value[:index] + value[index + 1:]
            if action == "append":
                return value + [self.garbage()]
            return value[:index] + [self.mutate(value[index], depth + 1)] + value[index + 1:]
        key = choose(sorted(value, key=repr))
        action = choose(["into", "into", "into", "drop", "add", "rekey"])
        changed = dict(value)
        if action == "drop":
            del changed[key]
        elif action == "add":
            changed[choose(["t", "p", "cores", "fn_name", "", "x" * 65])] = self.garbage()
        elif action == "rekey":
            changed[choose(["", "x" * 65, "A=B", b"k", "cores ", "Cores"])] = changed.pop(key)
        else:
            changed[key] = self.mutate(value[key], depth + 1)
        return changed

    def payload(self, msg_type):
        """(inline value or None, extra frames): mostly right, sometimes wrong in count, type or place."""
        chunks = [self.draw(st.binary(max_size=40))] if msg_type in PAYLOADS else []
        shape = self.random.choice(["inline", "frames"] * 4 + ["garbage", "count", "both"])
        if shape == "inline":
            return (chunks or None), []
        if shape == "frames":
            return None, chunks
        if shape == "garbage":
            return self.garbage(), []
        if shape == "count":
            return None, [b"x"] * self.random.choice([0, 2, 3])
        return chunks + [b"x"], [b"y"]


@st.composite
def valid_messages(draw):
    msg_type = draw(types)
    return msg_type, draw(valid_headers(msg_type))


@st.composite
def hostile_messages(draw, msg_type=None):
    """Frames of one message: a valid header of the type with one field mutated (deep inside, or
    dropped, or of the wrong type...), sometimes another too, with a payload of any shape."""
    msg_type = msg_type or draw(types)
    fields = {"t": msg_type, **draw(valid_headers(msg_type))}
    mutator = Mutator(draw)
    names = sorted(protocol.SCHEMA[msg_type].fields)
    targets = [mutator.random.choice(names * 6 + ["t", "p", "extra"])]
    if names and mutator.random.random() < 0.2:
        targets.append(mutator.random.choice(names))
    for target in targets:
        if target in fields and mutator.random.random() < 0.15:
            del fields[target]
            continue
        spec = protocol.SCHEMA[msg_type].fields.get(target)
        default = spec.default if spec is not None and spec.default is not protocol.REQUIRED else None
        fields[target] = mutator.mutate(fields.get(target, default))
    inline, extra = mutator.payload(msg_type)
    if inline is not None:
        fields[protocol.INLINE] = inline
    return [msgpack.packb(fields, use_bin_type=True), *extra]


def frames_of(msg_type, fields, inline):
    payload = [b"stdout"] if msg_type in PAYLOADS else []
    if inline:
        return protocol.encode(msg_type, payload, **fields)
    return [msgpack.packb({"t": msg_type, **fields}, use_bin_type=True), *payload]


# -- the properties ----------------------------------------------------------------------------
def decode_or_refuse(frames):
    """The message if it decodes (then it conforms and survives a round trip), None if refused."""
    try:
        message = protocol.decode(frames)
    except protocol.ProtocolError:
        return None
    assert conforms(message), message
    again = protocol.decode(protocol.encode(message.type, [protocol.as_bytes(p) for p in message.payload],
                                            **message.fields))
    assert again.type == message.type  # and the same fields (compared packed, where a nan equals itself):
    assert msgpack.packb(again.fields, use_bin_type=True) == msgpack.packb(message.fields, use_bin_type=True)
    return message


def split_and_decode(frames):
    try:
        parts = protocol.split(frames)
    except protocol.ProtocolError:
        return
    for part in parts:
        decode_or_refuse(part)


def valid_message_decodes(message, inline):
    msg_type, fields = message
    decoded = decode_or_refuse(frames_of(msg_type, fields, inline))
    assert decoded is not None and decoded.type == msg_type
    assert all(decoded.fields[name] == value for name, value in fields.items())


def hostile_message_is_refused_or_conforms(frames):
    decode_or_refuse(frames)
    split_and_decode(frames)


def bundle_is_refused_or_conforms(messages):
    split_and_decode(protocol.bundle(messages))  # packed when every message is one frame
    counts = msgpack.packb({"t": "bundle", "n": [len(m) for m in messages]})
    split_and_decode([counts, *[frame for message in messages for frame in message]])


def header_value_is_refused_or_conforms(value, extra):
    hostile_message_is_refused_or_conforms([msgpack.packb(value, use_bin_type=True), *extra])


# (property, its strategies, examples in the quick run)
PROPERTIES = [
    (valid_message_decodes, (valid_messages(), st.booleans()), 150),
    (hostile_message_is_refused_or_conforms, (hostile_messages(),), 200),
    (bundle_is_refused_or_conforms, (st.lists(st.one_of(
        hostile_messages(), valid_messages().map(lambda m: frames_of(*m, inline=True))), min_size=1, max_size=5),), 150),
    (header_value_is_refused_or_conforms, (msgpack_values, st.lists(st.binary(max_size=8), max_size=2)), 150),
]


def run(prop, strategies, examples, **options):
    settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck), **options)(
        given(*strategies)(prop))()


@pytest.mark.parametrize("prop, strategies, examples", PROPERTIES, ids=[p[0].__name__ for p in PROPERTIES])
def test_property(prop, strategies, examples):
    run(prop, strategies, examples)


@pytest.mark.parametrize("msg_type", sorted(protocol.SCHEMA))
def test_hostile_messages_of_each_type_are_refused_or_conform(msg_type):
    """About 10 examples per field: enough to catch a field whose check were left out, mostly (the
    soak, for sure)."""
    run(hostile_message_is_refused_or_conforms, (hostile_messages(msg_type),),
        10 * (len(protocol.SCHEMA[msg_type].fields) + 2))


@settings(max_examples=150, deadline=None)
@given(msgpack_values)
def test_any_value_as_the_type_or_a_bundle_list_is_refused_or_conforms(value):
    hostile_message_is_refused_or_conforms([msgpack.packb({"t": value}, use_bin_type=True)])
    for key in ("m", "n"):
        split_and_decode([msgpack.packb({"t": "bundle", key: value}, use_bin_type=True), b"x"])


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_any_bytes_are_refused_or_conform(data):
    hostile_message_is_refused_or_conforms([data])


def test_deep_nesting_is_refused_without_recursion_error():
    deep = b"\x91" * 100_000 + b"\xc0"  # a list in a list in a list... 100,000 deep
    task = msgpack.packb({"t": "task", "task_id": 1, "p": [b""], "env": 0})
    for frames in ([deep], [task[:-1] + b"\x91" * 5000 + b"\xc0"]):
        hostile_message_is_refused_or_conforms(frames)


# -- every node of a rich message, replaced by every hostile value: deterministic --------------
D = "0123456789abcdef0123456789abcdef"
SAMPLES = {  # one valid message of each type, with something in every list and map
    "hello": {"version": 4, "worker_id": "w", "hostname": "h", "nonce": b"n" * 32, "features": ["gpu"],
              "resources": {"cores": 4.0, "memory": 100, "disk": 1e6, "gpus": 0.0}, "coprocesses": ["c"], "cached": [D],
              "time_left": 3600.0, "peer": "tcp://h:1", "peer_curve": b"k" * 40},
    "auth": {"proof": b"p" * 32, "cached": [D]},
    "output": {"xfer": 1, "task_id": 2, "attempt": 1, "name": "d/out.txt", "size": 10, "mode": 0o644},
    "result": {"task_id": 2, "attempt": 1, "result": 0, "exit_code": 0, "measured": {"wall_time": 0.5, "start": 1.7e9},
               "limits_exceeded": {"memory": 100}, "missing": ["m.txt"], "times": {"start": 1.7e9, "end": 1.7e9},
               "temps": [["t", D, 3]], "files": [["r/result", 0o644, b"x" * 10], ["out2", 0o600, b""]]},
    "cache-update": {"added": [D], "removed": [D]},
    "bye": {"reason": "r"},
    "fetched": {"xfer": 1, "digest": D, "size": 3, "ok": False, "unreachable": True, "gone": False, "reason": "r"},
    "fetch-url": {"xfer": 1, "url": "http://h/x", "keep": True},
    "unpack": {"xfer": 1, "digest": D},
    "welcome": {"version": 4, "keepalive": 5.0, "timeout": 30.0, "proof": b"p", "peer_key": b"k"},
    "reject": {"reason": "r"},
    "reset": {"reason": "r"},
    "challenge": {"nonce": b"n"},
    "put": {"xfer": 1, "digest": D, "size": 10, "mode": 0o644, "keep": True},
    "fetch": {"xfer": 1, "digest": D, "size": 10, "mode": 0o644, "source": "tcp://h:1", "source_curve": b"k" * 40,
              "keep": True},
    "task": {"task_id": 2, "attempt": 1, "command": "c", "kind": "function", "env": {"A": "1", "B": None},
             "resources": {"cores": 1.0, "memory": 100, "disk": 0.0, "gpus": 0}, "declared": {"memory": 100},
             "inputs": [[D, "in", 0o644, True], ["", "dir", 0o755, False]], "outputs": ["out"],
             "limits": {"wall_time": 1.0}, "call": {"file": "f"}, "temps": ["out"], "unpack": ["in"],
             "files": [["function", 0o644, b"f" * 100], ["d/map", 0o400, b"m"]]},
    "remote task": {"task_id": 3, "kind": "remote", "call": {"fn_name": "f", "coprocess": "c", "payload": "{}"}},
    "kill": {"task_id": 2},
    "revoke": {"task_id": 2, "attempt": 1},
    "revoked": {"task_id": 2, "attempt": 1, "revoked": False},
    "invalidate": {"digest": D},
    "shutdown": {"reason": "r"},
    "heartbeat": {},
    "chunk": {"xfer": 1, "seq": 0, "last": True, "digest": D},
    "ack": {"xfer": 1, "seq": 0},
    "peer-hello": {"nonce": b"n"},
    "peer-get": {"digest": D, "proof": b"p"},
    "status": {"what": "tasks", "nonce": b"n", "proof": b"p"},
    "status-reply": {"data": {"a": [1]}},
}
HOSTILE = [value for values in NASTY_OF_TYPE.values() for value in values] + [
    None, True, False, [], {}, [1], {"a": 1}, b"", "ok", 1.5, 7, [[D]], {"cores": "1"}]


def with_each_node_replaced(value):
    """Copies of ``value`` with one node (itself, an element, a map's value or key) replaced by
    each hostile value in turn."""
    yield from HOSTILE
    if type(value) is list:
        for index, element in enumerate(value):
            for changed in with_each_node_replaced(element):
                yield value[:index] + [changed] + value[index + 1:]
    elif type(value) is dict:
        for key, element in value.items():
            for changed in with_each_node_replaced(element):
                yield {**value, key: changed}
            for new_key in ("", "x" * 65, "A=B", "a\0", b"k", key + " "):
                yield {(new_key if k == key else k): v for k, v in value.items()}


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_every_node_replaced_by_every_hostile_value_is_refused_or_conforms(name):
    msg_type = "task" if name == "remote task" else name
    fields = SAMPLES[name]
    assert decode_or_refuse(frames_of(msg_type, fields, inline=True)) is not None
    for field, value in list(fields.items()) + [("extra", None), ("t", msg_type)]:
        for changed in with_each_node_replaced(value):
            decode_or_refuse(frames_of(msg_type, {**fields, field: changed}, inline=True))
        decode_or_refuse(frames_of(msg_type, {k: v for k, v in fields.items() if k != field}, inline=True))


# -- soak: the same properties for a while -----------------------------------------------------
SOAK_SECONDS = {"ci": 60.0}.get(os.environ.get("WORKQUEUE_SOAK_SCALE", ""), 4.0)


@pytest.mark.slow
def test_soak_every_property():
    """The properties in turn, 30 new examples at a time (so that the last batch ends soon after the
    deadline, however busy the machine), for about SOAK_SECONDS."""
    batches = [(prop, strategies) for prop, strategies, _ in PROPERTIES] + [
        (hostile_message_is_refused_or_conforms, (hostile_messages(msg_type),)) for msg_type in sorted(protocol.SCHEMA)]
    deadline = time.monotonic() + SOAK_SECONDS
    done = 0
    while time.monotonic() < deadline:
        prop, strategies = batches[done % len(batches)]
        run(prop, strategies, 30, database=None)
        done += 1
    assert done > 0
