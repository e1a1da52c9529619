"""The file-transfer core: the Cython ``_fastio`` when it was built, else the pure-Python twin.

Both backends have the same interface and produce the same bytes and xxh3_128 digests:
``CHUNK_SIZE``, ``hash_file(path)``, ``hash_bytes(data)``, ``FileReader(path, chunk_size, digest=None)`` and
``FileWriter(path)``. ``BACKEND`` says which one is in use ("cython" or "python"). Setting the
environment variable ``WORKQUEUE_FASTIO=python`` forces the fallback (for tests and comparison).
"""
import logging
import os

log = logging.getLogger(__name__)

if os.environ.get("WORKQUEUE_FASTIO", "").lower() == "python":
    from .._fastio_py import CHUNK_SIZE, FileReader, FileWriter, hash_bytes, hash_file
    BACKEND = "python"
else:
    try:
        from .._fastio import CHUNK_SIZE, FileReader, FileWriter, hash_bytes, hash_file
        BACKEND = "cython"
    except ImportError as _error:
        log.debug("workqueue._fastio not available (%s); using the pure-Python fallback", _error)
        from .._fastio_py import (
            CHUNK_SIZE,
            FileReader,
            FileWriter,
            hash_bytes,
            hash_file,
        )
        BACKEND = "python"

__all__ = ["BACKEND", "CHUNK_SIZE", "FileReader", "FileWriter", "hash_bytes", "hash_file"]
