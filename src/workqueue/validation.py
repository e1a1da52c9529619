"""Argument checkers: a wrong argument is refused where the user passed it, not later in a thread.

Each checker returns the value (numbers as plain ``int``/``float``, which the wire format carries) or
raises ``TypeError`` (wrong kind of value) or ``ValueError`` (right kind, wrong value), with a message
naming the call, the argument and what it got: ``Task: memory must be a finite number >= 0 (MB), got
'abc'``. The native API, the CCTools skin and the worker's command line all use these, so each rule
and its wording exist once. Pure: no I/O, no state.
"""
from __future__ import annotations

import math
import numbers
import os
from collections.abc import Iterable, Mapping
from typing import Any, Dict, NoReturn, Optional, Tuple, Type, Union

from .constants import RESOURCE_NAMES
from .files import File, as_file

Number = Union[int, float]
PortSpec = Union[int, Tuple[int, int]]

ENV_MAX_BYTES = 1 << 20  # the whole environment a task sets: far below what execve takes with the rest
ENV_VARIABLE_MAX_BYTES = (128 << 10) - 1  # one NAME=value string: Linux's MAX_ARG_STRLEN, less its NUL
_RESOURCE_SET = frozenset(RESOURCE_NAMES)
RESOURCE_UNITS = {"memory": " (MB)", "disk": " (MB)"}
_SHOWN_MAX = 60  # characters of a refused value quoted in a message
_PLAIN_NUMBERS = (int, float)  # exact types: tested first, as ABC checks cost a microsecond a task


# -- the message --------------------------------------------------------------------------------
def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _SHOWN_MAX else text[:_SHOWN_MAX] + f"... ({len(text)} characters)"


def refuse(error: Type[Exception], where: str, name: str, rule: str, value: Any) -> NoReturn:
    """Raise ``error`` saying that ``where``'s ``name`` must be ``rule`` and what it got instead."""
    prefix = f"{where}: " if where else ""
    raise error(f"{prefix}{name} must be {rule}, got {_shown(value)}")


# -- numbers ------------------------------------------------------------------------------------
def is_number(value: Any) -> bool:
    """A real number; ``True``/``False`` are not, though Python counts them as ints."""
    return type(value) in _PLAIN_NUMBERS or (isinstance(value, numbers.Real) and not isinstance(value, bool))


def _plain(value: numbers.Real) -> Optional[Number]:
    """``value`` as a plain int or float (numpy scalars, Fractions...), or None if not finite.
    Integers beyond 64 bits become floats: the wire format carries no larger ones."""
    if isinstance(value, numbers.Integral) and -(1 << 63) <= value < (1 << 63):
        return int(value)
    try:
        as_float = float(value)
    except OverflowError:
        return None
    return as_float if math.isfinite(as_float) else None


def number(where: str, name: str, value: Any, *, above: Optional[float] = None,
           at_least: Optional[float] = None, unit: str = "") -> Number:
    """A finite real number, optionally ``> above`` or ``>= at_least``."""
    kind = type(value)
    if kind is int and -(1 << 63) <= value < (1 << 63):
        plain = value  # the common cases first: this runs several times for each task
    elif kind is float:
        plain = value if math.isfinite(value) else None
    else:
        plain = _plain(value) if is_number(value) else None
    if plain is None or (above is not None and not plain > above) or (at_least is not None and not plain >= at_least):
        rule = "a finite number" + (f" > {above:g}" if above is not None else "") + \
            (f" >= {at_least:g}" if at_least is not None else "") + unit
        refuse(TypeError if not is_number(value) else ValueError, where, name, rule, value)
    return plain


def resource(where: str, name: str, value: Any) -> Optional[Number]:
    """A declared resource: None (not declared) or a finite number >= 0 (cores, gpus; MB for memory, disk)."""
    if value is None:
        return None
    return number(where, name, value, at_least=0, unit=RESOURCE_UNITS.get(name, ""))


def resources(where: str, declared: Mapping[str, Any]) -> Dict[str, Optional[Number]]:
    """Declared resources by name; only cores, memory, disk and gpus exist."""
    if type(declared) is not dict and not isinstance(declared, Mapping):
        refuse(TypeError, where, "resources", "a mapping of resource names to numbers", declared)
    checked: Dict[str, Optional[Number]] = {}
    for name, value in declared.items():
        if name not in _RESOURCE_SET:
            refuse(ValueError, where, "a resource", "one of " + ", ".join(RESOURCE_NAMES), name)
        checked[name] = None if value is None else resource(where, name, value)
    return checked


def seconds(where: str, name: str, value: Any) -> Optional[Number]:
    """A time limit or instant: None (none) or a finite number of seconds > 0."""
    if value is None:
        return None
    return number(where, name, value, above=0, unit=" (seconds)")


def count(where: str, name: str, value: Any) -> int:
    """A whole number >= 0 (retries, workers); floats are refused, even 3.0."""
    if type(value) is not int and (not isinstance(value, numbers.Integral) or isinstance(value, bool)):
        refuse(TypeError, where, name, "a whole number >= 0", value)
    if value < 0:
        refuse(ValueError, where, name, "a whole number >= 0", value)
    return int(value)


def task_id(where: str, value: Any) -> int:
    """A task id, as ``submit`` returned it."""
    if not isinstance(value, numbers.Integral) or isinstance(value, bool):
        refuse(TypeError, where, "task_id", "a task id (an int, as submit returned it)", value)
    return int(value)


def wait_timeout(where: str, value: Any) -> Optional[float]:
    """Seconds to wait; None, a negative number (CCTools' -1) or infinity mean for ever (None)."""
    rule = "a number of seconds (None, or a negative number, to wait for ever)"
    if value is None:
        return None
    if not is_number(value):
        refuse(TypeError, where, "timeout", rule, value)
    plain = _plain(value)
    if plain is None and value != value:
        refuse(ValueError, where, "timeout", rule, value)
    return None if plain is None or plain < 0 else float(plain)


def port(where: str, value: Any) -> PortSpec:
    """A TCP port (0: any free one), or a ``(low, high)`` range of ports to try."""
    rule = "a port number from 0 to 65535, or a (low, high) pair with 1 <= low <= high <= 65535"
    if isinstance(value, (tuple, list)):
        if len(value) != 2 or not all(isinstance(p, numbers.Integral) and not isinstance(p, bool) for p in value):
            refuse(TypeError, where, "port", rule, value)
        low, high = int(value[0]), int(value[1])
        if not 1 <= low <= high <= 65535:
            refuse(ValueError, where, "port", rule, value)
        return low, high
    if not isinstance(value, numbers.Integral) or isinstance(value, bool):
        refuse(TypeError, where, "port", rule, value)
    if not 0 <= value <= 65535:
        refuse(ValueError, where, "port", rule, value)
    return int(value)


# -- text ---------------------------------------------------------------------------------------
def text(where: str, name: str, value: Any, *, allow_none: bool = False) -> Optional[str]:
    """A str that can travel: UTF-8 encodable (no lone surrogates), no NUL character."""
    if type(value) is str and value.isascii() and "\0" not in value:
        return value  # the common case, decided at once
    if value is None and allow_none:
        return None
    rule = "a str" + (" or None" if allow_none else "")
    if not isinstance(value, str):
        refuse(TypeError, where, name, rule, value)
    if "\0" in value:
        refuse(ValueError, where, name, rule + " without NUL characters", value)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        refuse(ValueError, where, name, rule + " of valid Unicode (no lone surrogates)", value)
    return value


def one_of(where: str, name: str, value: Any, choices: Iterable[Any]) -> Any:
    """One of a few given values (flags, modes)."""
    choices = tuple(choices)
    if isinstance(value, bool) or value not in choices:
        refuse(ValueError, where, name, "one of " + ", ".join(repr(c) for c in choices), value)
    return value


def command(where: str, value: Any) -> str:
    """A shell command line (``/bin/sh -c``); "" runs nothing."""
    return text(where, "command", value)


def path(where: str, name: str, value: Any, *, allow_none: bool = False) -> Optional[str]:
    """A local path: a str or ``os.PathLike`` naming it with a str, returned as a str. Any bytes
    the file system allows may be in it (lone surrogates too), but no NUL."""
    if value is None and allow_none:
        return None
    rule = "a non-empty path (str or os.PathLike)" + (" or None" if allow_none else "")
    if not isinstance(value, (str, os.PathLike)) or not isinstance(os.fspath(value), str):
        refuse(TypeError, where, name, rule, value)
    as_str = os.fspath(value)
    if not as_str or "\0" in as_str:
        refuse(ValueError, where, name, rule, value)
    return as_str


def password(where: str, value: Any) -> Optional[bytes]:
    """A password as bytes (a str is UTF-8 encoded), or None for none."""
    if value is None or isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return text(where, "password", value).encode("utf-8")
    refuse(TypeError, where, "password", "a str, bytes or None", value)


def data(where: str, name: str, value: Any) -> bytes:
    """Bytes to send as a file: bytes-like, or a str (sent as UTF-8)."""
    if isinstance(value, str):
        return text(where, name, value).encode("utf-8")
    if not isinstance(value, (bytes, bytearray, memoryview)):
        refuse(TypeError, where, name, "bytes or a str", value)
    return bytes(value)


# -- environment variables ----------------------------------------------------------------------
def env_variable(where: str, name: Any, value: Any) -> int:
    """Check one variable a task sets (value None: unset it) and return its size in bytes."""
    if not isinstance(name, str) or not name:
        refuse(TypeError if not isinstance(name, str) else ValueError, where,
               "an environment variable's name", "a non-empty str", name)
    if "=" in name:
        refuse(ValueError, where, "an environment variable's name", "a str without '='", name)
    text(where, f"the name of environment variable {name!r}", name)
    text(where, f"environment variable {name!r}", value, allow_none=True)
    size = env_variable_bytes(name, value)
    if size > ENV_VARIABLE_MAX_BYTES:
        refuse(ValueError, where, f"environment variable {name!r}",
               f"at most {ENV_VARIABLE_MAX_BYTES} bytes as NAME=value", f"{size} bytes")
    return size


def env_variable_bytes(name: str, value: Optional[str]) -> int:
    """What ``NAME=value`` (or ``NAME`` alone, to unset) weighs in UTF-8."""
    size = len(name.encode("utf-8"))
    return size if value is None else size + 1 + len(value.encode("utf-8"))


def env_total(where: str, total_bytes: int) -> None:
    """The environment a task sets, all variables together."""
    if total_bytes > ENV_MAX_BYTES:
        refuse(ValueError, where, "the environment", f"at most {ENV_MAX_BYTES} bytes in all", f"{total_bytes} bytes")


def mapping(where: str, name: str, value: Any) -> Mapping:
    """A dict, or any other mapping."""
    if not isinstance(value, Mapping):
        refuse(TypeError, where, name, "a mapping (a dict)", value)
    return value


# -- files --------------------------------------------------------------------------------------
def file_list(where: str, name: str, value: Any) -> Iterable:
    """A list of files: a lone path is refused here rather than taken as a list of its characters."""
    if type(value) in (list, tuple):
        return value
    if isinstance(value, (str, bytes, os.PathLike, Mapping)) or not isinstance(value, Iterable):
        refuse(TypeError, where, name, "a list of files", value)
    return value


def input_file(where: str, spec: Any, cache: bool = False) -> File:
    """An input: a path, a ``(local, remote)`` pair, or a ``File`` with a local path or bytes."""
    new = _as_file(where, "an input", spec, cache)
    if new.data is None and new.local is None and new.temp_id is None and new.source_url is None:
        refuse(ValueError, where, "an input", "a File with a local path or data", spec)
    if new.unpack and new.local is not None and os.path.isdir(new.local):
        refuse(ValueError, where, f"the archive of input {new.remote!r}", "a tar file, not a directory", new.local)
    if new.data is not None and not isinstance(new.data, bytes):
        refuse(TypeError, where, f"the data of input {new.remote!r}", "bytes", new.data)
    return new


def output_file(where: str, spec: Any) -> File:
    """An output: a path, a ``(local, remote)`` pair, or a ``File`` with a local path (no data)."""
    new = _as_file(where, "an output", spec, False)
    if (new.local is None and new.temp_id is None) or new.data is not None or new.unpack:
        refuse(ValueError, where, "an output", "a File with a local path to write (or a File.temp()) and no data",
               spec)
    return new


def _as_file(where: str, kind: str, spec: Any, cache: bool) -> File:
    rule = "a path, a (local, remote) pair or a File"
    if isinstance(spec, tuple) and len(spec) == 2 and isinstance(spec[0], File):
        text(where, f"the remote name of {kind}", spec[1])
    elif isinstance(spec, tuple):
        if len(spec) != 2:
            refuse(TypeError, where, kind, rule, spec)
        path(where, f"the local path of {kind}", spec[0])
        text(where, f"the remote name of {kind}", spec[1])
    elif isinstance(spec, File):
        path(where, f"the local path of {kind}", spec.local, allow_none=True)
    else:
        path(where, kind, spec)
    new = as_file(spec, cache)
    text(where, f"the remote name of {kind}", new.remote)  # a local name may not be UTF-8; the wire needs it
    return new


def is_new_file(where: str, kind: str, declared: Optional[File], new: File) -> bool:
    """Whether ``new`` is to be added to a task that already has ``declared`` under its remote name
    (None: no file has that name yet). The same file declared again is not added (CCTools takes such a
    repeat too); a different file under the same remote name is refused: only one could be there."""
    if declared is None:
        return True
    if declared.data == new.data and _absolute(declared.local) == _absolute(new.local) and \
            declared.temp_id == new.temp_id and declared.source_url == new.source_url:  # a repeat
        return False
    refuse(ValueError, where, f"the remote name of each {kind}", f"unique among the task's {kind}s "
           f"({declared.local or 'a buffer'!r} has it already)", new.remote)


def output_target(where: str, writer: Optional[str], new: File) -> None:
    """Refuse an output whose local path another output (remote name ``writer``) already writes: one
    would overwrite the other. CCTools refuses it too."""
    if writer is not None and writer != new.remote:
        refuse(ValueError, where, f"the local path of output {new.remote!r}",
               f"a path no other output writes (output {writer!r} writes it)", new.local)


def output_key(new: File) -> str:
    """What identifies an output's local path, however it was spelled (a temporary file: its id)."""
    return new.temp_id if new.temp_id is not None else _absolute(new.local)


def _absolute(local: Optional[str]) -> Optional[str]:
    return None if local is None else os.path.abspath(local)


# -- functions ----------------------------------------------------------------------------------
def function(where: str, value: Any) -> Any:
    """What a function task calls."""
    if not callable(value):
        refuse(TypeError, where, "func", "callable", value)
    return value
