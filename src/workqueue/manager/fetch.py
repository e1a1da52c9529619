"""``Manager.fetch``: a temporary file brought back from a worker that holds it, in the user's
thread, over the workers' own peer protocol (``worker.peers``): its bytes never pass through the
master's loop, which only says where the file is."""
from __future__ import annotations

import os
import tempfile
from typing import Any, Dict, List, Optional

import zmq

from ..data.transfer import TransferError, partial_name
from ..wire.protocol import ProtocolError
from ..worker.peers import PeerRefused, PeerUnreachable, fetch_from_peer

FETCH_TIMEOUT = 30.0  # seconds each holder has to answer


def fetch_temp(ctx: zmq.Context, where: Dict[str, Any], path: Optional[str], timeout: float) -> Optional[bytes]:
    """Try each holder in turn; the file goes to ``path`` (None: returned as bytes)."""
    if path is not None:
        return _fetch_to(ctx, where, os.path.abspath(path), timeout)
    with tempfile.TemporaryDirectory(prefix="wq-fetch-") as directory:
        target = os.path.join(directory, "file")
        _fetch_to(ctx, where, target, timeout)
        with open(target, "rb") as f:
            return f.read()


def _fetch_to(ctx: zmq.Context, where: Dict[str, Any], target: str, timeout: float) -> None:
    failures: List[str] = []
    for source, curve_key in zip(where["sources"], where["curve_keys"]):
        try:
            incoming, mode = fetch_from_peer(ctx, source, where["digest"], where["key"],
                                             partial_name(target, "fetch"), where["size"], timeout, curve_key)
        except (PeerUnreachable, PeerRefused, TransferError, ProtocolError, OSError) as error:
            failures.append(f"{source}: {error}")
            continue
        incoming.finish(target, mode | 0o600)
        return None
    raise OSError(f"no worker could give the file ({'; '.join(failures)})")
