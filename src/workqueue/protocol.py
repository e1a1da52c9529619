"""The wire: message types, their fields, and their encoding. Pure: no sockets, no clock, no files.

A message is a list of frames ``[header, *payload]``. The header is a msgpack map holding ``t`` (the
type) and that type's fields; payload frames carry raw bytes (file chunks, stdout) and never pass
through msgpack. ``decode`` accepts anything a stranger might send and either returns a valid
``Message`` or raises ``ProtocolError``: the loops drop and log those, and keep serving.

Several messages for the same peer may travel as one *bundle*: ``[bundle-header, *message1,
*message2, ...]``, whose header lists each message's frame count. A busy loop sends what it has
queued as one bundle, so a burst of small messages costs one send and one receive, not one each.
When every message is a single frame (its payload inline), the bundle is one frame that holds them
all (a *packed* bundle): ZeroMQ then moves one part, not one per task, and pyzmq makes one frame
object on each side.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Sequence, Tuple

import msgpack

from .constants import PROTOCOL_VERSION

MAX_HEADER_BYTES = 1 << 20
BUNDLE = "bundle"
INLINE = "p"  # header field holding a small payload in place of its frames
INLINE_MAX = 16 << 10
PACKED_MAX = 512 << 10  # a packed bundle stays well under MAX_HEADER_BYTES

_REQUIRED = object()

# type -> ({field: (python type(s), default or _REQUIRED)}, number of payload frames)
SCHEMA: Dict[str, Tuple[Dict[str, Tuple[Any, Any]], int]] = {
    # worker -> manager
    "hello": ({
        "version": (int, _REQUIRED),
        "worker_id": (str, _REQUIRED),
        "hostname": (str, ""),
        "resources": (dict, _REQUIRED),
        "nonce": (bytes, b""),
        "features": (list, []),
        "coprocesses": (list, []),
    }, 0),
    "auth": ({"proof": (bytes, _REQUIRED)}, 0),
    "output": ({
        "xfer": (int, _REQUIRED),
        "task_id": (int, _REQUIRED),
        "attempt": (int, _REQUIRED),
        "name": (str, _REQUIRED),
        "size": (int, _REQUIRED),
        "mode": (int, 0o644),
    }, 0),
    "result": ({
        "task_id": (int, _REQUIRED),
        "attempt": (int, _REQUIRED),
        "result": (int, _REQUIRED),
        "exit_code": (int, -1),
        "measured": (dict, {}),
        "limits_exceeded": (dict, {}),
        "missing": (list, []),
        "times": (dict, {}),
    }, 1),  # payload: stdout, or a function task's pickled outcome
    "cache-update": ({"added": (list, []), "removed": (list, [])}, 0),
    "bye": ({"reason": (str, "")}, 0),
    # manager -> worker
    "welcome": ({
        "version": (int, _REQUIRED),
        "keepalive": (float, 5.0),
        "timeout": (float, 30.0),
        "proof": (bytes, b""),  # the manager's proof, sent only once the worker has proved itself
    }, 0),
    "reject": ({"reason": (str, _REQUIRED)}, 0),
    "reset": ({"reason": (str, "")}, 0),
    "challenge": ({"nonce": (bytes, _REQUIRED)}, 0),
    "put": ({
        "xfer": (int, _REQUIRED),
        "digest": (str, _REQUIRED),
        "size": (int, _REQUIRED),
        "mode": (int, 0o644),
    }, 0),
    "task": ({
        "task_id": (int, _REQUIRED),
        "attempt": (int, 1),
        "command": (str, ""),
        "kind": (str, "command"),
        "env": (dict, {}),
        "resources": (dict, {}),
        "declared": (dict, {}),
        "inputs": (list, []),
        "outputs": (list, []),
        "limits": (dict, {}),
        "call": (dict, {}),
    }, 1),  # payload: a function task's pickled call when small (empty otherwise)
    "kill": ({"task_id": (int, _REQUIRED)}, 0),
    "invalidate": ({"digest": (str, _REQUIRED)}, 0),
    "shutdown": ({"reason": (str, "")}, 0),
    # both ways
    "heartbeat": ({}, 0),
    "chunk": ({
        "xfer": (int, _REQUIRED),
        "seq": (int, _REQUIRED),
        "last": (bool, False),
        "digest": (str, ""),
    }, 1),
    "ack": ({"xfer": (int, _REQUIRED), "seq": (int, _REQUIRED)}, 0),
    # status clients <-> manager
    "status": ({"what": (str, "queue"), "nonce": (bytes, b""), "proof": (bytes, b"")}, 0),
    "status-reply": ({"data": ((dict, list), _REQUIRED)}, 0),
}


class ProtocolError(ValueError):
    """A message that is not one of ours: garbage, truncated, or with wrong fields."""


@dataclass
class Message:
    type: str
    fields: Dict[str, Any]
    payload: List[Any] = field(default_factory=list)

    def __getitem__(self, name: str) -> Any:
        return self.fields[name]


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


def bundle(messages: Sequence[List[Any]]) -> List[Any]:
    """One message of several: send it like any other, and ``split`` it on arrival."""
    if len(messages) == 1:
        return list(messages[0])
    if all(len(m) == 1 and type(m[0]) is bytes for m in messages) and \
            sum(len(m[0]) for m in messages) <= PACKED_MAX:
        return [msgpack.packb({"t": BUNDLE, "m": [m[0] for m in messages]}, use_bin_type=True)]
    header = msgpack.packb({"t": BUNDLE, "n": [len(m) for m in messages]}, use_bin_type=True)
    return [header, *(frame for message in messages for frame in message)]


def split(frames: Sequence[Any]) -> List[Sequence[Any]]:
    """The messages in what arrived: itself, or the parts of a bundle. Raises ProtocolError for a
    bundle whose counts do not add up; the parts themselves are checked by ``decode``."""
    if not frames:
        raise ProtocolError("empty message")
    header = _as_bytes(frames[0])
    if b"bundle" not in header[:16]:
        return [frames]
    try:
        fields = msgpack.unpackb(header, raw=False, strict_map_key=True)
    except Exception as error:
        raise ProtocolError(f"undecodable header: {error.__class__.__name__}") from None
    if not isinstance(fields, dict) or fields.get("t") != BUNDLE:
        return [frames]
    packed = fields.get("m")
    if packed is not None:
        if len(frames) != 1 or not isinstance(packed, list) or not packed or \
                not all(type(item) is bytes for item in packed):
            raise ProtocolError("packed bundle: not a list of messages in one frame")
        return [[item] for item in packed]
    counts = fields.get("n")
    if not isinstance(counts, list) or not all(type(n) is int and n > 0 for n in counts) \
            or sum(counts) != len(frames) - 1:
        raise ProtocolError("bundle: frame counts do not match the frames")
    parts, start = [], 1
    for count in counts:
        parts.append(frames[start:start + count])
        start += count
    return parts


def hello(worker_id: str, hostname: str, resources: Dict[str, float], **extra: Any) -> List[Any]:
    return encode("hello", version=PROTOCOL_VERSION, worker_id=worker_id, hostname=hostname,
                  resources=resources, **extra)


def decode(frames: Sequence[Any]) -> Message:
    """Parse and validate; raise ProtocolError for anything malformed."""
    if not frames:
        raise ProtocolError("empty message")
    header = _as_bytes(frames[0])
    if len(header) > MAX_HEADER_BYTES:
        raise ProtocolError(f"header of {len(header)} bytes exceeds {MAX_HEADER_BYTES}")
    try:
        fields = msgpack.unpackb(header, raw=False, strict_map_key=True)
    except Exception as error:  # msgpack raises several unrelated types on garbage
        raise ProtocolError(f"undecodable header: {error.__class__.__name__}") from None
    if not isinstance(fields, dict):
        raise ProtocolError("header is not a map")
    msg_type = fields.pop("t", None)
    if msg_type not in SCHEMA:
        raise ProtocolError(f"unknown message type {msg_type!r}")
    spec, payload_count = SCHEMA[msg_type]
    payload = list(frames[1:])
    inline = fields.pop(INLINE, None)
    if inline is not None and not payload:
        if not isinstance(inline, list) or not all(isinstance(item, bytes) for item in inline):
            raise ProtocolError(f"{msg_type}: inline payload is not a list of bytes")
        payload = inline
    if len(payload) != payload_count:
        raise ProtocolError(f"{msg_type}: expected {payload_count} payload frames, got {len(payload)}")
    return Message(msg_type, _check_fields(msg_type, spec, fields), payload)


def _check_fields(msg_type: str, spec: Dict[str, Tuple[Any, Any]], fields: Dict[str, Any]) -> Dict[str, Any]:
    """``fields``, checked in place: defaults filled in, unknown names dropped. A value of exactly
    the declared type (what msgpack gives for our own messages) passes on one identity test."""
    for name, (kind, default) in spec.items():
        value = fields.get(name, _REQUIRED)
        if type(value) is kind:
            continue
        if value is _REQUIRED:
            if default is _REQUIRED:
                raise ProtocolError(f"{msg_type}: missing field {name!r}")
            fields[name] = default.copy() if isinstance(default, (dict, list)) else default
            continue
        if kind is float and type(value) is int:
            fields[name] = float(value)
        elif not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise ProtocolError(f"{msg_type}: field {name!r} has type {type(value).__name__}")
    if len(fields) > len(spec):
        for name in [name for name in fields if name not in spec]:
            del fields[name]
    return fields


def as_buffer(frame: Any) -> Any:
    """A payload item's bytes without a copy: a received frame's buffer, or the bytes themselves."""
    return getattr(frame, "buffer", frame)


def as_bytes(frame: Any) -> bytes:
    return _as_bytes(frame)


def _as_bytes(frame: Any) -> bytes:
    if isinstance(frame, bytes):
        return frame
    buffer = getattr(frame, "bytes", None)  # zmq.Frame
    if buffer is not None:
        return buffer
    return bytes(frame)
