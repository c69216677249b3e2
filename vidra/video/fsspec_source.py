"""fsspec URLs (``s3://``, ``gs://``, ``memory://``, ...) as video sources.

Identity from ``fs.info``; bytes through ``fsspec.open(uri, "rb")`` and fsspec's own block
cache, checked against the identity: read errors and short reads become `VideoUnreadable`.
"""

from __future__ import annotations

import datetime as dt
import email.utils
from typing import Any

from vidra.errors import BackendUnavailable, VideoNotFound, VideoUnreadable
from vidra.video.http_client import one_line
from vidra.video.identity import VideoIdentity

__all__ = ["FsspecSource", "fsspec_identity"]


def _import_fsspec() -> Any:
    try:
        import fsspec
    except ImportError as exc:
        raise BackendUnavailable("fsspec", "remote", str(exc)) from exc
    return fsspec


def fsspec_identity(uri: str, display: str) -> VideoIdentity:
    """Who the file at an fsspec ``uri`` is, from ``fs.info`` (size, ETag, modification time).

    Raises:
        BackendUnavailable: fsspec, or the implementation for the scheme, is not installed.
        VideoNotFound: missing, a directory, refused, or unreachable.
        VideoUnreadable: empty.
    """
    fsspec = _import_fsspec()
    try:
        fs, path = fsspec.core.url_to_fs(uri)
    except (ImportError, ValueError) as exc:  # unknown protocol, implementation not installed
        scheme = uri.partition("://")[0]
        raise BackendUnavailable(f"fsspec:{scheme}", "remote", one_line(exc)) from exc
    try:
        info = fs.info(path)
    except FileNotFoundError as exc:
        raise VideoNotFound(display, "no such file; check the URL") from exc
    except PermissionError as exc:
        raise VideoNotFound(display, "permission denied; check the credentials") from exc
    except Exception as exc:  # backends raise their own types (botocore, google.auth, ...)
        cause = one_line(exc).replace(uri, display)
        raise VideoNotFound(
            display, f"cannot be reached ({cause}); check the URL and the credentials"
        ) from exc
    if info.get("type") == "directory":
        raise VideoNotFound(display, "is a directory; pass a video file inside it")
    size = int(info.get("size") or 0)
    if size <= 0:
        raise VideoUnreadable(display, "empty file (0 bytes); the upload did not finish")
    etag = str(info.get("ETag") or info.get("etag") or "")
    return VideoIdentity(display, size, _info_mtime_ns(info), etag)


def _info_mtime_ns(info: dict[str, Any]) -> int:
    for name in ("mtime", "LastModified", "last_modified", "updated", "modified", "created"):
        value = info.get(name)
        if isinstance(value, str):
            value = _parse_time(value)
        if isinstance(value, dt.datetime):
            return int(value.timestamp() * 1e6) * 1000
        if isinstance(value, int | float) and not isinstance(value, bool):
            return int(value * 1e6) * 1000
    return 0


def _parse_time(text: str) -> dt.datetime | None:
    try:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        pass
    try:
        return email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None


class FsspecSource:
    """An fsspec file checked against its identity: errors and short reads become failures."""

    def __init__(self, uri: str, identity: VideoIdentity) -> None:
        self.identity = identity
        self.failure: VideoUnreadable | None = None
        self._pos = 0
        try:
            self._file: Any = _import_fsspec().open(uri, "rb").open()
        except Exception as exc:
            raise self._changed(one_line(exc).replace(uri, identity.path)) from exc
        size = getattr(self._file, "size", None)
        if isinstance(size, int) and size != identity.size:
            self._file.close()
            raise self._changed(f"its size {identity.size} became {size}")

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = 0) -> int:
        base = (0, self._pos, self.identity.size)[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def read(self, size: int = -1) -> bytes:
        """Bytes from the position on; ``b""`` after a failure (kept in ``failure``)."""
        try:
            data = self.pread(self._pos, self.identity.size if size is None or size < 0 else size)
        except VideoUnreadable:
            return b""
        self._pos += len(data)
        return data

    def pread(self, offset: int, length: int) -> bytes:
        if self.failure is not None:
            raise self.failure
        want = max(0, min(length, self.identity.size - offset))
        try:
            self._file.seek(offset)
            data = bytes(self._file.read(want))
        except Exception as exc:
            self.failure = self._changed(one_line(exc))
            raise self.failure from exc
        if len(data) < want:
            self.failure = self._changed(f"{want - len(data)} bytes missing at {offset}")
            raise self.failure
        return data

    def prefetch(self, lo: int, hi: int) -> None:
        """A hint only: fsspec's own cache reads ahead by itself."""

    def _changed(self, cause: str) -> VideoUnreadable:
        return VideoUnreadable(
            self.identity.path,
            f"the remote file changed or disappeared while decoding ({cause}); "
            "retry when the source is stable",
        )

    def close(self) -> None:
        file = getattr(self, "_file", None)
        if file is not None:
            file.close()
