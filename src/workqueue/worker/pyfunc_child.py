"""One persistent Python process of a :class:`workqueue.worker.pyfunc.FunctionPool`.

Run as ``python pyfunc_child.py REQ_FD RESP_FD HOME PARENT_PID``. It reads framed requests from REQ_FD and
writes framed replies to RESP_FD (never to stdout, which the called functions own). A frame is an
8-byte big-endian length and that many bytes.

Requests: ``pickle.dumps(("call", task_id, cwd, env, payload))`` where payload is
``cloudpickle.dumps((fn, args, kwargs))``, and ``pickle.dumps(("cancel", task_id))``. Calls queue in
the pipe and run in order; between two calls the process reads everything waiting in the pipe, so
a call canceled before its turn is skipped. Each call gets one reply: a status byte, the call's
start and end times (``!dd``), then the pickled ``("ok", value, None, printed)`` after ``o``,
``("error", exception, traceback_text, printed)`` after ``e``, or nothing after ``c`` (skipped);
``printed`` is what the call wrote to its stdout and stderr, all pickled by cloudpickle. The status
byte lets the pool tell them apart without unpickling the value. The framing (``HEADER``,
``split_frames``, ``frame``) serves both ends: the pool imports it from here.

This file is run by path, not with ``-m``, so that starting it does not import the ``workqueue``
package (ZeroMQ and all); it imports only the standard library and cloudpickle.
"""
from __future__ import annotations

import io
import os
import pickle
import select
import struct
import sys
import time
import traceback
from collections import deque
from typing import Any, Deque, Dict, List, Optional, Set

HEADER = struct.Struct("!Q")
TIMES = struct.Struct("!dd")
READ_SIZE = 64 << 10  # a pipe's capacity; a read of 1 MiB allocated (and faulted in) 1 MiB first
PRINTED_LIMIT = 1 << 30  # what a call prints comes back up to this size, like a command's stdout


def _die_with_parent(parent: int) -> None:
    """Ask Linux to SIGKILL this process when the worker dies, even while a function runs."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes
            import signal
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
        except Exception:  # best effort: idle children also leave on EOF of their request pipe
            pass
    if os.getppid() != parent:
        os._exit(1)  # the worker died while we were starting, before the death signal was armed


class _Requests:
    """Framed requests from a non-blocking pipe: wait for some, or take what is there."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        os.set_blocking(fd, False)
        self.buffer = bytearray()
        self.closed = False

    def read(self, wait: bool) -> List[tuple]:
        if wait and not self.closed:
            select.select([self.fd], [], [])
        while not self.closed:
            try:
                chunk = os.read(self.fd, READ_SIZE)
            except BlockingIOError:
                break
            if not chunk:
                self.closed = True
            self.buffer += chunk
            if len(chunk) < READ_SIZE:
                break  # drained: another read would only raise BlockingIOError
        return self._frames()

    def _frames(self) -> List[tuple]:
        return [pickle.loads(frame) for frame in split_frames(self.buffer)]


def split_frames(buffer: bytearray) -> List[bytes]:
    """Take the complete frames off the front of ``buffer``, with one deletion at the end, not one
    per frame (each moved the rest of the buffer)."""
    frames = []
    start, end = 0, len(buffer)
    with memoryview(buffer) as view:
        while end - start >= HEADER.size:
            size = HEADER.unpack_from(view, start)[0]
            if end - start - HEADER.size < size:
                break
            frames.append(bytes(view[start + HEADER.size:start + HEADER.size + size]))
            start += HEADER.size + size
    del buffer[:start]
    return frames


def frame(data: bytes) -> bytes:
    return HEADER.pack(len(data)) + data


def _write_frame(fd: int, data: bytes) -> None:
    view = memoryview(frame(data))
    while view:
        view = view[os.write(fd, view):]


class _Pickling:
    """cloudpickle both ways, with one pickler made once and reused for every outcome:
    ``cloudpickle.dumps`` builds a new pickler each time, 3.3 us for a trivial outcome where the
    reused one takes 1.1. (The standard pickler, at 0.5, would save a bound method or a class that
    came by value under a name the master cannot always load.)"""

    def __init__(self, cloudpickle: Any) -> None:
        self.loads = cloudpickle.loads
        self._buffer = io.BytesIO()
        self._pickler = cloudpickle.Pickler(self._buffer, protocol=pickle.HIGHEST_PROTOCOL)

    def dumps(self, value: Any) -> bytes:
        self._buffer.seek(0)
        self._buffer.truncate()
        self._pickler.clear_memo()
        self._pickler.dump(value)
        return self._buffer.getvalue()


def _run(pickling: _Pickling, payload: bytes, printed: "_Printed") -> bytes:
    """Call the function; the reply is ``_encode`` of its outcome. The function is unpickled for
    each call, even when the same one came before: caching it by its bytes (as Dask does) would save
    5 us a call, but would let a call see what earlier calls did to the state the function carries
    with it (its closure), which depends on which process ran them."""
    try:
        fn, args, kwargs = pickling.loads(payload)
        outcome = ("ok", fn(*args, **kwargs), None)
    except BaseException as exc:  # SystemExit and KeyboardInterrupt in a function are its failure too
        outcome = ("error", exc, traceback.format_exc())
    return _encode(pickling, outcome + (printed.take(),))


def _encode(pickling: _Pickling, outcome: tuple) -> bytes:
    """One status byte (``o`` or ``e``) and the pickled outcome. A value that does not pickle
    becomes an error; an exception that does not pickle is sent as its text."""
    status, value, traceback_text, printed = outcome
    try:
        return status[:1].encode() + pickling.dumps(outcome)
    except Exception as exc:
        if status == "ok":
            return _encode(pickling, ("error", exc, traceback.format_exc(), printed))
        text = RuntimeError(f"{type(value).__name__}: {value}")
        return b"e" + pickling.dumps(("error", text, traceback_text, printed))


class _Printed:
    """What calls write to fds 1 and 2, which point, for this process's whole life, at one
    unlinked file opened for appending. After each call the file is read and emptied: one fstat
    when a call printed nothing, where opening and redirecting a file per call took ten syscalls."""

    def __init__(self, home: str) -> None:
        path = os.path.join(home, f".printed.{os.getpid()}")
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o600)
        os.unlink(path)
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(self.fd, 1)
        os.dup2(self.fd, 2)

    def take(self) -> bytes:
        """What the call printed; also puts back ``sys.stdout``/``sys.stderr`` if it replaced them."""
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:  # closed, None, or an object without flush: the call's own doing
                pass
        sys.stdout = sys.__stdout__ = _usable(sys.__stdout__, 1)
        sys.stderr = sys.__stderr__ = _usable(sys.__stderr__, 2)
        size = os.fstat(self.fd).st_size
        if not size:
            return b""
        text = os.pread(self.fd, min(size, PRINTED_LIMIT), 0)
        os.ftruncate(self.fd, 0)
        return text


def _usable(stream: Any, fd: int) -> Any:
    """``stream``, or a new text stream on ``fd`` if a call closed it."""
    if stream is not None and not stream.closed:
        return stream
    return open(fd, "w", closefd=False)


def _apply_env(env: Dict[str, Optional[str]], applied: Dict[str, Optional[str]],
               base_env: Dict[str, str]) -> None:
    """Set this call's variables, and put back the base value of the last call's others.

    Only the differences are applied: clearing and refilling ``os.environ`` on every call costs
    more than a trivial function. A variable a function sets itself therefore stays for the next
    call in this process, as it does in any pool of persistent processes.
    """
    for name in applied.keys() - env.keys():
        _set(name, base_env.get(name))
    for name, value in env.items():
        if os.environ.get(name) != value:
            _set(name, value)
    applied.clear()
    applied.update(env)


def _set(name: str, value: Optional[str]) -> None:
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value


def serve(req_fd: int, resp_fd: int, home: str) -> int:
    import cloudpickle

    base_env: Dict[str, str] = dict(os.environ)
    base_path = list(sys.path)
    applied: Dict[str, Optional[str]] = {}
    printed = _Printed(home)
    pickling = _Pickling(cloudpickle)
    requests = _Requests(req_fd)
    calls: Deque[tuple] = deque()
    canceled: Set[str] = set()
    while True:
        for request in requests.read(wait=not calls):
            if request[0] == "cancel":
                if any(call[0] == request[1] for call in calls):
                    canceled.add(request[1])  # else it already ran: a later call may reuse the id
            else:
                calls.append(request[1:])
        if not calls:
            if requests.closed:
                return 0  # the pool closed our pipe: leave quietly
            continue
        task_id, cwd, env, payload = calls.popleft()
        if task_id in canceled:
            canceled.discard(task_id)
            _write_frame(resp_fd, b"c" + TIMES.pack(0.0, 0.0))
            continue
        _apply_env(env, applied, base_env)
        start = time.time()
        try:
            os.chdir(cwd)  # and no step back home after: the next call's chdir is enough
            sys.path[:] = [cwd] + base_path
            reply = _run(pickling, payload, printed)
        except Exception as exc:  # a bad cwd
            reply = _encode(pickling, ("error", exc, traceback.format_exc(), printed.take()))
        finally:
            sys.path[:] = base_path
        _write_frame(resp_fd, reply[:1] + TIMES.pack(start, time.time()) + reply[1:])


def main() -> int:
    if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
        del sys.path[0]  # run by path: do not let our sibling modules shadow the user's imports
    req_fd, resp_fd, home, parent = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    _die_with_parent(parent)
    os.chdir(home)
    return serve(req_fd, resp_fd, home)


if __name__ == "__main__":
    sys.exit(main())
