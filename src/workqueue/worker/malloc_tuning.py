"""Fixed thresholds for glibc's malloc in the worker, so that chunk buffers are reused.

ZeroMQ allocates each arriving 1 MiB chunk with ``malloc`` in its I/O thread, and the worker frees it
once written. With glibc's sliding thresholds, part of those buffers were mapped and unmapped, or the
heap trimmed and grown again, each time: 30,000-57,000 page faults (and zeroed pages) per GiB received,
measured on the worker; with these two settings, none after the first transfer. The heap this keeps
is bounded by what is in flight (the window and the socket's receive bound), well under ``TRIM_BYTES``.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger(__name__)

M_TRIM_THRESHOLD = -1  # glibc's malloc.h
M_MMAP_THRESHOLD = -3
MMAP_BYTES = 4 << 20  # buffers below this come from the heap, whatever was freed before
TRIM_BYTES = 128 << 20  # free memory at the heap's top kept for the next transfer


def steady_malloc() -> bool:
    """Set the thresholds where the C library is glibc; False (and nothing changed) elsewhere."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    done = bool(mallopt(M_MMAP_THRESHOLD, MMAP_BYTES)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_BYTES))
    log.debug("malloc thresholds %s", "set" if done else "not set")
    return done
