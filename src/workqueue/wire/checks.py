"""The checks of values on the wire, and their bounds: what ``protocol.SCHEMA`` asks of each field
beyond its type. Pure. A check is given a value of exactly its field's type and says yes or no; the
containers' checks go through every element, which is where the cost of checking lies."""
from __future__ import annotations

import re
import sys
from typing import Any, Callable, Dict, List, Optional, Set

from ..constants import RESOURCE_NAMES
from .names import is_clean_remote_name

Check = Callable[[Any], bool]

# -- bounds on values --------------------------------------------------------------------------
ID_MAX = (1 << 63) - 1  # task ids, attempts, transfer ids, chunk numbers, versions
SIZE_MAX = 1 << 62  # a file's size in bytes
MODE_MAX = 0o7777
INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1
RESOURCE_MAX = 1e15  # cores, gpus, or MB of memory or disk
NUMBER_MAP_MAX = 64  # entries in measured / limits / times
NUMBER_NAME_MAX = 64  # characters of a key in those maps
NAME_MAX = 256  # worker ids, host names, features, coprocess and function names
REASON_MAX = 4096  # bye / reject / reset / shutdown reasons
FEATURES_MAX = 64
COPROCESSES_MAX = 16
SECRET_MAX = 64  # bytes of a nonce or a proof
TASK_KINDS = ("command", "function", "remote")
STATUS_WHAT = ("queue", "workers", "tasks", "dashboard")
DIGEST_LENGTH = 32  # xxh3_128 as lowercase hex, as fastio.hash_bytes gives it

_INF = float("inf")
_LOWEST = -sys.float_info.max  # the least finite float: a bound that lets no -inf through


# -- checks: scalars ---------------------------------------------------------------------------
def _one_of(*choices: str) -> Check:
    return frozenset(choices).__contains__


def _at_most(limit: int) -> Check:
    """A str, bytes, list or dict of at most ``limit`` characters, bytes or items."""
    def check(value: Any) -> bool:
        return len(value) <= limit
    return check


def _positive_seconds(value: float) -> bool:
    return 0.0 < value < _INF


def _seconds_or_zero(value: float) -> bool:
    return 0.0 <= value < _INF


def _name(value: Any) -> bool:
    return type(value) is str and len(value) <= NAME_MAX


def _function_name(value: Any) -> bool:
    """A coprocess function: one word, as its protocol line ``<fn_name> <taskid> <len>`` needs."""
    return type(value) is str and 0 < len(value) <= NAME_MAX and value.split() == [value]


def _text(value: Any) -> bool:
    return type(value) is str


# -- checks: digests and remote names, remembered ----------------------------------------------
# Tasks name the same inputs, with the same digests, over and over: the strings found valid last
# are remembered (a set lookup costs a fifth of a regex match), a few thousand at most.
REMEMBERED_MAX = 4096
_DIGESTS_SEEN: Set[str] = set()
_NAMES_SEEN: Set[str] = set()
_hex_digest = re.compile(r"[0-9a-f]{%d}" % DIGEST_LENGTH).fullmatch


def _remember(seen: Set[str], value: str) -> bool:
    if len(seen) >= REMEMBERED_MAX:
        seen.clear()
    seen.add(value)
    return True


def _is_digest(value: Any) -> bool:
    """An xxh3_128 digest as fastio gives it: 32 lowercase hex digits."""
    if type(value) is not str:
        return False
    return value in _DIGESTS_SEEN or (_hex_digest(value) is not None and _remember(_DIGESTS_SEEN, value))


def _is_digest_or_empty(value: Any) -> bool:
    """A digest, or "" (an input that is an empty directory; a chunk that is not the last)."""
    return value == "" or _is_digest(value)


def _is_remote_name(value: Any) -> bool:
    """A clean remote name (names.is_clean_remote_name): relative, normalized, in the sandbox."""
    if type(value) is not str:
        return False
    return value in _NAMES_SEEN or (is_clean_remote_name(value) and _remember(_NAMES_SEEN, value))


# -- checks: containers ------------------------------------------------------------------------
def _list_of(item: Check, max_items: Optional[int] = None) -> Check:
    def check(value: List[Any]) -> bool:
        if max_items is not None and len(value) > max_items:
            return False
        for element in value:
            if not item(element):
                return False
        return True
    return check


def _name_list(value: List[Any]) -> bool:
    """Remote names (a task's outputs, a result's missing ones); _is_remote_name, inlined for the
    names seen before since every task has some."""
    for name in value:
        if type(name) is not str or (name not in _NAMES_SEEN and not _is_remote_name(name)):
            return False
    return True


_RESOURCES = frozenset(RESOURCE_NAMES)


def _resource_map(value: Dict[Any, Any]) -> bool:
    """Known resource names only (an unknown one is refused, not dropped: our own peers never send
    one) and amounts that are finite numbers in [0, RESOURCE_MAX]."""
    for name, amount in value.items():
        if name not in _RESOURCES:
            return False
        if type(amount) is float:
            if not 0.0 <= amount <= RESOURCE_MAX:  # False for nan too
                return False
        elif type(amount) is not int or not 0 <= amount <= RESOURCE_MAX:
            return False
    return True


def _number_map(low: float) -> Check:
    """A map of at most NUMBER_MAP_MAX short names to finite numbers >= low (ints or floats, kept
    as sent)."""
    def check(value: Dict[Any, Any]) -> bool:
        if len(value) > NUMBER_MAP_MAX:
            return False
        for key, number in value.items():
            if type(key) is not str or len(key) > NUMBER_NAME_MAX:
                return False
            if type(number) is float:
                if not low <= number < _INF:  # False for nan and the infinities
                    return False
            elif type(number) is not int or number < low:
                return False
        return True
    return check


def _env_map(value: Dict[Any, Any]) -> bool:
    """Variables a task sets (None: unsets): names that execve takes (not empty, no "=", no NUL),
    values without NUL."""
    for name, setting in value.items():
        if type(name) is not str or not name or "=" in name or "\0" in name:
            return False
        if setting is not None and (type(setting) is not str or "\0" in setting):
            return False
    return True


def _input_list(value: List[Any]) -> bool:
    """``[digest or "" (an empty directory), remote name, mode, keep in cache]`` per input."""
    for entry in value:
        if type(entry) is not list or len(entry) != 4:
            return False
        digest, name, mode, cache = entry
        if type(digest) is not str or type(name) is not str or type(mode) is not int or type(cache) is not bool:
            return False
        if not (0 <= mode <= MODE_MAX and (digest in _DIGESTS_SEEN or _is_digest_or_empty(digest))
                and (name in _NAMES_SEEN or _is_remote_name(name))):
            return False
    return True


TEMPS_MAX = 4096  # temporary files one task reports having made
# Small files carried inside a task or a result message instead of streamed beside it
# (inline_files.py): each at most INLINE_FILE_MAX bytes, at most INLINE_FILES_MAX of them holding
# INLINE_BYTES_MAX bytes in all, so that a message stays well under MAX_HEADER_BYTES.
INLINE_FILE_MAX = 64 << 10
INLINE_FILES_MAX = 16
INLINE_BYTES_MAX = 256 << 10


def _inline_files(value: List[Any]) -> bool:
    """``[remote name, mode, bytes]`` per small file, within the bounds above."""
    if len(value) > INLINE_FILES_MAX:
        return False
    total = 0
    for entry in value:
        if type(entry) is not list or len(entry) != 3:
            return False
        name, mode, data = entry
        if type(mode) is not int or type(data) is not bytes or not 0 <= mode <= MODE_MAX \
                or len(data) > INLINE_FILE_MAX or not _is_remote_name(name):
            return False
        total += len(data)
    return total <= INLINE_BYTES_MAX


CURVE_KEY_LENGTH = 40  # a CURVE public key in Z85, as ZeroMQ gives it
_Z85 = frozenset(b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#")


def _curve_key_or_empty(value: Any) -> bool:
    """A CURVE public key (40 Z85 characters), or b"" (none: the peer serves in plain text)."""
    return type(value) is bytes and (value == b"" or (len(value) == CURVE_KEY_LENGTH and _Z85.issuperset(value)))


def _peer_address(value: Any) -> bool:
    """Where a worker serves its cache to its peers: ``tcp://HOST:PORT``, or "" (it serves none)."""
    if type(value) is not str or len(value) > NAME_MAX:
        return False
    if value == "":
        return True
    host, _, port = value[len("tcp://"):].rpartition(":")
    return value.startswith("tcp://") and bool(host) and port.isdigit() and 0 < int(port) < 65536 \
        and not any(c.isspace() for c in host)


URL_MAX = 4096


def _url(value: Any) -> bool:
    """An http(s) URL a worker may download: bounded, without spaces or control characters."""
    return type(value) is str and len(value) <= URL_MAX and value.startswith(("http://", "https://")) \
        and value.isprintable() and " " not in value


def _temp_list(value: List[Any]) -> bool:
    """``[output name, digest, size]`` per temporary file a task made."""
    if len(value) > TEMPS_MAX:
        return False
    for entry in value:
        if type(entry) is not list or len(entry) != 3:
            return False
        name, digest, size = entry
        if not (_is_remote_name(name) and _is_digest(digest) and type(size) is int and 0 <= size <= SIZE_MAX):
            return False
    return True


_CALL_ENTRIES: Dict[str, Check] = {
    "file": _is_remote_name,  # a function task's pickled call, staged as this input
    "fn_name": _function_name,  # a remote task's function in the coprocess
    "coprocess": _name,  # the coprocess it needs
    "payload": _text,  # a remote task's JSON event
}


def _call_map(value: Dict[Any, Any]) -> bool:
    for key, entry in value.items():
        check = _CALL_ENTRIES.get(key)
        if check is None or not check(entry):
            return False
    return True


def _task_is_whole(fields: Dict[str, Any]) -> bool:
    """A remote task names its function and carries its event."""
    call = fields["call"]
    return fields["kind"] != "remote" or ("fn_name" in call and "payload" in call)


def _chunk_is_whole(fields: Dict[str, Any]) -> bool:
    """The last chunk, and only the last, carries the digest of the whole stream."""
    return fields["last"] is (fields["digest"] != "")
