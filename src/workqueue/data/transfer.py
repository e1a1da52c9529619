"""Chunked, flow-controlled streams of files between master and worker, in both directions.

Each peer has one ``Outbox``: messages and file streams leave in the order they were queued (so a
task always follows the files it needs), and a stream may have at most ``window`` chunks that the
receiver has not acknowledged. Memory therefore stays bounded by the window, whatever the file size.
The receiving side is ``Incoming``: chunks go to a temporary file through ``fastio`` and the digest,
computed on the same pass, is checked against the sender's before the file is accepted.
"""
from __future__ import annotations

import collections
import logging
import os
from typing import Any, Callable, Deque, List, Optional, Tuple, Union

from ..wire import protocol
from . import fastio

log = logging.getLogger(__name__)

WINDOW = 8
# chunks in flight from the master to all its workers together: bounds its memory, and is large
# enough that a few stopped workers (whose unacknowledged chunks hold credits until they are
# declared lost) do not stall everyone else's transfers
OVERALL_WINDOW = 128
BUNDLE_MAX = 256  # plain messages sent as one bundle
Frames = List[Any]


class TransferError(Exception):
    """A stream arrived out of order, truncated, or with the wrong digest."""


class FileSource:
    """Chunks of a local file: each a buffer filled by one read with the GIL released, that ZeroMQ
    sends without copying and lets go of when sent, for the reader to reuse (so memory stays
    bounded by the window).

    A file whose ``digest`` is known (the master's memo of its inputs, a cached file named by its
    digest) is not hashed again on the way out: the receiver hashes what it writes and refuses
    bytes that do not match the digest announced, so a file changed since it was hashed is caught
    there all the same."""

    def __init__(self, path: str, chunk_size: int = fastio.CHUNK_SIZE, digest: Optional[str] = None) -> None:
        self._reader = fastio.FileReader(path, chunk_size, digest)
        self.size = self._reader.size
        self._sent = 0

    def next_chunk(self) -> Tuple[Any, bool]:
        chunk = self._reader.next_chunk()
        if chunk is None:
            return b"", True
        self._sent += len(chunk)
        return chunk, self._sent >= self.size

    def hexdigest(self) -> str:
        return self._reader.hexdigest()

    def close(self) -> None:
        self._reader.close()


class BytesSource:
    """Chunks of an in-memory buffer (``specify_buffer`` inputs)."""

    def __init__(self, data: bytes, chunk_size: int = fastio.CHUNK_SIZE) -> None:
        self._view = memoryview(data)
        self.size = len(data)
        self._chunk_size = chunk_size
        self._pos = 0
        self._digest = fastio.hash_bytes(data)

    def next_chunk(self) -> Tuple[Any, bool]:
        chunk = self._view[self._pos:self._pos + self._chunk_size]
        self._pos += len(chunk)
        return chunk, self._pos >= self.size

    def hexdigest(self) -> str:
        return self._digest

    def close(self) -> None:
        self._view.release()


Source = Union[FileSource, BytesSource]


class _Stream:
    def __init__(self, xfer: int, header: Frames, source: Source) -> None:
        self.xfer = xfer
        self.header = header
        self.source = source
        self.started = False
        self.seq = 0
        self.unsent: Optional[Tuple[Frames, int, bool]] = None  # a chunk a full socket refused


class Credits:
    """Chunks that may be in flight over several outboxes together: what bounds the master's
    memory when it feeds many workers at once (each outbox alone is bounded by its window)."""

    def __init__(self, total: int = OVERALL_WINDOW) -> None:
        self.free = total


class Outbox:
    """The ordered queue of everything one peer has yet to receive from us."""

    def __init__(self, window: int = WINDOW, credits: Optional[Credits] = None) -> None:
        self.window = window
        self.credits = credits
        self._items: Deque[Union[Frames, _Stream]] = collections.deque()
        self._unacked = 0
        self.bytes_sent = 0

    def message(self, frames: Frames) -> None:
        self._items.append(frames)

    def stream(self, xfer: int, header: Frames, source: Source) -> None:
        self._items.append(_Stream(xfer, header, source))

    def ack(self) -> None:
        if self._unacked:
            self._unacked -= 1
            if self.credits is not None:
                self.credits.free += 1

    @property
    def pending(self) -> bool:
        return bool(self._items)

    @property
    def settled(self) -> bool:
        """Nothing left to send, and all that was sent acknowledged."""
        return not self._items and not self._unacked

    @property
    def streaming(self) -> bool:
        """True while a file is on its way (messages alone do not count)."""
        return any(isinstance(item, _Stream) for item in self._items)

    def pump(self, send: Callable[[Frames], None], chunks: Optional[int] = None) -> int:
        """Send what the window and the credits allow, in order, but at most ``chunks`` chunks;
        return how many chunks went. If ``send`` raises (a full or unconnected socket), nothing
        is lost: the item that failed is sent first next time."""
        items = self._items
        sent = 0
        while items:
            if isinstance(items[0], list):
                self._send_messages(send)
                continue
            done, count = self._send_chunks(items[0], send, chunks if chunks is None else chunks - sent)
            sent += count
            if not done:
                break
            items.popleft()
        return sent

    def _send_messages(self, send: Callable[[Frames], None]) -> None:
        """The plain messages at the head of the queue, as one bundle."""
        items = self._items
        run = []
        for item in items:
            if not isinstance(item, list) or len(run) == BUNDLE_MAX:
                break
            run.append(item)
        send(protocol.bundle(run))
        for _ in run:
            items.popleft()

    def _send_chunks(self, stream: _Stream, send: Callable[[Frames], None],
                     limit: Optional[int]) -> Tuple[bool, int]:
        """Chunks of one stream while the window, the credits and ``limit`` allow: (finished, sent)."""
        if not stream.started:
            send(stream.header)
            stream.started = True
        sent = 0
        while self._unacked < self.window and (limit is None or sent < limit) and \
                (self.credits is None or self.credits.free > 0):
            if stream.unsent is None:
                stream.unsent = self._next_chunk_message(stream)
            frames, size, last = stream.unsent
            send(frames)
            stream.unsent = None
            self.bytes_sent += size
            stream.seq += 1
            self._unacked += 1
            sent += 1
            if self.credits is not None:
                self.credits.free -= 1
            if last:
                stream.source.close()
                return True, sent
        return False, sent

    @staticmethod
    def _next_chunk_message(stream: _Stream) -> Tuple[Frames, int, bool]:
        chunk, last = stream.source.next_chunk()
        digest = stream.source.hexdigest() if last else ""
        frames = protocol.encode("chunk", [chunk], xfer=stream.xfer, seq=stream.seq, last=last, digest=digest)
        return frames, len(chunk), last

    def close(self) -> None:
        for item in self._items:
            if isinstance(item, _Stream):
                item.source.close()
        self._items.clear()
        if self.credits is not None:
            self.credits.free += self._unacked  # what a lost peer never acknowledged
        self._unacked = 0


class Incoming:
    """One file arriving in chunks, written to ``tmp_path`` until it is complete and verified."""

    def __init__(self, tmp_path: str, expected_digest: str = "", expected_size: int = -1) -> None:
        self.tmp_path = tmp_path
        self.expected_digest = expected_digest
        self.expected_size = expected_size
        self._writer = fastio.FileWriter(tmp_path)
        self._next_seq = 0
        self.digest: Optional[str] = None

    @property
    def size(self) -> int:
        return self._writer.size

    def add(self, seq: int, data: Any, last: bool, sender_digest: str) -> bool:
        """Write one chunk; return True when the file is complete and verified.

        A chunk that would take the file past its expected size is refused before it is written:
        the sender's declared size bounds what it can make us store."""
        if seq != self._next_seq:
            raise TransferError(f"chunk {seq} arrived, expected {self._next_seq}")
        if self.expected_size >= 0 and self._writer.size + len(data) > self.expected_size:
            raise TransferError(f"chunk {seq} of {len(data)} bytes would take the file past its "
                                f"declared {self.expected_size} bytes")
        self._next_seq += 1
        self._writer.write(data)
        if not last:
            return False
        digest = self._writer.hexdigest()
        if digest != sender_digest or (self.expected_digest and digest != self.expected_digest):
            raise TransferError(f"digest mismatch: received {digest}, sender says {sender_digest}")
        if self.expected_size >= 0 and self._writer.size != self.expected_size:
            raise TransferError(f"size mismatch: received {self._writer.size}, expected {self.expected_size}")
        self.digest = digest
        self._writer.close()
        return True

    def finish(self, final_path: Optional[str] = None, mode: Optional[int] = None) -> None:
        self._writer.finish(final_path, mode)

    def abort(self) -> None:
        self._writer.abort()


def partial_name(final_path: str, tag: str) -> str:
    """A temporary name beside ``final_path``: a half-received file is never under its final name."""
    head, tail = os.path.split(final_path)
    return os.path.join(head, f".{tail}.wq-partial-{tag}")
