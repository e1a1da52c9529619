"""What a worker runs for the Dask runner: a batch of Dask tasks, one function task.

Results travel pickled, in the call and its outcome or in temporary files (see ``results``), and
the master keeps them as bytes: it never unpickles an inner result, only hands the bytes on to the
tasks that need them (and unpickles the requested keys at the end). Pickling each result here also
names the key whose result cannot be pickled. This module imports nothing of workqueue, so loading it in a worker's function process
does not load ZeroMQ.
"""
from __future__ import annotations

import pickle
from typing import Any, Dict, Hashable, List, Optional, Tuple

import cloudpickle


class UnpicklableResult(TypeError):
    """A Dask task's result cannot be pickled, so it cannot leave its worker."""


class TooLargeToReturn(Exception):
    """A result too large to come back with its task: larger than ``inline_max`` with no file to
    stay in, or past RETURN_MAX together with the batch's others. The runner sends the batch again:
    the keys of this one's group one per task, and with files when it can."""

    def __init__(self, key: Hashable, size: int) -> None:
        super().__init__(key, size)
        self.key, self.size = key, size


RETURN_MAX = 32 << 20  # bytes of results one batch brings back at most (a result may carry 64 MiB)


def run(tasks: List[Tuple[Hashable, Any]], inputs: Dict[Hashable, bytes], files: Optional[Dict[Hashable, str]] = None,
        outputs: Optional[Dict[Hashable, str]] = None, inline_max: int = 0) -> Dict[Hashable, Optional[bytes]]:
    """Call each ``(key, node)`` in order with the values of its dependencies (from ``inputs``, from
    the files named in ``files``, or from earlier tasks of the batch); returns each key's result,
    pickled. An exception raised by a task comes back as itself, with a note naming its key.

    ``outputs`` (None: every result comes back) names the temporary file each result is written to
    (see ``results``): a result that pickles to more than ``inline_max`` bytes is written there and
    comes back as None; a smaller one comes back and its file is left empty. A result too large to
    come back raises TooLargeToReturn."""
    values = {key: cloudpickle.loads(data) for key, data in inputs.items()}
    for key, filename in (files or {}).items():
        values[key] = load(key, filename)
    results: Dict[Hashable, Optional[bytes]] = {}
    returned = 0
    used_here = {dependency for _, node in tasks for dependency in node.dependencies}
    for key, node in tasks:
        try:
            values[key] = node(values)
        except BaseException as error:
            name(error, f"raised by Dask task {key!r}")
            raise
        data = pickled(key, values[key] if key in used_here else values.pop(key))  # a large value goes early
        output = outputs.get(key) if outputs is not None else None
        if output is None:
            returned += len(data)
            if (outputs is not None and len(data) > inline_max) or (returned > RETURN_MAX and len(tasks) > 1):
                raise TooLargeToReturn(key, len(data))
            results[key] = data
        elif len(data) > inline_max:
            write(output, data)
            results[key] = None
        else:
            write(output, b"")
            results[key] = data
    return results


def pickled(key: Hashable, value: Any) -> bytes:
    try:
        return dumps(value)
    except Exception as error:
        raise UnpicklableResult(f"the result of Dask task {key!r} cannot be pickled to go back to "
                                f"the master: {type(error).__name__}: {error}") from None


def write(name: str, data: bytes) -> None:
    """A result's file: its own name first, so that two keys with the same result never share a copy
    in a worker's cache (the master would remove one key's copy while the other still needs it)."""
    with open(name, "wb") as f:
        if data:
            f.write(name.encode() + b"\n")
            f.write(data)


def load(key: Hashable, name: str) -> Any:
    with open(name, "rb") as f:
        content = f.read()
    return cloudpickle.loads(unframe(content, name, key))


def unframe(content: bytes, name: str, key: Hashable = None) -> memoryview:
    """The pickled result in a file ``write`` wrote."""
    header = name.encode() + b"\n"
    if not content:
        raise RuntimeError(f"the file of Dask key {key!r} ({name}) is empty: its task, run again after its "
                           f"worker was lost, gave a smaller result than the first time")
    if not content.startswith(header):
        raise RuntimeError(f"the file of Dask key {key!r} ({name}) does not start with its name: the Dask "
                           f"runner did not write it")
    return memoryview(content)[len(header):]


def dumps(value: Any) -> bytes:
    """The standard pickler first: for the data Dask tasks return it is 3-4x faster than
    cloudpickle (a NumPy scalar: 13 against 41 us here). What it cannot pickle by reference (a
    lambda, a class that came by value) goes to cloudpickle."""
    try:
        return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:
        return cloudpickle.dumps(value)


def name(error: BaseException, note: str) -> None:
    """Add ``note`` to the exception's notes (shown under its traceback since Python 3.11; kept in
    ``__notes__`` before, and through pickling either way)."""
    if hasattr(error, "add_note"):
        error.add_note(note)
    else:
        error.__notes__ = getattr(error, "__notes__", []) + [note]
