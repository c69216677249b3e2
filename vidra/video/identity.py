"""Video identity: a cheap key that changes when the file changes, and a content hash.

The identity key (path, size, mtime, and a remote file's ETag) keys probe results and the
frame cache; the content hash (sampled bytes + size) lets the store recognise a moved or
copied file. Remote sources (URLs) are answered by `vidra.video.sources`.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from vidra.errors import VideoNotFound, VideoUnreadable

__all__ = ["VideoIdentity", "content_hash", "identify", "is_remote"]

_HASH_CHUNK = 1 << 20
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*(::[A-Za-z][A-Za-z0-9+.\-]*)*://")


def is_remote(uri: object) -> bool:
    """True for a URL (``https://``, ``s3://``, ``memory://``, fsspec chains); False for paths.

    A `pathlib.Path` is always local (it cannot hold ``://``).
    """
    return isinstance(uri, str) and _SCHEME.match(uri) is not None


@dataclass(frozen=True)
class VideoIdentity:
    """Who a video file is: resolved path, byte size and modification time (ns).

    For a remote file: its URL without credentials, its size, its ``Last-Modified`` time
    (0 when not given) and its ``ETag`` (empty when not given).
    """

    path: str
    size: int
    mtime_ns: int
    etag: str = ""

    @property
    def key(self) -> str:
        """Short stable key for caches: 16 hex digits."""
        raw = f"{self.path}\0{self.size}\0{self.mtime_ns}"
        if self.etag:
            raw += f"\0{self.etag}"
        return hashlib.sha1(raw.encode()).hexdigest()[:16]


def identify(path: str | Path) -> VideoIdentity:
    """Check that ``path`` is a readable, non-empty regular file and return its identity.

    A URL is looked up remotely (`vidra.video.sources.remote_identity`).

    Raises:
        VideoNotFound: missing, a directory, not a regular file, or not readable.
        VideoUnreadable: the file is empty.
    """
    if is_remote(path):
        from vidra.video.sources import remote_identity

        return remote_identity(str(path))
    p = Path(path).expanduser()
    try:
        st = p.stat()
    except FileNotFoundError as exc:
        raise VideoNotFound(p, "no such file; check the path") from exc
    except PermissionError as exc:
        raise VideoNotFound(p, "permission denied; make the file and its folders readable") from exc
    except OSError as exc:
        raise VideoNotFound(p, f"cannot stat the file ({exc.strerror})") from exc
    if stat.S_ISDIR(st.st_mode):
        raise VideoNotFound(p, "is a directory; pass a video file inside it")
    if not stat.S_ISREG(st.st_mode):
        raise VideoNotFound(p, "is not a regular file (pipe, socket or device); pass a file")
    if not os.access(p, os.R_OK):
        raise VideoNotFound(p, "permission denied; make the file readable")
    try:
        with open(p, "rb") as fh:
            fh.read(1)
    except OSError as exc:
        raise VideoNotFound(p, f"cannot be read ({exc.strerror}); make the file readable") from exc
    if st.st_size == 0:
        raise VideoUnreadable(p, "empty file (0 bytes); the download or copy did not finish")
    return VideoIdentity(str(p.resolve()), st.st_size, st.st_mtime_ns)


def content_hash(path: str | Path) -> str:
    """SHA-256 over the size and up to three 1 MiB samples (start, middle, end) of the file.

    Cheap for hour-long videos and stable across copies and renames. A remote file with a
    strong ``ETag`` hashes its size and ETag instead (no bytes read); without one, its
    samples are read by range requests, so the same bytes hash the same anywhere.
    """
    if is_remote(path):
        return _remote_content_hash(str(path))
    p = Path(path)
    size = p.stat().st_size
    h = hashlib.sha256(str(size).encode())
    with open(p, "rb") as fh:
        for offset in _sample_offsets(size):
            fh.seek(offset)
            h.update(fh.read(_HASH_CHUNK))
    return h.hexdigest()


def _sample_offsets(size: int) -> list[int]:
    return sorted({0, max(0, size // 2 - _HASH_CHUNK // 2), max(0, size - _HASH_CHUNK)})


def _remote_content_hash(uri: str) -> str:
    from vidra.video.sources import opened, remote_identity

    ident = remote_identity(uri)
    h = hashlib.sha256(str(ident.size).encode())
    if ident.etag and not ident.etag.startswith("W/"):  # weak ETags may span other bytes
        h.update(ident.etag.encode())
        return h.hexdigest()
    with opened(uri, ident) as source:
        for offset in _sample_offsets(ident.size):
            h.update(source.pread(offset, _HASH_CHUNK))
    return h.hexdigest()
