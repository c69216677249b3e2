"""Where video bytes come from: local paths, http(s) URLs (``Range`` requests), fsspec URLs.

`open_source` gives PyAV or torchcodec a seekable read-only file that fetches only what
is read; `remote_identity` says who a remote file is (size, ETag, Last-Modified);
`redact` strips credentials from URLs for messages and identities. No decoding here.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Protocol

from vidra.errors import VideoUnreadable
from vidra.video.fsspec_source import FsspecSource, fsspec_identity
from vidra.video.http_client import BlockCache, RemoteOptions, http_identity
from vidra.video.http_source import HttpSource
from vidra.video.identity import VideoIdentity, is_remote

if TYPE_CHECKING:
    from vidra.config import VideoSettings

__all__ = [
    "RemoteFile",
    "RemoteOptions",
    "configure_remote",
    "forget",
    "is_remote",
    "open_source",
    "opened",
    "redact",
    "remote_identity",
    "remote_options",
]

_SECRET_PARAMS = frozenset(
    {
        "access_token", "api_key", "apikey", "auth", "authorization", "credential", "expires",
        "id_token", "key", "key-pair-id", "password", "passwd", "policy", "secret", "sig",
        "signature", "token", "se", "sp", "spr", "sr", "st", "sv", "skoid", "sktid", "skt",
        "ske", "sks", "skv",
    }
)  # fmt: skip
_SECRET_PREFIXES = ("x-amz-", "x-goog-", "x-ms-")
_IDENTITIES_KEPT = 1024


class RemoteFile(Protocol):
    """What `open_source` returns: a seekable binary file, plus ``pread`` and ``failure``."""

    identity: VideoIdentity
    failure: VideoUnreadable | None

    def read(self, size: int = -1, /) -> bytes: ...

    def seek(self, offset: int, whence: int = 0, /) -> int: ...

    def tell(self) -> int: ...

    def pread(self, offset: int, length: int) -> bytes: ...

    def prefetch(self, lo: int, hi: int) -> None:
        """Hint: bytes ``lo..hi`` (exclusive) are about to be read."""
        ...

    def close(self) -> None: ...


def _secret(piece: str) -> bool:
    from urllib.parse import unquote_plus

    name = unquote_plus(piece.partition("=")[0]).lower()
    return name in _SECRET_PARAMS or name.startswith(_SECRET_PREFIXES)


def redact(uri: str) -> str:
    """``uri`` without user:password and without signing or token query parameters.

    Local paths come back unchanged; other query parameters keep their exact spelling.
    """
    if not is_remote(uri):
        return uri
    if "::" in uri.partition("://")[0]:  # fsspec chains: "simplecache::s3://..."
        return "::".join(redact(part) if "://" in part else part for part in uri.split("::"))
    scheme, _, rest = uri.partition("://")
    rest, hash_, fragment = rest.partition("#")
    rest, q, query = rest.partition("?")
    netloc, slash, path = rest.partition("/")
    netloc = netloc.rpartition("@")[2]
    kept = "&".join(p for p in query.split("&") if p and not _secret(p))
    return f"{scheme}://{netloc}{slash}{path}{q if kept else ''}{kept}{hash_}{fragment}"


_lock = threading.Lock()
_options: RemoteOptions | None = None
_blocks = BlockCache(0)
_identities: OrderedDict[str, tuple[float, VideoIdentity]] = OrderedDict()


def configure_remote(settings: VideoSettings | RemoteOptions | None = None) -> RemoteOptions:
    """Set how remote sources are read, process-wide (``None``: from ``VIDRA_VIDEO__*``).

    `vidra.video.open_reader` calls it with its settings. New options drop the cached
    identities and pages. Returns the options in force.
    """
    global _options
    if isinstance(settings, RemoteOptions):
        opts = settings
    else:
        if settings is None:
            from vidra.config import load_settings

            settings = load_settings().video
        opts = RemoteOptions(
            timeout_s=settings.remote_timeout_s,
            retries=settings.remote_retries,
            block_bytes=settings.remote_block_bytes,
            cache_bytes=settings.remote_cache_bytes,
            revalidate_s=settings.remote_revalidate_s,
        )
    with _lock:
        if opts == _options:
            return opts  # unchanged (every open_reader calls this): keep what is cached
        _options = opts
        _identities.clear()
    _blocks.resize(0)  # start afresh: cached blocks and identities belong to the old options
    _blocks.resize(opts.cache_bytes)
    return opts


def remote_options() -> RemoteOptions:
    """The options in force (configured from the environment on first use)."""
    return _options if _options is not None else configure_remote(None)


def _is_http(uri: str) -> bool:
    return uri[:8].lower().startswith(("http://", "https://"))


def remote_identity(uri: str) -> VideoIdentity:
    """Who the remote file at ``uri`` is; trusted for ``revalidate_s`` seconds, then re-checked.

    Raises:
        VideoNotFound: missing, refused, a directory, or unreachable (the cause is named).
        VideoUnreadable: empty, or the server does not give its size.
        BackendUnavailable: fsspec or the implementation for the URL's scheme is missing.
    """
    opts = remote_options()
    now = time.monotonic()
    with _lock:
        hit = _identities.get(uri)
        if hit is not None and hit[0] > now:
            return hit[1]
    display = redact(uri)
    http = _is_http(uri)
    ident = http_identity(uri, display, opts) if http else fsspec_identity(uri, display)
    if opts.revalidate_s > 0:
        with _lock:
            _identities[uri] = (now + opts.revalidate_s, ident)
            _identities.move_to_end(uri)
            while len(_identities) > _IDENTITIES_KEPT:
                _identities.popitem(last=False)
    return ident


def forget(identity: VideoIdentity) -> None:
    """Drop cached identities equal to ``identity``: the next use asks the server again."""
    with _lock:
        for uri in [u for u, (_, i) in _identities.items() if i.key == identity.key]:
            del _identities[uri]


def open_source(uri: str, identity: VideoIdentity | None = None) -> RemoteFile:
    """A seekable read-only file for the remote ``uri``, pinned to ``identity`` (else looked up).

    http(s): ``Range`` requests of ``block_bytes`` through a shared LRU of ``cache_bytes``;
    other schemes: ``fsspec.open(uri, "rb")`` with fsspec's own block cache. Reads of a file
    that changed or vanished raise `VideoUnreadable` and set its ``failure``.
    """
    ident = identity if identity is not None else remote_identity(uri)
    if _is_http(uri):
        return HttpSource(uri, ident, remote_options(), _blocks)
    return FsspecSource(uri, ident)


@contextmanager
def opened(uri: str, identity: VideoIdentity | None = None) -> Iterator[RemoteFile]:
    """`open_source` as a context: a read failure wins over whatever the decoder made of it.

    FFmpeg can take a failed read for the end of the file; on leaving, a recorded failure
    is raised (replacing any error, or a result built from partial data).
    """
    try:
        source = open_source(uri, identity)
    except VideoUnreadable:  # it changed or vanished since ``identity`` was taken
        if identity is not None:
            forget(identity)
        raise
    try:
        yield source
    except Exception as exc:
        failure = source.failure
        if failure is None:
            raise
        forget(source.identity)  # the next look-up asks the server again
        if failure is exc:
            raise
        raise failure from exc
    else:
        if source.failure is not None:
            forget(source.identity)
            raise source.failure
    finally:
        source.close()
