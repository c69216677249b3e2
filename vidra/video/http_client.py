"""HTTP plumbing for remote videos: options, a keep-alive GET client, a page LRU, identity.

`HttpClient` follows redirects, sends Basic auth from the URL to its own host only, and
retries network errors and 5xx with backoff; every error it reports is one line without
credentials. `http_identity` asks for the first byte to learn size, ETag and Last-Modified.
No file semantics here (see `vidra.video.http_source`).
"""

from __future__ import annotations

import base64
import email.utils
import http.client
import socket
import ssl
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import unquote, urljoin, urlsplit

from vidra.errors import VideoNotFound, VideoUnreadable
from vidra.video.identity import VideoIdentity

__all__ = [
    "BlockCache",
    "FetchError",
    "HttpClient",
    "RemoteOptions",
    "http_identity",
    "mtime_ns",
    "one_line",
]

T = TypeVar("T")

_REDIRECTS = 5
_USER_AGENT = "vidra (range reader)"


@dataclass(frozen=True)
class RemoteOptions:
    """How remote sources are read (see `vidra.config.VideoSettings` for each field's help)."""

    timeout_s: float = 20.0
    retries: int = 2
    block_bytes: int = 1 << 20
    cache_bytes: int = 64 << 20
    revalidate_s: float = 30.0


class FetchError(Exception):
    """A request that failed after its retries; ``cause`` is one line without credentials."""

    def __init__(self, cause: str) -> None:
        super().__init__(cause)
        self.cause = cause


class BlockCache:
    """Thread-safe LRU of fetched blocks bounded by bytes; keys name the file's identity."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[tuple[str, int, int], bytes] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: tuple[str, int, int]) -> bytes | None:
        with self._lock:
            data = self._items.get(key)
            if data is not None:
                self._items.move_to_end(key)
            return data

    def put(self, key: tuple[str, int, int], data: bytes) -> None:
        with self._lock:
            if key in self._items or len(data) > self.max_bytes:
                return
            self._items[key] = data
            self._bytes += len(data)
            self._evict()

    def resize(self, max_bytes: int) -> None:
        with self._lock:
            self.max_bytes = max_bytes
            self._evict()

    def _evict(self) -> None:
        while self._bytes > self.max_bytes and self._items:
            _, old = self._items.popitem(last=False)
            self._bytes -= len(old)


def one_line(exc: BaseException) -> str:
    """A short single-line description of a network error."""
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, socket.gaierror):
        return "the host name cannot be resolved"
    if isinstance(exc, TimeoutError | socket.timeout):
        return "timed out"
    if isinstance(exc, http.client.RemoteDisconnected):
        return "the server closed the connection without a response"
    if isinstance(exc, http.client.IncompleteRead):
        return f"the response ended early ({exc.expected} bytes missing)"
    text = " ".join(str(exc).split()) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:200]


class _ServerError(Exception):
    """A 5xx answer: worth another try."""


_STALE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)


class HttpClient:
    """GETs over one keep-alive connection: redirects, Basic auth from the URL, retries."""

    def __init__(self, url: str, options: RemoteOptions) -> None:
        self.url = url
        self.options = options
        parts = urlsplit(url)
        self.origin = (parts.hostname, parts.port)
        self.auth = ""
        if parts.username is not None:
            raw = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            self.auth = "Basic " + base64.b64encode(raw.encode()).decode()
        self._conn: http.client.HTTPConnection | None = None
        self._conn_key = ("", "")

    def fetch(self, headers: dict[str, str], handle: Callable[[http.client.HTTPResponse], T]) -> T:
        """GET ``self.url`` and let ``handle`` read the response; network errors and 5xx retry.

        A kept-alive connection that the server closed meanwhile is reopened once for free.

        Raises:
            FetchError: every try failed; anything ``handle`` raises passes through.
        """
        tries = self.options.retries + 1
        cause, attempt, stale_retried = "", 0, False
        while attempt < tries:
            if attempt:
                time.sleep(min(2.0, 0.2 * 2 ** (attempt - 1)))
            reused = self._conn is not None
            try:
                return self._once(headers, handle)
            except (OSError, http.client.HTTPException) as exc:
                self.close()
                if reused and not stale_retried and isinstance(exc, _STALE):
                    stale_retried = True
                    continue
                cause = one_line(exc)
            except _ServerError as exc:
                cause = str(exc)
            attempt += 1
        raise FetchError(f"{cause} (after {tries} tries)")

    def _once(self, headers: dict[str, str], handle: Callable[[http.client.HTTPResponse], T]) -> T:
        try:
            resp = self._send(headers)
            if resp.status >= 500:
                raise _ServerError(f"HTTP {resp.status} {resp.reason}")
            result = handle(resp)
        except (OSError, http.client.HTTPException):
            raise
        except BaseException:
            self.close()
            raise
        if not resp.isclosed():  # body left unread: the connection cannot be reused
            self.close()
        return result

    def _send(self, headers: dict[str, str]) -> http.client.HTTPResponse:
        url = self.url
        for _ in range(_REDIRECTS + 1):
            parts = urlsplit(url)
            conn = self._connection(parts.scheme, parts.netloc)
            hdrs = {"User-Agent": _USER_AGENT, **headers}
            if self.auth and (parts.hostname, parts.port) == self.origin:  # not to other hosts
                hdrs["Authorization"] = self.auth
            target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            conn.request("GET", target, headers=hdrs)
            resp = conn.getresponse()
            location = resp.getheader("Location")
            if resp.status not in (301, 302, 303, 307, 308) or not location:
                return resp
            resp.read()
            url = urljoin(url, location)
        raise FetchError(f"more than {_REDIRECTS} redirects")

    def _connection(self, scheme: str, netloc: str) -> http.client.HTTPConnection:
        if self._conn is not None and self._conn_key == (scheme, netloc):
            return self._conn
        self.close()
        parts = urlsplit(f"{scheme}://{netloc}")
        host, port, timeout = parts.hostname or "", parts.port, self.options.timeout_s
        if scheme == "https":
            ctx = ssl.create_default_context()
            self._conn = http.client.HTTPSConnection(host, port, timeout=timeout, context=ctx)
        else:
            self._conn = http.client.HTTPConnection(host, port, timeout=timeout)
        self._conn_key = (scheme, netloc)
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def mtime_ns(resp: http.client.HTTPResponse) -> int:
    """``Last-Modified`` of a response in ns (whole seconds), or 0 when absent or invalid."""
    value = resp.getheader("Last-Modified")
    if not value:
        return 0
    try:
        return int(email.utils.parsedate_to_datetime(value).timestamp()) * 1_000_000_000
    except (TypeError, ValueError):
        return 0


def _identity_from(resp: http.client.HTTPResponse, display: str) -> VideoIdentity:
    status = f"HTTP {resp.status} {resp.reason}"
    if resp.status == 206:
        total = (resp.getheader("Content-Range") or "").rpartition("/")[2]
        resp.read()
        if not total.isdigit():
            raise VideoUnreadable(display, f"{status} without a file size; serve it with one")
        size = int(total)
    elif resp.status == 200:
        length = resp.getheader("Content-Length") or ""
        if not length.isdigit():
            raise VideoUnreadable(
                display,
                "the server does not say how long the file is (no Content-Length); "
                "download it and pass the local path",
            )
        size = int(length)
    elif resp.status == 416:
        size = 0
    elif resp.status in (404, 410):
        raise VideoNotFound(display, f"{status}: no such file on the server; check the URL")
    elif resp.status in (401, 403):
        raise VideoNotFound(
            display, f"{status}: access denied; check the credentials or renew the signed URL"
        )
    else:
        raise VideoNotFound(display, f"{status}; check the URL")
    if size == 0:
        raise VideoUnreadable(display, "empty file (0 bytes) on the server; check the upload")
    return VideoIdentity(display, size, mtime_ns(resp), resp.getheader("ETag") or "")


def http_identity(url: str, display: str, options: RemoteOptions) -> VideoIdentity:
    """Who the file at ``url`` is, from one ``GET`` of its first byte.

    Raises:
        VideoNotFound: 404/403 and other refusals, or the server cannot be reached.
        VideoUnreadable: the file is empty or its size is not given.
    """
    client = HttpClient(url, options)
    try:
        return client.fetch({"Range": "bytes=0-0"}, lambda r: _identity_from(r, display))
    except FetchError as exc:
        raise VideoNotFound(
            display, f"cannot be reached ({exc.cause}); check the URL and that the server is up"
        ) from exc
    finally:
        client.close()
