"""Throughput of the file-transfer core: read+hash and write+hash of a large file, per backend.

References: a plain ``os.read``/``os.write`` loop with the same chunk size (no hashing) and
``cp``. The source file is in the page cache after it is made, so the read figures are
memory/hash-bound rather than disk-bound; writes go through the page cache (no fsync) like the
real receiver. Each figure is the best of ``--repeat`` runs.

    PYTHONPATH=src python bench/fastio_bench.py [--size-mib 1024] [--dir /tmp]
"""
import os
import shutil
import subprocess
import tempfile
import time
from typing import Callable, Dict, List, Tuple

import click

from workqueue import _fastio_py

try:
    from workqueue import _fastio
except ImportError:
    _fastio = None

CHUNK = 1 << 20


def best_of(repeat: int, run: Callable[[], object], cleanup: Callable[[], None] = lambda: None) -> float:
    times = []
    for _ in range(repeat):
        cleanup()
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    cleanup()
    return min(times)


def plain_read(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        while os.read(fd, CHUNK):
            pass
    finally:
        os.close(fd)


def plain_write(path: str, block: bytes, count: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for _ in range(count):
            view = memoryview(block)
            while view:
                view = view[os.write(fd, view):]
    finally:
        os.close(fd)


def backend_read(backend, path: str) -> str:
    with backend.FileReader(path, CHUNK) as reader:
        while reader.next_chunk() is not None:
            pass
        return reader.hexdigest()


def backend_write(backend, path: str, block: bytes, count: int) -> str:
    writer = backend.FileWriter(path)
    for _ in range(count):
        writer.write(memoryview(block))
    return writer.finish()


@click.command()
@click.option("--size-mib", default=1024, show_default=True, help="file size in MiB")
@click.option("--dir", "directory", default=None, help="where to put the files (default: tempdir)")
@click.option("--repeat", default=3, show_default=True, help="runs per figure; best is kept")
def main(size_mib: int, directory: str, repeat: int) -> None:
    work = tempfile.mkdtemp(prefix="fastio-bench-", dir=directory)
    try:
        run(work, size_mib, repeat)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(work: str, size_mib: int, repeat: int) -> None:
    source, target = os.path.join(work, "source"), os.path.join(work, "target")
    block = os.urandom(CHUNK)
    plain_write(source, block, size_mib)
    gb = size_mib * CHUNK / 1e9

    def remove_target() -> None:
        if os.path.exists(target):
            os.unlink(target)

    rows: List[Tuple[str, float, float]] = []
    ref_read = gb / best_of(repeat, lambda: plain_read(source))
    ref_write = gb / best_of(repeat, lambda: plain_write(target, block, size_mib), remove_target)
    cp = gb / best_of(repeat, lambda: subprocess.run(["cp", source, target], check=True), remove_target)
    rows.append(("os.read / os.write loop", ref_read, ref_write))
    backends: Dict[str, object] = {"python": _fastio_py}
    if _fastio is not None:
        backends["cython"] = _fastio
    digests = set()
    for name, backend in backends.items():
        read = gb / best_of(repeat, lambda: digests.add(backend_read(backend, source)))
        write = gb / best_of(repeat, lambda: digests.add(backend_write(backend, target, block, size_mib)),
                             remove_target)
        rows.append((f"{name}: read+hash / write+hash", read, write))
    assert len(digests) == 1, f"backends disagree: {digests}"

    print(f"file: {size_mib} MiB in {work}, chunk {CHUNK >> 10} KiB, best of {repeat}")
    print(f"cp (read+write, reference): {cp:6.2f} GB/s")
    print(f"{'':34s} {'read GB/s':>10s} {'ratio':>6s} {'write GB/s':>11s} {'ratio':>6s}")
    for label, read, write in rows:
        print(f"{label:34s} {read:10.2f} {read / ref_read:6.2f} {write:11.2f} {write / ref_write:6.2f}")
    if _fastio is None:
        print("(cython backend not built: python setup.py build_ext --inplace)")


if __name__ == "__main__":
    main()
