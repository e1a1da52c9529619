"""The file-transfer core: both backends give the same bytes and digests, and handle the edges.

The Cython backend is skipped (with a message) when it was not built; build it with
``python setup.py build_ext --inplace``.
"""
import errno
import gc
import os
import random
import shutil
import subprocess
import sys
import tempfile

import pytest
import xxhash
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workqueue import _fastio_py
from workqueue.data import fastio

try:
    from workqueue import _fastio
except ImportError as error:  # not built
    _fastio = None
    _NOT_BUILT = str(error)

BACKENDS = [
    pytest.param(_fastio_py, id="python"),
    pytest.param(_fastio, id="cython", marks=pytest.mark.skipif(
        _fastio is None, reason="workqueue._fastio is not built (python setup.py build_ext --inplace)")),
]
SMALL_CHUNK = 4096
SIZES = [0, 1, SMALL_CHUNK - 1, SMALL_CHUNK, SMALL_CHUNK + 1, 3 * (1 << 20) + 17]


def reference_digest(data: bytes) -> str:
    return xxhash.xxh3_128(data).hexdigest()


def write_file(path, data: bytes) -> str:
    with open(path, "wb") as f:
        f.write(data)
    return str(path)


def read_all(backend, path, chunk_size):
    """All chunks of ``path`` (kept, not joined), and the reader's digest."""
    with backend.FileReader(path, chunk_size) as reader:
        chunks = []
        while True:
            chunk = reader.next_chunk()
            if chunk is None:
                break
            chunks.append(chunk)
        assert reader.size == sum(len(memoryview(c)) for c in chunks)
        return chunks, reader.hexdigest()


def copy_through(backend, source, target, chunk_size):
    """Reader -> writer, the way a transfer does; returns (reader digest, writer digest)."""
    with backend.FileReader(source, chunk_size) as reader, backend.FileWriter(target + ".part") as writer:
        while True:
            chunk = reader.next_chunk()
            if chunk is None:
                break
            writer.write(memoryview(chunk))
        assert writer.size == reader.size
        return reader.hexdigest(), writer.finish(target)


def test_selector_exports_one_backend():
    assert fastio.BACKEND in ("cython", "python")
    expected = _fastio if fastio.BACKEND == "cython" else _fastio_py
    assert fastio.FileReader is expected.FileReader and fastio.FileWriter is expected.FileWriter
    assert fastio.CHUNK_SIZE == 1 << 20 == _fastio_py.CHUNK_SIZE


def test_selector_can_be_forced_to_python():
    code = "from workqueue import _fastio_py; from workqueue.data import fastio; assert fastio.FileWriter is _fastio_py.FileWriter; print(fastio.BACKEND)"
    env = dict(os.environ, WORKQUEUE_FASTIO="python")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "python"


@pytest.mark.parametrize("size", SIZES)
def test_backends_identical(tmp_path, size):
    data = os.urandom(size)
    path = write_file(tmp_path / "src", data)
    expected = reference_digest(data)
    for backend in [_fastio_py] + ([_fastio] if _fastio else []):
        chunks, digest = read_all(backend, path, SMALL_CHUNK)
        assert b"".join(bytes(c) for c in chunks) == data
        assert all(0 < len(c) <= SMALL_CHUNK for c in chunks)
        assert digest == expected
        assert backend.hash_file(path) == expected
        assert backend.hash_bytes(data) == expected
        target = str(tmp_path / f"copy-{backend.__name__}")
        assert copy_through(backend, path, target, SMALL_CHUNK) == (expected, expected)
        with open(target, "rb") as f:
            assert f.read() == data


@pytest.mark.parametrize("backend", BACKENDS)
def test_default_chunk_size(tmp_path, backend):
    data = os.urandom(2 * backend.CHUNK_SIZE + 5)
    chunks, digest = read_all(backend, write_file(tmp_path / "src", data), backend.CHUNK_SIZE)
    assert [len(c) for c in chunks] == [backend.CHUNK_SIZE, backend.CHUNK_SIZE, 5]
    assert digest == reference_digest(data)


@pytest.mark.parametrize("backend", BACKENDS)
def test_chunks_stay_valid_after_later_calls(tmp_path, backend):
    data = os.urandom(10 * SMALL_CHUNK + 3)
    path = write_file(tmp_path / "src", data)
    reader = backend.FileReader(path, SMALL_CHUNK)
    views = []
    while True:
        chunk = reader.next_chunk()
        if chunk is None:
            break
        views.append(memoryview(chunk))  # as zmq would hold it, copy=False
        del chunk
    reader.close()
    gc.collect()
    os.unlink(path)  # nothing may depend on the file any more
    assert b"".join(v.tobytes() for v in views) == data


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_dropped_chunk_buffer_is_reused(tmp_path, backend):
    data = os.urandom(40 * SMALL_CHUNK)
    slots = set()
    with backend.FileReader(write_file(tmp_path / "src", data), SMALL_CHUNK) as reader:
        received = []
        while (chunk := reader.next_chunk()) is not None:
            pool = backend._pool[SMALL_CHUNK]
            slot = next(i for i, buffer in enumerate(pool) if buffer is chunk)  # StopIteration: not pooled
            slots.add(slot)
            received.append(bytes(chunk))
            del chunk
    assert b"".join(received) == data
    assert len(slots) == 1, "each chunk was dropped before the next: one buffer serves them all"


@pytest.mark.parametrize("backend", BACKENDS)
def test_chunks_zeromq_still_holds_are_not_reused(tmp_path, backend):
    """Every chunk sent with copy=False before the receiver reads any: none may be overwritten."""
    import zmq
    data = os.urandom(64 * (1 << 16))  # chunks above pyzmq's copy threshold, so it keeps references
    ctx = zmq.Context()
    push, pull = ctx.socket(zmq.PUSH), ctx.socket(zmq.PULL)
    try:
        push.setsockopt(zmq.SNDHWM, 0)
        pull.setsockopt(zmq.RCVHWM, 0)
        port = pull.bind_to_random_port("tcp://127.0.0.1")
        push.connect(f"tcp://127.0.0.1:{port}")
        with backend.FileReader(write_file(tmp_path / "src", data), 1 << 16) as reader:
            while (chunk := reader.next_chunk()) is not None:
                push.send(chunk, copy=False)
                del chunk
        received = b"".join(pull.recv() for _ in range(64))
    finally:
        push.close(0)
        pull.close(0)
        ctx.term()
    assert received == data


@pytest.mark.parametrize("backend", BACKENDS)
def test_digest_valid_with_last_chunk(tmp_path, backend):
    """A sender puts the digest on the last chunk, before asking for the next one (None)."""
    data = os.urandom(3 * SMALL_CHUNK)
    with backend.FileReader(write_file(tmp_path / "src", data), SMALL_CHUNK) as reader:
        for _ in range(3):
            with pytest.raises(RuntimeError):
                reader.hexdigest()
            reader.next_chunk()
        assert reader.hexdigest() == reference_digest(data)
        assert reader.next_chunk() is None


@pytest.mark.parametrize("backend", BACKENDS)
def test_reader_errors(tmp_path, backend):
    with pytest.raises(FileNotFoundError):
        backend.FileReader(str(tmp_path / "missing"))
    with pytest.raises(ValueError):
        backend.FileReader(write_file(tmp_path / "x", b"x"), 0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_reader_detects_a_file_that_shrank(tmp_path, backend):
    path = write_file(tmp_path / "src", os.urandom(4 * SMALL_CHUNK))
    with backend.FileReader(path, SMALL_CHUNK) as reader:
        reader.next_chunk()
        os.truncate(path, SMALL_CHUNK + 10)
        with pytest.raises(OSError) as caught:
            reader.next_chunk()
        assert caught.value.errno == errno.EIO


@pytest.mark.parametrize("backend", BACKENDS)
def test_writer_finish_mode_and_rename(tmp_path, backend):
    partial, final = str(tmp_path / "partial"), str(tmp_path / "final")
    writer = backend.FileWriter(partial)
    assert os.stat(partial).st_mode & 0o777 == 0o600
    writer.write(b"hello ")
    writer.write(bytearray(b"world"))
    writer.write(memoryview(b"!!")[:1])
    assert writer.size == 12
    assert writer.finish(final, 0o755) == reference_digest(b"hello world!")
    assert not os.path.exists(partial)
    assert os.stat(final).st_mode & 0o777 == 0o755
    with open(final, "rb") as f:
        assert f.read() == b"hello world!"
    writer.abort()  # after finish: must not remove the finished file
    assert os.path.exists(final)


@pytest.mark.parametrize("backend", BACKENDS)
def test_writer_truncates_existing(tmp_path, backend):
    path = write_file(tmp_path / "f", b"old content, longer")
    with backend.FileWriter(path) as writer:
        writer.write(b"new")
    with open(path, "rb") as f:
        assert f.read() == b"new"


@pytest.mark.parametrize("backend", BACKENDS)
def test_writer_abort_removes_file(tmp_path, backend):
    path = str(tmp_path / "partial")
    writer = backend.FileWriter(path)
    writer.write(os.urandom(1000))
    writer.abort()
    assert not os.path.exists(path)
    writer.abort()  # twice is harmless
    with pytest.raises(ValueError):
        writer.write(b"x")


@pytest.mark.parametrize("backend", BACKENDS)
def test_writer_context_aborts_on_exception(tmp_path, backend):
    path = str(tmp_path / "partial")
    with pytest.raises(KeyError):
        with backend.FileWriter(path) as writer:
            writer.write(b"some bytes")
            raise KeyError("boom")
    assert not os.path.exists(path)


@pytest.mark.parametrize("backend", BACKENDS)
def test_writer_takes_zmq_frame_buffer(tmp_path, backend):
    import zmq
    data = os.urandom(100_000)
    frame = zmq.Frame(data)
    path = str(tmp_path / "f")
    writer = backend.FileWriter(path)
    writer.write(frame.buffer)
    assert writer.finish() == reference_digest(data)
    with open(path, "rb") as f:
        assert f.read() == data


@pytest.fixture
def tiny_tmpfs():
    """A 1 MiB tmpfs, to run out of space for real. Needs root and a mount-capable container."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("ENOSPC test needs root to mount a 1 MiB tmpfs")
    mountpoint = tempfile.mkdtemp(prefix="wq-fastio-tmpfs-")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", mountpoint],
                          capture_output=True, text=True)
    if done.returncode != 0:
        os.rmdir(mountpoint)
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", mountpoint], check=False)
        os.rmdir(mountpoint)


@pytest.mark.parametrize("backend", BACKENDS)
def test_disk_full_raises_and_abort_cleans_up(tiny_tmpfs, backend):
    path = os.path.join(tiny_tmpfs, "partial")
    chunk = os.urandom(256 * 1024)
    writer = backend.FileWriter(path)
    with pytest.raises(OSError) as caught:
        for _ in range(16):  # 4 MiB into 1 MiB
            writer.write(chunk)
    assert caught.value.errno == errno.ENOSPC
    writer.abort()
    assert os.listdir(tiny_tmpfs) == []
    # the context manager does the same on its own
    with pytest.raises(OSError):
        with backend.FileWriter(path) as writer:
            for _ in range(16):
                writer.write(chunk)
    assert os.listdir(tiny_tmpfs) == []


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(size=st.integers(0, 300_000), chunk_size=st.integers(1, 70_000), seed=st.integers(0, 2**32))
def test_property_backends_agree(tmp_path, size, chunk_size, seed):
    data = random.Random(seed).randbytes(size)
    path = write_file(tmp_path / "src", data)
    expected = reference_digest(data)
    results = []
    for backend in [_fastio_py] + ([_fastio] if _fastio else []):
        chunks, digest = read_all(backend, path, chunk_size)
        assert [len(c) for c in chunks] == [min(chunk_size, size - o) for o in range(0, size, chunk_size)]
        target = str(tmp_path / f"copy-{backend.__name__}")
        digests = copy_through(backend, path, target, chunk_size)
        with open(target, "rb") as f:
            assert f.read() == data
        results.append((b"".join(bytes(c) for c in chunks), digest, digests))
    for joined, digest, digests in results:
        assert joined == data
        assert digest == expected and digests == (expected, expected)


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_one_gib_transfer_constant_memory(tmp_path, backend):
    import psutil
    source, target = str(tmp_path / "src"), str(tmp_path / "dst")
    block = os.urandom(1 << 20)
    with open(source, "wb") as f:
        for _ in range(1024):
            f.write(block)
    del block
    expected = _fastio_py.hash_file(source)
    process = psutil.Process()
    before = process.memory_info().rss
    peak = before
    with backend.FileReader(source) as reader, backend.FileWriter(target + ".part") as writer:
        while True:
            chunk = reader.next_chunk()
            if chunk is None:
                break
            writer.write(chunk)
            peak = max(peak, process.memory_info().rss)
        assert writer.finish(target) == reader.hexdigest() == expected
    assert os.path.getsize(target) == 1 << 30
    assert peak - before < 100 * (1 << 20), f"RSS grew by {(peak - before) >> 20} MiB"


@pytest.mark.parametrize("backend", BACKENDS)
def test_writer_closed_early_still_finishes_or_aborts(tmp_path, backend):
    done = backend.FileWriter(tmp_path / "done.part")
    done.write(b"complete")
    done.close()
    done.finish(tmp_path / "done", 0o644)
    assert (tmp_path / "done").read_bytes() == b"complete"
    dropped = backend.FileWriter(tmp_path / "dropped.part")
    dropped.write(b"unwanted")
    dropped.close()
    dropped.abort()
    assert sorted(os.listdir(tmp_path)) == ["done"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_reader_given_the_digest_gives_the_same_bytes_and_that_digest(backend, tmp_path):
    data = os.urandom(3 * SMALL_CHUNK + 5)
    path = write_file(tmp_path / "src", data)
    with backend.FileReader(path, SMALL_CHUNK, "f" * 32) as reader:
        chunks = []
        while (chunk := reader.next_chunk()) is not None:
            chunks.append(bytes(chunk))
        assert b"".join(chunks) == data
        assert reader.hexdigest() == "f" * 32, "a known digest is passed on, not computed again"
