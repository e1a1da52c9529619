"""Inputs a worker downloads itself (``File.url``): the download, in a fetcher thread (never in the
worker's loop), to a temporary file the loop then takes into the cache, named by its content."""
from __future__ import annotations

from typing import Optional

from . import fastio

URL_TIMEOUT = 30.0  # seconds a server has to answer, and between two reads
URL_SCHEMES = ("http://", "https://")


class UrlFailed(Exception):
    """The server refused (an HTTP status), or could not be reached."""


def download(url: str, tmp_path: str, timeout: float = URL_TIMEOUT, max_bytes: Optional[int] = None) -> int:
    """Write what ``url`` serves to ``tmp_path``, at most ``max_bytes`` (the worker's disk budget);
    return its size. Raises UrlFailed saying why."""
    if not url.startswith(URL_SCHEMES):
        raise UrlFailed(f"{url[:200]!r}: only http:// and https:// URLs are fetched")
    # imported here: urllib.request (http.client, email) would add a tenth to every worker's start
    import urllib.error
    import urllib.request
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(tmp_path, "wb") as out:
            size = 0
            while True:
                chunk = response.read(fastio.CHUNK_SIZE)
                if not chunk:
                    return size
                size += len(chunk)
                if max_bytes is not None and size > max_bytes:
                    raise UrlFailed(f"{url[:200]}: more than this worker's disk budget of {max_bytes} bytes")
                out.write(chunk)
    except urllib.error.HTTPError as error:
        raise UrlFailed(f"{url[:200]}: HTTP {error.code} {error.reason}") from None
    except (urllib.error.URLError, OSError, ValueError) as error:
        reason = getattr(error, "reason", error)
        raise UrlFailed(f"{url[:200]}: {reason}") from None
