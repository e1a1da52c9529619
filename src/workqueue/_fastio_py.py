"""Pure-Python transfer core: the fallback twin of the Cython module ``_fastio``.

Both modules expose the same interface and produce the same bytes and digests; ``fastio`` picks
whichever is available. The content address of a file is its xxh3_128 hex digest, computed on the
same pass as the reads (sender) or the writes (receiver).

Design notes, shared with ``_fastio.pyx``:

* Each chunk is a buffer filled by one ``read`` with the GIL released, taken from a small pool of
  buffers that nobody else holds any more: ZeroMQ keeps a chunk sent with ``copy=False`` until it
  has gone, then drops its reference, and the pool reuses a buffer only when its own reference is
  the last one. A chunk therefore never changes under anyone who still holds it, and memory is
  bounded by the chunks in flight plus the pool. A fresh 1 MiB buffer per chunk cost a page fault
  and a zeroed page per 4 KiB, and was the sending worker's largest kernel cost (perf); reused
  buffers sent a 256 MiB file through ZeroMQ at 2.9-3.7 GB/s where fresh ones did 2.6-3.0.
  We do not mmap the source: a file truncated by someone else while mapped would kill the
  process with SIGBUS, whereas a short ``read`` is an ordinary error.
* The reader delivers exactly the ``size`` that ``fstat`` reported when it was opened (the size a
  ``put`` header announces). A file that shrinks meanwhile raises ``OSError(EIO)``; bytes appended
  after opening are ignored.
* Hashing uses the ``xxhash`` package, whose ``update`` releases the GIL while it hashes.
"""
from __future__ import annotations

import errno
import os
import sys
from typing import Any, Dict, List, Optional, Union

import xxhash

CHUNK_SIZE = 1 << 20
_O_BINARY = getattr(os, "O_BINARY", 0)
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)

POOL_MAX = 16  # idle chunk buffers kept per size (16 MiB at the default chunk size)
_SEQUENTIAL = getattr(os, "POSIX_FADV_SEQUENTIAL", None)
PathLike = Union[str, "os.PathLike[str]"]
_pool: Dict[int, List[bytearray]] = {}


def _count_when_free() -> int:
    """What ``sys.getrefcount`` says, in ``_free_buffer``'s loop, of a buffer only the pool holds
    (3 on CPython up to 3.13; measured, because newer interpreters may borrow references)."""
    for buffer in [bytearray(1)]:
        return sys.getrefcount(buffer)
    raise AssertionError


_FREE = _count_when_free()


def _free_buffer(size: int) -> bytearray:
    """A ``size``-byte buffer that only the pool holds (one no chunk in flight still uses), or a new
    one, kept in the pool while it has room."""
    pool = _pool.setdefault(size, [])
    for buffer in pool:
        if sys.getrefcount(buffer) == _FREE:
            return buffer
    buffer = bytearray(size)
    if len(pool) < POOL_MAX:
        pool.append(buffer)
    return buffer


def _advise(fd: int, offset: int, length: int, advice: Optional[int]) -> None:
    """A hint to the kernel's read-ahead (none where the platform has no posix_fadvise)."""
    if advice is not None:
        try:
            os.posix_fadvise(fd, offset, length, advice)
        except OSError:
            pass


def hash_bytes(data: Any) -> str:
    """xxh3_128 hex digest of an in-memory buffer (any object with the buffer protocol)."""
    return xxhash.xxh3_128(data).hexdigest()


def hash_file(path: PathLike, chunk_size: int = 4 * CHUNK_SIZE) -> str:
    """xxh3_128 hex digest of a whole file, streamed in constant memory."""
    hasher = xxhash.xxh3_128()
    fd = os.open(path, os.O_RDONLY | _O_BINARY | _O_CLOEXEC)
    _advise(fd, 0, 0, _SEQUENTIAL)
    try:
        while True:
            block = os.read(fd, chunk_size)
            if not block:
                break
            hasher.update(block)
    finally:
        os.close(fd)
    return hasher.hexdigest()


class FileReader:
    """Reads a file in chunks for sending, hashing on the same pass.

    ``next_chunk()`` returns a whole chunk as a pooled ``bytearray`` (reused only once nothing
    else holds it), a shorter last one as a new ``bytearray``, or None once ``size`` bytes were
    delivered. ``hexdigest()`` is valid as soon as the last byte was delivered; given the file's
    ``digest`` (known already), the reader does not compute it again and returns that.
    """

    def __init__(self, path: PathLike, chunk_size: int = CHUNK_SIZE, digest: Optional[str] = None) -> None:
        if chunk_size <= 0:
            raise ValueError("chunk_size must be positive")
        self.path = os.fspath(path)
        self.chunk_size = chunk_size
        self._fd = os.open(self.path, os.O_RDONLY | _O_BINARY | _O_CLOEXEC)
        try:
            self.size: int = os.fstat(self._fd).st_size
        except BaseException:
            os.close(self._fd)
            raise
        self.position = 0
        self._digest = digest
        self._hasher = xxhash.xxh3_128() if digest is None else None
        _advise(self._fd, 0, 0, _SEQUENTIAL)

    def next_chunk(self) -> Optional[Any]:
        """The next chunk (at most ``chunk_size`` bytes, a buffer), or None at the end."""
        remaining = self.size - self.position
        if remaining <= 0:
            return None
        if self._fd < 0:
            raise ValueError("read from a closed FileReader")
        want = min(self.chunk_size, remaining)
        chunk = _free_buffer(want) if want == self.chunk_size else bytearray(want)
        view = memoryview(chunk)
        got = 0
        while got < want:  # short reads are legal; only 0 means the file shrank
            n = os.readv(self._fd, [view[got:]])
            if not n:
                raise OSError(errno.EIO, f"file shrank while being read (expected {self.size} bytes)",
                              self.path)
            got += n
        view.release()
        if self._hasher is not None:
            self._hasher.update(chunk)
        self.position += want
        return chunk

    def hexdigest(self) -> str:
        """Digest of the file; valid once every byte was delivered."""
        if self.position < self.size:
            raise RuntimeError("hexdigest() before the whole file was read")
        return self._digest if self._hasher is None else self._hasher.hexdigest()

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> "FileReader":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass


class FileWriter:
    """Writes a file arriving in chunks, hashing on the same pass.

    The file is created (or truncated) with mode 0o600; ``finish`` closes it, optionally chmods
    it and atomically renames it into place. ``abort`` closes it and removes it. Used as a context
    manager, it aborts when the block raises.
    """

    def __init__(self, path: PathLike) -> None:
        self.path = os.fspath(path)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | _O_BINARY | _O_CLOEXEC,
                           0o600)
        self.size = 0
        self._finished = False
        self._hasher = xxhash.xxh3_128()

    def write(self, buffer: Any) -> int:
        """Append ``buffer`` (any buffer-protocol object; no copy is made); return its length."""
        if self._fd < 0:
            raise ValueError("write to a closed FileWriter")
        view = memoryview(buffer).cast("B")
        length = view.nbytes
        done = 0
        while done < length:
            done += os.write(self._fd, view[done:])
        self._hasher.update(view)
        self.size += length
        return length

    def hexdigest(self) -> str:
        return self._hasher.hexdigest()

    def close(self) -> None:
        """Close the file, keeping it where it is: a complete file waiting for ``finish`` holds
        no descriptor (a task may return thousands of outputs before its result arrives)."""
        self._close()

    def finish(self, final_path: Optional[PathLike] = None, mode: Optional[int] = None) -> str:
        """Close; chmod to ``mode`` and rename to ``final_path`` if given; return the digest."""
        self._close()
        if mode is not None:
            os.chmod(self.path, mode)
        if final_path is not None:
            os.replace(self.path, final_path)
            self.path = os.fspath(final_path)
        self._finished = True
        return self.hexdigest()

    def abort(self) -> None:
        """Close and remove the partial file (no error if it is already gone; no-op once finished)."""
        self._close()
        if self._finished:
            return
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass

    def _close(self) -> None:
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            os.close(fd)

    def __enter__(self) -> "FileWriter":
        return self

    def __exit__(self, exc_type: Any, *exc: Any) -> None:
        if exc_type is not None:
            self.abort()
        else:
            self._close()
