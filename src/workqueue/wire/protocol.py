"""The wire: message types, their fields, and their encoding. Pure: no sockets, no clock, no files.

A message is a list of frames ``[header, *payload]``. The header is a msgpack map holding ``t`` (the
type) and that type's fields; payload frames carry raw bytes (file chunks, stdout) and never pass
through msgpack. ``decode`` accepts anything a stranger might send and either returns a valid
``Message`` or raises ``ProtocolError``: the loops drop and log those, and keep serving.

``SCHEMA`` says completely what is valid, nested values included: every peer is hostile, so a
message that decodes can be used as it is (no field a handler reads can be missing, of the wrong
type, unhashable, infinite, out of bounds, or a path out of a sandbox). Each field has the exact
type msgpack gives for it and, where the type is not enough, bounds or a check; a value of exactly
that type costs an identity test and a comparison or one call, and an empty list or map nothing
more. Checking everything costs a function task's decode about 12% more than checking top-level
types only did, a command task's (2 inputs, an output, an environment) about 35%
(``bench/protocol_decode.py``: pure Python pays per element).

Several messages for the same peer may travel as one *bundle*: ``[bundle-header, *message1,
*message2, ...]``, whose header lists each message's frame count. A busy loop sends what it has
queued as one bundle, so a burst of small messages costs one send and one receive, not one each.
When every message is a single frame (its payload inline), the bundle is one frame that holds them
all (a *packed* bundle): ZeroMQ then moves one part, not one per task, and pyzmq makes one frame
object on each side. ``split`` only takes a bundle apart; ``decode`` checks each part.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, List, NamedTuple, Optional, Sequence, Tuple

import msgpack

from ..constants import PROTOCOL_VERSION
from ..data.fastio import CHUNK_SIZE
from .checks import (  # noqa: F401 (the bounds are part of this module's interface)
    _LOWEST,
    COPROCESSES_MAX,
    DIGEST_LENGTH,
    FEATURES_MAX,
    ID_MAX,
    INLINE_BYTES_MAX,
    INLINE_FILE_MAX,
    INLINE_FILES_MAX,
    INT64_MAX,
    INT64_MIN,
    MODE_MAX,
    NAME_MAX,
    NUMBER_MAP_MAX,
    NUMBER_NAME_MAX,
    REASON_MAX,
    REMEMBERED_MAX,
    RESOURCE_MAX,
    SECRET_MAX,
    SIZE_MAX,
    STATUS_WHAT,
    TASK_KINDS,
    Check,
    _at_most,
    _call_map,
    _chunk_is_whole,
    _curve_key_or_empty,
    _env_map,
    _inline_files,
    _input_list,
    _is_digest,
    _is_digest_or_empty,
    _is_remote_name,
    _list_of,
    _name,
    _name_list,
    _number_map,
    _one_of,
    _peer_address,
    _positive_seconds,
    _resource_map,
    _seconds_or_zero,
    _task_is_whole,
    _temp_list,
    _url,
)

# -- sizes on the wire -------------------------------------------------------------------------
MAX_HEADER_BYTES = 1 << 20
BUNDLE = "bundle"
INLINE = "p"  # header field holding a small payload in place of its frames
INLINE_MAX = 16 << 10
PACKED_MAX = 512 << 10  # a packed bundle stays well under MAX_HEADER_BYTES
RESULT_PAYLOAD_MAX = 64 << 20  # a result's stdout, or a function task's pickled outcome
CALL_PAYLOAD_MAX = 1 << 20  # a function task's pickled call in its task message (pytask.INLINE_LIMIT)
CHUNK_MAX = CHUNK_SIZE  # one chunk of a file
FRAME_MARGIN = 1 << 20
# The largest frame a peer may legitimately send (65 MiB): a socket owner sets ZMQ_MAXMSGSIZE to
# this, so that ZeroMQ drops a larger one, and the connection, before holding it in memory.
MAX_FRAME_BYTES = max(RESULT_PAYLOAD_MAX, CALL_PAYLOAD_MAX, CHUNK_MAX, MAX_HEADER_BYTES) + FRAME_MARGIN

class ProtocolError(ValueError):
    """A message that is not one of ours: garbage, truncated, or with wrong fields."""


class Message:
    """One decoded message: its type, its fields (all of its type's, checked) and its payload."""

    __slots__ = ("type", "fields", "payload")

    def __init__(self, type: str, fields: Dict[str, Any], payload: Optional[List[Any]] = None) -> None:
        self.type = type
        self.fields = fields
        self.payload = [] if payload is None else payload

    def __getitem__(self, name: str) -> Any:
        return self.fields[name]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Message) and (self.type, self.fields, self.payload) == \
            (other.type, other.fields, other.payload)

    def __repr__(self) -> str:
        return f"Message({self.type!r}, {self.fields!r}, {self.payload!r})"


# -- the schema --------------------------------------------------------------------------------
class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()  # the default of a field that must be present
_MISSING = object()



class Field(NamedTuple):
    """One header field: the exact type msgpack gives for it (a tuple: any of these types), its
    default, and what else its value must satisfy: ``bounds`` (inclusive, for an int or a bool) or
    a ``check``. A check is only ever given a value of exactly ``kind`` (after an int is turned into
    the float a ``float`` field declares), so it may rely on that; and it is not called on an empty
    value (``""``, ``[]``, ``{}``...) when it would accept one."""

    kind: Any
    default: Any = REQUIRED
    check: Optional[Check] = None
    bounds: Optional[Tuple[Any, Any]] = None


class Spec(NamedTuple):
    """One message type: its fields, how many payload frames it has and how large each may be,
    and a check across fields (called once every field is valid). The last three members are the
    fields sorted by ``_spec`` for ``_checked``: those with bounds, those with only a type, and
    those with a check (with whether that check accepts the empty value)."""

    fields: Dict[str, Field]
    payload_count: int = 0
    payload_max: int = 0
    check: Optional[Callable[[Dict[str, Any]], bool]] = None
    bounded: Tuple[Tuple[str, Any, Any, Any], ...] = ()
    typed: Tuple[Tuple[str, Any], ...] = ()
    checked: Tuple[Tuple[str, Any, Check, bool], ...] = ()


def _spec(fields: Dict[str, Field], payload_count: int = 0, payload_max: int = 0,
          check: Optional[Callable[[Dict[str, Any]], bool]] = None) -> Spec:
    bounded = tuple((name, f.kind, *f.bounds) for name, f in fields.items() if f.bounds is not None)
    typed = tuple((name, f.kind) for name, f in fields.items() if f.bounds is None and f.check is None)
    checked = tuple((name, f.kind, f.check, _accepts_empty(f)) for name, f in fields.items() if f.check is not None)
    return Spec(fields, payload_count, payload_max, check, bounded, typed, checked)


def _accepts_empty(f: Field) -> bool:
    """Whether the empty value of the field's type ("", 0, [], {}...) passes its check."""
    return type(f.kind) is type and bool(f.check(f.kind()))


# -- the messages ------------------------------------------------------------------------------
_ID = Field(int, REQUIRED, bounds=(0, ID_MAX))
_SIZE = Field(int, REQUIRED, bounds=(0, SIZE_MAX))
_MODE = Field(int, 0o644, bounds=(0, MODE_MAX))
_REASON = Field(str, "", _at_most(REASON_MAX))
_SECRET = Field(bytes, b"", _at_most(SECRET_MAX))
_ANY_NUMBERS = _number_map(_LOWEST)
_NON_NEGATIVE_NUMBERS = _number_map(0.0)

SCHEMA: Dict[str, Spec] = {
    # worker -> manager
    "hello": _spec({
        "version": _ID,
        "worker_id": Field(str, REQUIRED, _at_most(NAME_MAX)),
        "hostname": Field(str, "", _at_most(NAME_MAX)),
        "resources": Field(dict, REQUIRED, _resource_map),
        "nonce": _SECRET,
        "features": Field(list, [], _list_of(_name, FEATURES_MAX)),
        "coprocesses": Field(list, [], _list_of(_name, COPROCESSES_MAX)),
        "cached": Field(list, [], _list_of(_is_digest)),  # read only by a master without a password
        "time_left": Field(float, 0.0, _seconds_or_zero),  # of its --wall-time; 0: no limit
        "peer": Field(str, "", _peer_address),  # where it serves its cache to other workers
        "peer_curve": Field(bytes, b"", _curve_key_or_empty),  # its peer server's CURVE public key
    }),
    "auth": _spec({
        "proof": Field(bytes, REQUIRED, _at_most(SECRET_MAX)),
        "cached": Field(list, [], _list_of(_is_digest)),  # the worker's cache, once it proves itself
    }),
    "output": _spec({
        "xfer": _ID,
        "task_id": _ID,
        "attempt": _ID,
        "name": Field(str, REQUIRED, _is_remote_name),
        "size": _SIZE,
        "mode": _MODE,
    }),
    "result": _spec({
        "task_id": _ID,
        "attempt": _ID,
        "result": Field(int, REQUIRED),  # any int: an unknown code reads as Result.UNKNOWN
        "exit_code": Field(int, -1, bounds=(INT64_MIN, INT64_MAX)),
        "measured": Field(dict, {}, _ANY_NUMBERS),
        "limits_exceeded": Field(dict, {}, _ANY_NUMBERS),
        "missing": Field(list, [], _name_list),
        "times": Field(dict, {}, _NON_NEGATIVE_NUMBERS),
        "temps": Field(list, [], _temp_list),  # temporary outputs kept in the worker's cache
        "files": Field(list, [], _inline_files),  # small outputs, carried here instead of streamed
    }, 1, RESULT_PAYLOAD_MAX),  # payload: stdout, or a function task's pickled outcome
    "cache-update": _spec({
        "added": Field(list, [], _list_of(_is_digest)),
        "removed": Field(list, [], _list_of(_is_digest)),
    }),
    "bye": _spec({"reason": _REASON}),
    "revoked": _spec({"task_id": _ID, "attempt": _ID, "revoked": Field(bool, REQUIRED)}),
    "fetched": _spec({  # a ``fetch`` or ``fetch-url`` done (the file is in the cache) or failed
        "xfer": _ID,
        "digest": Field(str, "", _is_digest_or_empty),
        "size": Field(int, 0, bounds=(0, SIZE_MAX)),  # of a downloaded file
        "ok": Field(bool, False),
        "unreachable": Field(bool, False),  # the source did not answer in time
        "gone": Field(bool, False),  # the source does not hold the file
        "reason": _REASON,
    }),
    # manager -> worker
    "welcome": _spec({
        "version": _ID,
        "keepalive": Field(float, 5.0, _positive_seconds),
        "timeout": Field(float, 30.0, _positive_seconds),
        "proof": _SECRET,  # the manager's proof, sent only once the worker has proved itself
        "peer_key": _SECRET,  # what workers prove to each other with, when the master has no password
    }),
    "reject": _spec({"reason": Field(str, REQUIRED, _at_most(REASON_MAX))}),
    "reset": _spec({"reason": _REASON}),
    "challenge": _spec({"nonce": Field(bytes, REQUIRED, _at_most(SECRET_MAX))}),
    "put": _spec({
        "xfer": _ID,
        "digest": Field(str, REQUIRED, _is_digest),
        "size": _SIZE,
        "mode": _MODE,
        "keep": Field(bool, False),  # a cached input: the worker says when it holds it (cache-update)
    }),
    "fetch": _spec({  # get a file from another worker (``source``), not from the master
        "xfer": _ID,
        "digest": Field(str, REQUIRED, _is_digest),
        "size": _SIZE,
        "mode": _MODE,
        "source": Field(str, REQUIRED, _peer_address),
        "source_curve": Field(bytes, b"", _curve_key_or_empty),  # the source's CURVE public key
        "keep": Field(bool, False),
    }),
    "fetch-url": _spec({  # download a file into the cache; the master learns its digest in ``fetched``
        "xfer": _ID,
        "url": Field(str, REQUIRED, _url),
        "keep": Field(bool, False),
    }),
    "unpack": _spec({  # unpack a cached archive once (a ``fetched`` says when it is done)
        "xfer": _ID,
        "digest": Field(str, REQUIRED, _is_digest),
    }),
    "task": _spec({
        "task_id": _ID,
        "attempt": Field(int, 1, bounds=(0, ID_MAX)),
        "command": Field(str, ""),  # as long as the header allows
        "kind": Field(str, "command", _one_of(*TASK_KINDS)),
        "env": Field(dict, {}, _env_map),
        "resources": Field(dict, {}, _resource_map),
        "declared": Field(dict, {}, _resource_map),
        "inputs": Field(list, [], _input_list),
        "outputs": Field(list, [], _name_list),
        "limits": Field(dict, {}, _NON_NEGATIVE_NUMBERS),
        "call": Field(dict, {}, _call_map),
        "temps": Field(list, [], _name_list),  # outputs kept in the worker's cache, not sent back
        "unpack": Field(list, [], _name_list),  # inputs that are archives: the task sees them unpacked
        "files": Field(list, [], _inline_files),  # small uncached inputs, carried here instead of streamed
    }, 1, CALL_PAYLOAD_MAX, _task_is_whole),  # payload: a function task's pickled call when small
    "kill": _spec({"task_id": _ID}),
    "revoke": _spec({"task_id": _ID, "attempt": _ID}),  # a queued task: give it back if not started
    "invalidate": _spec({"digest": Field(str, REQUIRED, _is_digest)}),
    "shutdown": _spec({"reason": _REASON}),
    # both ways
    "heartbeat": _spec({}),
    "chunk": _spec({
        "xfer": _ID,
        "seq": _ID,
        "last": Field(bool, False),
        "digest": Field(str, "", _is_digest_or_empty),
    }, 1, CHUNK_MAX, _chunk_is_whole),
    "ack": _spec({"xfer": _ID, "seq": _ID}),
    # worker <-> worker (worker.peers): a peer says hello, gets a challenge, proves and asks for one
    # file, and gets a ``put`` and its ``chunk``s, or a ``reject``
    "peer-hello": _spec({"nonce": Field(bytes, REQUIRED, _at_most(SECRET_MAX))}),
    "peer-get": _spec({
        "digest": Field(str, REQUIRED, _is_digest),
        "proof": Field(bytes, REQUIRED, _at_most(SECRET_MAX)),
    }),
    # status clients <-> manager
    "status": _spec({
        "what": Field(str, "queue", _one_of(*STATUS_WHAT)),
        "nonce": _SECRET,
        "proof": _SECRET,
    }),
    "status-reply": _spec({"data": Field((dict, list), REQUIRED)}),  # for a person: not checked deeper
}


# -- encoding ----------------------------------------------------------------------------------
def encode(msg_type: str, payload: Sequence[Any] = (), **fields: Any) -> List[Any]:
    """Frames for one message; ``payload`` items go out as their own frames, untouched, except
    small ``bytes``, which ride in the header (a frame costs more to send than a small copy)."""
    if msg_type not in SCHEMA:
        raise ValueError(f"unknown message type {msg_type!r}")
    fields["t"] = msg_type
    if payload and all(type(item) is bytes for item in payload) and sum(map(len, payload)) <= INLINE_MAX:
        fields[INLINE] = list(payload)
        return [msgpack.packb(fields, use_bin_type=True)]
    return [msgpack.packb(fields, use_bin_type=True), *payload]


def hello(worker_id: str, hostname: str, resources: Dict[str, float], **extra: Any) -> List[Any]:
    return encode("hello", version=PROTOCOL_VERSION, worker_id=worker_id, hostname=hostname,
                  resources=resources, **extra)


def bundle(messages: Sequence[List[Any]]) -> List[Any]:
    """One message of several: send it like any other, and ``split`` it on arrival."""
    if len(messages) == 1:
        return list(messages[0])
    if all(len(m) == 1 and type(m[0]) is bytes for m in messages) and \
            sum(len(m[0]) for m in messages) <= PACKED_MAX:
        return [msgpack.packb({"t": BUNDLE, "m": [m[0] for m in messages]}, use_bin_type=True)]
    header = msgpack.packb({"t": BUNDLE, "n": [len(m) for m in messages]}, use_bin_type=True)
    return [header, *(frame for message in messages for frame in message)]


# -- decoding ----------------------------------------------------------------------------------
def split(frames: Sequence[Any]) -> List[Sequence[Any]]:
    """The messages in what arrived: itself, or the parts of a bundle. Raises ProtocolError for a
    bundle whose counts do not add up; the parts themselves are checked by ``decode``."""
    if not frames:
        raise ProtocolError("empty message")
    header = _header_bytes(frames[0])
    if b"bundle" not in header[:16]:
        return [frames]
    fields = _unpack(header)
    if type(fields) is not dict or fields.get("t") != BUNDLE:
        return [frames]
    packed = fields.get("m")
    if packed is not None:
        if len(frames) != 1 or type(packed) is not list or not packed or \
                not all(type(item) is bytes for item in packed):
            raise ProtocolError("packed bundle: not a list of messages in one frame")
        return [[item] for item in packed]
    counts = fields.get("n")
    if type(counts) is not list or not all(type(n) is int and n > 0 for n in counts) \
            or sum(counts) != len(frames) - 1:
        raise ProtocolError("bundle: frame counts do not match the frames")
    parts, start = [], 1
    for count in counts:
        parts.append(frames[start:start + count])
        start += count
    return parts


def decode(frames: Sequence[Any]) -> Message:
    """Parse and validate; raise ProtocolError, and nothing else, for anything not in SCHEMA."""
    if not frames:
        raise ProtocolError("empty message")
    header = frames[0]
    if type(header) is not bytes:
        header = _header_bytes(header)
    if len(header) > MAX_HEADER_BYTES:  # _unpack's lines, inlined: a call costs 3% of a decode
        raise ProtocolError(f"header of {len(header)} bytes exceeds {MAX_HEADER_BYTES}")
    try:
        fields = msgpack.unpackb(header, raw=False, strict_map_key=True)
    except Exception as error:  # msgpack raises several unrelated types on garbage
        raise ProtocolError(f"undecodable header: {error.__class__.__name__}") from None
    if type(fields) is not dict:
        raise ProtocolError("header is not a map")
    msg_type = fields.pop("t", None)
    spec = SCHEMA.get(msg_type) if type(msg_type) is str else None
    if spec is None:
        raise ProtocolError(f"unknown message type {_shown(msg_type)}")
    return _checked(msg_type, spec, fields, frames)


def _unpack(header: bytes) -> Any:
    if len(header) > MAX_HEADER_BYTES:
        raise ProtocolError(f"header of {len(header)} bytes exceeds {MAX_HEADER_BYTES}")
    try:
        return msgpack.unpackb(header, raw=False, strict_map_key=True)
    except Exception as error:
        raise ProtocolError(f"undecodable header: {error.__class__.__name__}") from None


def _checked(msg_type: str, spec: Spec, fields: Dict[str, Any], frames: Sequence[Any]) -> Message:
    """The message, once its payload and its fields are checked; the fields in place: defaults
    filled in, unknown names dropped.

    A value of exactly the declared type (what msgpack gives for our own messages) costs an
    identity test and its bounds or its check (none for an empty list or map); anything else goes
    the slow way, to be converted, defaulted or refused. One loop per kind of rule, in one
    function, is the fastest way found (bench/protocol_decode.py)."""
    declared, count, limit, whole_check, bounded, typed, checked = spec
    inline = fields.pop(INLINE, None)
    if inline is None:
        payload = list(frames[1:])  # frames from ZeroMQ: bytes or zmq.Frame
    elif type(inline) is list and len(frames) == 1:
        payload = inline
    else:
        raise ProtocolError(f"{msg_type}: inline payload is not a list, or not alone")
    if len(payload) != count:
        raise ProtocolError(f"{msg_type}: expected {count} payload frames, got {len(payload)}")
    try:
        for item in payload:
            if type(item) is not bytes and inline is not None or len(item) > limit:
                raise ProtocolError(f"{msg_type}: a payload that is not bytes, or of more than {limit} bytes")
    except TypeError:  # a frame without a length: not from ZeroMQ
        raise ProtocolError(f"{msg_type}: a payload frame of type {type(item).__name__}") from None
    get = fields.get
    for name, kind, low, high in bounded:
        value = get(name, _MISSING)
        if type(value) is not kind or not low <= value <= high:
            fields[name] = _slow_field(msg_type, name, declared[name], value)
    for name, kind in typed:
        value = get(name, _MISSING)
        if type(value) is not kind:
            fields[name] = _slow_field(msg_type, name, declared[name], value)
    for name, kind, check, empty_ok in checked:
        value = get(name, _MISSING)
        if type(value) is not kind or (value or not empty_ok) and not check(value):
            fields[name] = _slow_field(msg_type, name, declared[name], value)
    if len(fields) > len(declared):
        for name in [name for name in fields if name not in declared]:
            del fields[name]
    if whole_check is not None and not whole_check(fields):
        raise ProtocolError(f"{msg_type}: fields that do not belong together")
    return Message(msg_type, fields, payload)


def _slow_field(msg_type: str, name: str, f: Field, value: Any) -> Any:
    """A field that is missing, of a type to convert (an int for a float), or invalid."""
    if value is _MISSING:
        if f.default is REQUIRED:
            raise ProtocolError(f"{msg_type}: missing field {name!r}")
        return f.default.copy() if type(f.default) in (dict, list) else f.default
    if f.kind is float and type(value) is int:
        value = float(value)  # any msgpack int fits in a float
    elif type(value) is not f.kind and not (type(f.kind) is tuple and type(value) in f.kind):
        raise ProtocolError(f"{msg_type}: field {name!r} has type {type(value).__name__}")
    if not _is_valid(f, value):
        raise ProtocolError(f"{msg_type}: field {name!r} has an invalid value {_shown(value)}")
    return value


def _is_valid(f: Field, value: Any) -> bool:
    """Whether ``value``, of exactly ``f.kind``, satisfies ``f``'s bounds and check."""
    if f.bounds is not None and not f.bounds[0] <= value <= f.bounds[1]:
        return False
    return f.check is None or f.check(value)


def _header_bytes(frame: Any) -> bytes:
    """A header frame's bytes: itself, or a received zmq.Frame's (a copy; headers are small)."""
    if type(frame) is bytes:
        return frame
    data = getattr(frame, "bytes", None)  # zmq.Frame
    if type(data) is bytes:
        return data
    if isinstance(frame, (bytes, bytearray, memoryview)):
        return bytes(frame)
    raise ProtocolError(f"a frame of type {type(frame).__name__}")


def _shown(value: Any) -> str:
    """A refused value for a log line: short and cheap whatever a stranger sent (a container is
    described, not printed: it may be large, or nested deeper than repr can recurse)."""
    if type(value) in (list, dict):
        return f"<{type(value).__name__} of {len(value)}>"
    if type(value) in (str, bytes):
        return repr(value[:60]) + ("..." if len(value) > 60 else "")
    return repr(value)[:60]


# -- payload access ----------------------------------------------------------------------------
def as_buffer(frame: Any) -> Any:
    """A payload item's bytes without a copy: a received frame's buffer, or the bytes themselves."""
    return getattr(frame, "buffer", frame)


def as_bytes(frame: Any) -> bytes:
    if isinstance(frame, bytes):
        return frame
    buffer = getattr(frame, "bytes", None)  # zmq.Frame
    if buffer is not None:
        return buffer
    return bytes(frame)
