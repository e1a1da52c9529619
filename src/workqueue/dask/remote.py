"""What a worker runs for the Dask runner: a batch of Dask tasks, one function task.

Results travel as cloudpickle bytes both ways and the master keeps them as bytes: it never
unpickles an inner result, only hands the bytes on to the tasks that need them (and unpickles the
requested keys at the end). Pickling each result here also names the key whose result cannot be
pickled. This module imports nothing of workqueue, so loading it in a worker's function process
does not load ZeroMQ.
"""
from __future__ import annotations

import pickle
from typing import Any, Dict, Hashable, List, Tuple

import cloudpickle


class UnpicklableResult(TypeError):
    """A Dask task's result cannot be pickled, so it cannot leave its worker."""


def run(tasks: List[Tuple[Hashable, Any]], inputs: Dict[Hashable, bytes]) -> Dict[Hashable, bytes]:
    """Call each ``(key, node)`` in order with the values of its dependencies (from ``inputs`` or
    from earlier tasks of the batch); returns each key's result, pickled. An exception raised by a
    task comes back as itself, with a note naming its key."""
    values = {key: cloudpickle.loads(data) for key, data in inputs.items()}
    results = {}
    for key, node in tasks:
        try:
            values[key] = node(values)
        except BaseException as error:
            name(error, f"raised by Dask task {key!r}")
            raise
        try:
            results[key] = dumps(values[key])
        except Exception as error:
            raise UnpicklableResult(f"the result of Dask task {key!r} cannot be pickled to go back to "
                                    f"the master: {type(error).__name__}: {error}") from None
    return results


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
