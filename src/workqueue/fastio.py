"""Stand-in for the transfer core; replaced by the Cython/fallback pair."""
import mmap
import os

import xxhash

BACKEND = "python"
CHUNK_SIZE = 1 << 20


def hash_bytes(data) -> str:
    return xxhash.xxh3_128(data).hexdigest()


def hash_file(path) -> str:
    h = xxhash.xxh3_128()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK_SIZE), b""):
            h.update(block)
    return h.hexdigest()


class FileReader:
    def __init__(self, path, chunk_size=CHUNK_SIZE):
        self._f = open(path, "rb")
        self.size = os.fstat(self._f.fileno()).st_size
        self._pos = 0
        self._chunk = chunk_size
        self._hash = xxhash.xxh3_128()

    def next_chunk(self):
        if self._pos >= self.size:
            return None
        length = min(self._chunk, self.size - self._pos)
        chunk = memoryview(mmap.mmap(self._f.fileno(), length, access=mmap.ACCESS_READ, offset=self._pos))
        self._hash.update(chunk)
        self._pos += len(chunk)
        return chunk

    def hexdigest(self):
        return self._hash.hexdigest()

    def close(self):
        self._f.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class FileWriter:
    def __init__(self, path):
        self.path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        self._hash = xxhash.xxh3_128()
        self.size = 0

    def write(self, buf):
        view = memoryview(buf)
        self._hash.update(view)
        while view:
            n = os.write(self._fd, view)
            view = view[n:]
        self.size += len(buf)

    def hexdigest(self):
        return self._hash.hexdigest()

    def finish(self, final_path=None, mode=None):
        os.close(self._fd)
        self._fd = -1
        if mode is not None:
            os.chmod(self.path, mode)
        if final_path:
            os.replace(self.path, final_path)
        return self.hexdigest()

    def abort(self):
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *exc):
        if exc_type is not None:
            self.abort()
