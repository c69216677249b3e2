"""HTTP(S) video bytes by ``Range`` requests: a seekable read-only file over a block cache.

64 KiB pages are fetched on demand into a bounded LRU shared by every open of one file:
a read after a seek asks for one page, and each further page read in sequence doubles
the next request, up to ``block_bytes`` (read-ahead that follows FFmpeg's forward decode
without over-reading sparse seeks). Each response is checked against the identity the
file was opened for; the whole file is downloaded once only where the server ignores
ranges. Knows nothing of media formats.
"""

from __future__ import annotations

import atexit
import http.client
import io
import logging
import shutil
import tempfile
import threading
from collections import OrderedDict
from pathlib import Path
from typing import BinaryIO

from vidra.errors import VideoUnreadable
from vidra.video.http_client import BlockCache, FetchError, HttpClient, RemoteOptions, mtime_ns
from vidra.video.identity import VideoIdentity

__all__ = ["HttpSource"]

log = logging.getLogger(__name__)

_DOWNLOADS_KEPT = 4
_PAGE = 64 << 10  # cache unit; requests are runs of pages up to ``block_bytes``


class _Downloads:
    """Whole files fetched from servers that ignore ranges: at most a few, deleted at exit."""

    def __init__(self) -> None:
        self.lock = threading.Lock()  # guards ``files``; held briefly
        self.files: OrderedDict[str, Path] = OrderedDict()
        self._dir: Path | None = None
        self._key_locks: dict[str, threading.Lock] = {}

    def key_lock(self, key: str) -> threading.Lock:
        """Held while ``key`` downloads, so each file is downloaded once at a time."""
        with self.lock:
            return self._key_locks.setdefault(key, threading.Lock())

    def open(self, key: str) -> BinaryIO | None:
        """The downloaded file for ``key``, opened, or ``None`` (call under ``lock``)."""
        path = self.files.get(key)
        if path is None:
            return None
        try:
            return open(path, "rb")
        except FileNotFoundError:  # removed under us (a temp cleaner): download again
            del self.files[key]
            return None

    def new_path(self, key: str) -> Path:
        with self.lock:
            return self._new_path(key)

    def _new_path(self, key: str) -> Path:
        if self._dir is None:
            self._dir = Path(tempfile.mkdtemp(prefix="vidra-remote-"))
            atexit.register(shutil.rmtree, self._dir, True)
        return self._dir / f"{key}.bin"

    def add(self, key: str, path: Path) -> None:
        """Remember ``path`` for ``key`` (call under ``lock``); the oldest files go."""
        self.files[key] = path
        while len(self.files) > _DOWNLOADS_KEPT:  # open readers keep their (unlinked) file
            _, old = self.files.popitem(last=False)
            old.unlink(missing_ok=True)


_DOWNLOADS = _Downloads()


class HttpSource(io.RawIOBase):
    """The file at an http(s) URL as a seekable read-only binary file, for one reader.

    A failed or inconsistent read ends the file early (``read`` returns ``b""``) and keeps a
    `VideoUnreadable` in ``failure``, which `vidra.video.sources.opened` raises once the
    decoder returns; ``pread`` raises it at once.
    """

    def __init__(
        self, url: str, identity: VideoIdentity, options: RemoteOptions, cache: BlockCache
    ) -> None:
        super().__init__()
        self.identity = identity
        self.size = identity.size
        self.failure: VideoUnreadable | None = None
        self._client = HttpClient(url, options)
        self._cache = cache
        self._page = min(_PAGE, options.block_bytes)
        self._max_pages = max(1, options.block_bytes // self._page)
        self._window = 1  # pages per request now
        self._pos = 0
        self._last: tuple[int, bytes] = (-2, b"")  # (page index, bytes) last read; -2: none
        with _DOWNLOADS.lock:
            self._file: BinaryIO | None = _DOWNLOADS.open(identity.key)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence not in (io.SEEK_SET, io.SEEK_CUR, io.SEEK_END):
            raise ValueError(f"unsupported whence {whence}")
        base = (0, self._pos, self.size)[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        memoryview(buffer).cast("B")[: len(data)] = data
        return len(data)

    def read(self, size: int | None = -1) -> bytes:
        end = self.size if size is None or size < 0 else min(self.size, self._pos + size)
        if self._pos >= end:
            return b""
        try:
            data = self.pread(self._pos, end - self._pos, cached=True)
        except VideoUnreadable:
            return b""  # kept in ``failure``; raising inside FFmpeg's read callback only logs
        self._pos += len(data)
        return data

    def pread(self, offset: int, length: int, cached: bool = False) -> bytes:
        """``length`` bytes at ``offset`` (fewer at EOF); ``cached=False``: one exact request."""
        if self.failure is not None:
            raise self.failure
        end = min(self.size, offset + length)
        if end <= offset:
            return b""
        try:
            if self._file is None:
                data = self._blocks(offset, end) if cached else self._fetch(offset, end - 1)
                if data is not None:
                    return data
            assert self._file is not None  # a 200 answer switched this source to a download
            self._file.seek(offset)
            return self._file.read(end - offset)
        except VideoUnreadable as exc:
            self.failure = exc
            raise

    def prefetch(self, lo: int, hi: int) -> None:
        """Fetch the pages of bytes ``lo..hi`` (exclusive) not yet cached, in as few requests
        of at most ``block_bytes`` as they allow; skipped for spans too large to keep cached.
        """
        if self._file is not None or self.failure is not None:
            return
        hi = min(hi, self.size)
        if hi <= lo or hi - lo > self._cache.max_bytes // 4:
            return
        i, last = lo // self._page, (hi - 1) // self._page
        while i <= last:
            if self._cache.get(self._key(i)) is not None:
                i += 1
                continue
            j = i + 1
            while j <= last and j - i < self._max_pages and self._cache.get(self._key(j)) is None:
                j += 1
            try:
                run = self._fetch(i * self._page, min(self.size, j * self._page) - 1)
            except VideoUnreadable as exc:
                self.failure = exc
                raise
            if run is None:  # the server sent the whole file: reads come from it now
                return
            for k in range(j - i):
                self._cache.put(self._key(i + k), run[k * self._page : (k + 1) * self._page])
            i = j

    def _blocks(self, start: int, end: int) -> bytes | None:
        size = self._page
        parts: list[bytes] = []
        for i in range(start // size, (end - 1) // size + 1):
            page = self._get_page(i)
            if page is None:
                return None
            lo, hi = max(start, i * size) - i * size, min(end, (i + 1) * size) - i * size
            parts.append(page if (lo, hi) == (0, len(page)) else page[lo:hi])
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def _get_page(self, i: int) -> bytes | None:
        """Page ``i``; a miss fetches a run of missing pages, longer while reads run on."""
        if self._last[0] == i:
            return self._last[1]
        data = self._cache.get(self._key(i))
        if data is None:
            on = self._last[0] == i - 1  # read on from the previous page: read further ahead
            self._window = min(self._max_pages, 2 * self._window) if on else 1
            n = 1
            while n < self._window and (i + n) * self._page < self.size:
                if self._cache.get(self._key(i + n)) is not None:
                    break
                n += 1
            lo = i * self._page
            run = self._fetch(lo, min(self.size, lo + n * self._page) - 1)
            if run is None:
                return None
            for k in range(n):
                self._cache.put(self._key(i + k), run[k * self._page : (k + 1) * self._page])
            data = run[: self._page]
        self._last = (i, data)
        return data

    def _key(self, i: int) -> tuple[str, int, int]:
        return (self.identity.key, self._page, i)

    def _fetch(self, lo: int, hi: int) -> bytes | None:
        """Bytes ``lo..hi`` (inclusive), or ``None`` once the file was downloaded instead."""
        try:
            return self._client.fetch(
                {"Range": f"bytes={lo}-{hi}"}, lambda r: self._take(r, lo, hi)
            )
        except FetchError as exc:
            raise self._changed(exc.cause) from exc

    def _take(self, resp: http.client.HTTPResponse, lo: int, hi: int) -> bytes | None:
        status = f"HTTP {resp.status} {resp.reason}"
        if resp.status == 200:
            self._download(resp)
            return None
        if resp.status in (404, 410):
            raise self._changed(f"{status}: the file is gone")
        if resp.status == 416:
            raise self._changed(f"{status} for bytes {lo}-{hi}: the file shrank")
        if resp.status != 206:
            raise self._changed(status)
        self._check_same(resp)
        got = (resp.getheader("Content-Range") or "").removeprefix("bytes ")
        if got != f"{lo}-{hi}/{self.size}":
            raise self._changed(f"asked for bytes {lo}-{hi}/{self.size}, got {got or 'none'}")
        data = resp.read()
        if len(data) != hi - lo + 1:
            raise http.client.IncompleteRead(data, hi - lo + 1 - len(data))
        return data

    def _check_same(self, resp: http.client.HTTPResponse) -> None:
        etag = resp.getheader("ETag") or ""
        if self.identity.etag and etag and etag != self.identity.etag:
            raise self._changed(f"its ETag {self.identity.etag} became {etag}")
        mtime = mtime_ns(resp)
        if not self.identity.etag and self.identity.mtime_ns and mtime != self.identity.mtime_ns:
            raise self._changed("its Last-Modified time changed")

    def _download(self, resp: http.client.HTTPResponse) -> None:
        """Take a whole-file answer: saved once, shared by every reader of this identity."""
        key = self.identity.key
        with _DOWNLOADS.key_lock(key):
            with _DOWNLOADS.lock:
                self._file = _DOWNLOADS.open(key)
            if self._file is not None:
                return  # another reader downloaded it meanwhile: this body is dropped
            self._check_same(resp)
            log.warning(
                "%s: the server ignores Range requests (HTTP 200); downloading the whole "
                "file (%.1f MB) once",
                self.identity.path,
                self.size / 1e6,
            )
            path = _DOWNLOADS.new_path(key)
            part = path.with_suffix(".part")
            with open(part, "wb") as fh:
                shutil.copyfileobj(resp, fh, 1 << 20)
                got = fh.tell()
            if got != self.size:
                part.unlink(missing_ok=True)
                raise http.client.IncompleteRead(b"", self.size - got)  # retried
            part.replace(path)
            with _DOWNLOADS.lock:
                _DOWNLOADS.add(key, path)
                self._file = _DOWNLOADS.open(key)

    def _changed(self, cause: str) -> VideoUnreadable:
        return VideoUnreadable(
            self.identity.path,
            f"the remote file changed or disappeared while decoding ({cause}); "
            "retry when the source is stable",
        )

    def close(self) -> None:
        self._client.close()
        if self._file is not None:
            self._file.close()
        self._last = (-2, b"")
        super().close()
