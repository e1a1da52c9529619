# cython: language_level=3, boundscheck=False, wraparound=False
"""Cython transfer core; same interface, bytes and digests as the fallback ``_fastio_py``.

The read and write loops call ``read(2)``/``write(2)`` directly with the GIL released, writing
into (or from) the chunk's own memory: a reader chunk is a pooled ``bytearray`` that nothing else
holds any more, filled in place; a writer takes the caller's buffer (e.g. ``zmq.Frame.buffer``)
through the buffer protocol, without a copy. Hashing goes through the ``xxhash`` package (the
same code as the fallback, so digests cannot differ); its ``update`` releases the GIL itself while
it hashes. See ``_fastio_py`` for why chunks are read into
reused buffers rather than fresh ones or mmapped.
"""
import os

import xxhash

from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytearray cimport PyByteArray_AS_STRING
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from cpython.ref cimport Py_REFCNT
from cpython.exc cimport PyErr_CheckSignals
from libc.errno cimport EINTR, EIO, errno
from posix.unistd cimport read, write

CHUNK_SIZE = 1 << 20
POOL_MAX = 16  # idle chunk buffers kept per size (16 MiB at the default chunk size)
_pool = {}  # chunk size -> idle and in-flight buffers; module-level so tests can see it
cdef int _FLAGS_READ = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)
cdef int _FLAGS_WRITE = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0)


cdef Py_ssize_t _read_full(int fd, char *buf, Py_ssize_t want) except -1:
    """Read exactly ``want`` bytes; return how many were read before EOF (< want if EOF)."""
    cdef Py_ssize_t done = 0
    cdef Py_ssize_t n
    cdef int err = 0
    while done < want:
        with nogil:
            n = read(fd, buf + done, <size_t>(want - done))
            if n < 0:
                err = errno
        if n < 0:
            if err == EINTR:
                PyErr_CheckSignals()
                continue
            raise OSError(err, os.strerror(err))
        if n == 0:
            break
        done += n
    return done


cdef int _write_full(int fd, const char *buf, Py_ssize_t length) except -1:
    cdef Py_ssize_t done = 0
    cdef Py_ssize_t n
    cdef int err = 0
    while done < length:
        with nogil:
            n = write(fd, buf + done, <size_t>(length - done))
            if n < 0:
                err = errno
        if n < 0:
            if err == EINTR:
                PyErr_CheckSignals()
                continue
            raise OSError(err, os.strerror(err))
        done += n
    return 0


def hash_bytes(data) -> str:
    """xxh3_128 hex digest of an in-memory buffer (any object with the buffer protocol)."""
    return xxhash.xxh3_128(data).hexdigest()


def hash_file(path, Py_ssize_t chunk_size=4 * CHUNK_SIZE) -> str:
    """xxh3_128 hex digest of a whole file, streamed in constant memory."""
    hasher = xxhash.xxh3_128()
    cdef int fd = os.open(path, _FLAGS_READ)
    cdef bytearray block = bytearray(chunk_size)
    cdef char *buf = block
    cdef Py_ssize_t n
    _advise(fd, 0, 0, _SEQUENTIAL)
    try:
        mv = memoryview(block)
        while True:
            n = _read_full(fd, buf, chunk_size)
            if n == 0:
                break
            hasher.update(mv[:n])
            if n < chunk_size:
                break
    finally:
        os.close(fd)
    return hasher.hexdigest()


_SEQUENTIAL = getattr(os, "POSIX_FADV_SEQUENTIAL", None)


def _advise(int fd, offset, length, advice):
    """A hint to the kernel's read-ahead (none where the platform has no posix_fadvise)."""
    if advice is not None:
        try:
            os.posix_fadvise(fd, offset, length, advice)
        except OSError:
            pass


cdef bytearray _free_buffer(Py_ssize_t size):
    """A ``size``-byte buffer that only the pool holds (no chunk in flight still uses it), or a new
    one, kept in the pool while it has room."""
    cdef list pool = _pool.setdefault(size, [])
    cdef bytearray buffer
    for buffer in pool:
        if Py_REFCNT(buffer) == 2:  # the pool's list and this loop's variable
            return buffer
    buffer = bytearray(size)
    if len(pool) < POOL_MAX:
        pool.append(buffer)
    return buffer


cdef class FileReader:
    """Reads a file in chunks for sending, hashing on the same pass.

    ``next_chunk()`` returns a whole chunk as a pooled ``bytearray`` (reused only once nothing
    else holds it), a shorter last one as ``bytes``, or None once ``size`` bytes were delivered.
    ``hexdigest()`` is valid as soon as the last byte was delivered; given the file's ``digest``
    (known already), the reader does not compute it again and returns that.
    """
    cdef int _fd
    cdef readonly object path
    cdef readonly Py_ssize_t size
    cdef readonly Py_ssize_t chunk_size
    cdef readonly Py_ssize_t position
    cdef object _hasher
    cdef object _digest

    def __cinit__(self):
        self._fd = -1

    def __init__(self, path, Py_ssize_t chunk_size=CHUNK_SIZE, digest=None):
        if chunk_size <= 0:
            raise ValueError("chunk_size must be positive")
        self.path = os.fspath(path)
        self.chunk_size = chunk_size
        self._fd = os.open(self.path, _FLAGS_READ)
        try:
            self.size = os.fstat(self._fd).st_size
        except BaseException:
            self.close()
            raise
        self.position = 0
        self._digest = digest
        self._hasher = xxhash.xxh3_128() if digest is None else None
        _advise(self._fd, 0, 0, _SEQUENTIAL)

    def next_chunk(self):
        """The next chunk (at most ``chunk_size`` bytes), or None at the end."""
        cdef Py_ssize_t remaining = self.size - self.position
        cdef Py_ssize_t want, got
        if remaining <= 0:
            return None
        if self._fd < 0:
            raise ValueError("read from a closed FileReader")
        want = min(self.chunk_size, remaining)
        if want == self.chunk_size:
            chunk = _free_buffer(want)
            got = _read_full(self._fd, PyByteArray_AS_STRING(chunk), want)
        else:  # a file's tail, or a small file: exactly its size, not a pooled whole chunk
            chunk = PyBytes_FromStringAndSize(NULL, want)
            got = _read_full(self._fd, PyBytes_AS_STRING(chunk), want)
        if got < want:
            raise OSError(EIO, f"file shrank while being read (expected {self.size} bytes)", self.path)
        if self._hasher is not None:
            self._hasher.update(chunk)
        self.position += want
        return chunk

    def hexdigest(self) -> str:
        """Digest of the file; valid once every byte was delivered."""
        if self.position < self.size:
            raise RuntimeError("hexdigest() before the whole file was read")
        return self._digest if self._hasher is None else self._hasher.hexdigest()

    def close(self):
        cdef int fd = self._fd
        if fd >= 0:
            self._fd = -1
            os.close(fd)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __dealloc__(self):
        if self._fd >= 0:
            try:
                os.close(self._fd)
            except OSError:
                pass
            self._fd = -1


cdef class FileWriter:
    """Writes a file arriving in chunks, hashing on the same pass.

    The file is created (or truncated) with mode 0o600; ``finish`` closes it, optionally chmods
    it and atomically renames it into place. ``abort`` closes it and removes it. Used as a context
    manager, it aborts when the block raises.
    """
    cdef int _fd
    cdef readonly object path
    cdef readonly Py_ssize_t size
    cdef bint _finished
    cdef object _hasher

    def __cinit__(self):
        self._fd = -1

    def __init__(self, path):
        self.path = os.fspath(path)
        self._fd = os.open(self.path, _FLAGS_WRITE, 0o600)
        self.size = 0
        self._finished = False
        self._hasher = xxhash.xxh3_128()

    def write(self, buffer) -> int:
        """Append ``buffer`` (any C-contiguous buffer; no copy is made); return its length."""
        cdef Py_buffer view
        cdef Py_ssize_t length
        if self._fd < 0:
            raise ValueError("write to a closed FileWriter")
        PyObject_GetBuffer(buffer, &view, PyBUF_SIMPLE)
        try:
            length = view.len
            _write_full(self._fd, <const char *>view.buf, length)
        finally:
            PyBuffer_Release(&view)
        self._hasher.update(buffer)
        self.size += length
        return length

    def hexdigest(self) -> str:
        return self._hasher.hexdigest()

    def close(self) -> None:
        """Close the file, keeping it where it is: a complete file waiting for ``finish`` holds
        no descriptor (a task may return thousands of outputs before its result arrives)."""
        self._close()

    def finish(self, final_path=None, mode=None) -> str:
        """Close; chmod to ``mode`` and rename to ``final_path`` if given; return the digest."""
        self._close()
        if mode is not None:
            os.chmod(self.path, mode)
        if final_path is not None:
            os.replace(self.path, final_path)
            self.path = os.fspath(final_path)
        self._finished = True
        return self.hexdigest()

    def abort(self):
        """Close and remove the partial file (no error if it is already gone; no-op once finished)."""
        self._close()
        if self._finished:
            return
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass

    cdef _close(self):
        cdef int fd = self._fd
        if fd >= 0:
            self._fd = -1
            os.close(fd)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *exc):
        if exc_type is not None:
            self.abort()
        else:
            self._close()

    def __dealloc__(self):
        if self._fd >= 0:
            try:
                os.close(self._fd)
            except OSError:
                pass
            self._fd = -1
