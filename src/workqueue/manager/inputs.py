"""A task's inputs as the master sees them before sending: the files below a directory input,
and how much disk they need on a worker."""
from __future__ import annotations

import os
import stat
from typing import Any, Callable, Dict, List, Optional

from ..files import DigestMemo, File


def expand_directories(inputs: List[File]) -> List[File]:
    """A directory input becomes one input per file below it (and one per empty directory)."""
    expanded = []
    for f in inputs:
        if f.data is not None or f.local is None or not os.path.isdir(f.local):
            expanded.append(f)
            continue
        for parent, dirs, files in os.walk(f.local):
            rel = os.path.relpath(parent, f.local)
            remote_parent = f.remote if rel == "." else os.path.join(f.remote, rel)
            if not dirs and not files:
                expanded.append(File(parent, remote_parent, cache=False))
            for name in sorted(files):
                expanded.append(File(os.path.join(parent, name), os.path.join(remote_parent, name), cache=f.cache))
    return expanded


def input_megabytes(inputs: List[File]) -> float:
    """The size of the inputs in MB, as far as a stat tells now (a directory counts as empty: its
    files are only listed when the task is sent)."""
    total = 0
    for f in inputs:
        if f.data is not None:
            total += len(f.data)
            continue
        if f.local is None:
            continue  # a temporary file or a URL: its size is not known here
        try:
            st = os.stat(f.local)
        except OSError:
            continue  # gone since submit: the dispatch reports it missing
        if not stat.S_ISDIR(st.st_mode):
            total += st.st_size
    return total / (1 << 20)


def cached_input_sizes(inputs: List[File], digests: DigestMemo) -> Dict[str, int]:
    """The size of each cacheable input file, by digest (one look at the inputs; none: empty)."""
    sizes: Dict[str, int] = {}
    for f in inputs:
        if f.cache and f.data is None and f.local:
            try:
                digest, size, _ = digests.digest(f.local)
            except OSError:  # a directory, or a file gone: sending it will say so
                continue
            sizes[digest] = size
    return sizes


def cached_input_scorer(inputs: List[File], digests: DigestMemo,
                        workers: Dict[bytes, Any]) -> Optional[Callable[[bytes], float]]:
    """For the FILES algorithm: a function telling how many bytes of these inputs' cacheable files a
    worker holds, or None (at the cost of one look at the inputs) for a task with none."""
    sizes = cached_input_sizes(inputs, digests)
    if not sizes:
        return None
    return lambda worker: sum(size for digest, size in sizes.items() if digest in workers[worker].cached)
