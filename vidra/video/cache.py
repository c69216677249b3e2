"""A decoded-frame cache: thread-safe in-memory LRU with a byte budget, optional disk layer.

Keys are ``(video identity key, frame index, output size)``. `CachedReader` wraps a
`FrameReader` with the same ``frames``/``frames_at`` protocol and decodes only misses,
so G rollouts of one question decode each shared frame once.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from vidra.errors import InvalidInput
from vidra.video.decoders import (
    DecodeStats,
    FrameReader,
    Size,
    check_indices,
    check_times,
    output_size,
    thumbnail_indices,
)
from vidra.video.info import VideoInfo, probe

__all__ = ["CachedReader", "FrameCache", "FrameKey"]

log = logging.getLogger(__name__)

FrameKey = tuple[str, int, tuple[int, int]]
"""(video identity key, frame index, (width, height))."""


class FrameCache:
    """LRU of decoded frames bounded by bytes; optionally backed by ``.npy`` files on disk.

    Args:
        max_bytes: in-memory budget; least recently used frames are evicted past it.
        disk_dir: if given, every stored frame is also written there and misses look there
            before decoding.
    """

    def __init__(self, max_bytes: int = 512 * 1024 * 1024, disk_dir: Path | None = None) -> None:
        if max_bytes < 0:
            raise InvalidInput(f"max_bytes={max_bytes} must be >= 0")
        self.max_bytes = max_bytes
        self.disk_dir = Path(disk_dir) if disk_dir is not None else None
        if self.disk_dir is not None:
            self.disk_dir.mkdir(parents=True, exist_ok=True)
        self._items: OrderedDict[FrameKey, np.ndarray] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        self.disk_hits = 0

    @property
    def nbytes(self) -> int:
        """Bytes held in memory now."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: FrameKey) -> np.ndarray | None:
        """The cached frame for ``key`` (memory, then disk), or ``None``."""
        with self._lock:
            frame = self._items.get(key)
            if frame is not None:
                self._items.move_to_end(key)
                self.hits += 1
                return frame
        frame = self._load(key)
        with self._lock:
            if frame is None:
                self.misses += 1
                return None
            self.disk_hits += 1
        self._remember(key, frame)
        return frame

    def put(self, key: FrameKey, frame: np.ndarray) -> None:
        """Store ``frame`` (read-only copy) under ``key`` in memory and on disk."""
        frame = np.array(frame, copy=True)
        frame.flags.writeable = False
        self._remember(key, frame)
        self._save(key, frame)

    def _remember(self, key: FrameKey, frame: np.ndarray) -> None:
        if frame.nbytes > self.max_bytes:
            return
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._bytes -= old.nbytes
            self._items[key] = frame
            self._bytes += frame.nbytes
            while self._bytes > self.max_bytes:
                _, evicted = self._items.popitem(last=False)
                self._bytes -= evicted.nbytes

    def _path(self, key: FrameKey) -> Path:
        assert self.disk_dir is not None
        ident, index, (w, h) = key
        return self.disk_dir / ident / f"{index}_{w}x{h}.npy"

    def _load(self, key: FrameKey) -> np.ndarray | None:
        if self.disk_dir is None:
            return None
        path = self._path(key)
        try:
            frame = np.load(path, allow_pickle=False)
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:  # a torn or foreign file: drop it, decode again
            log.warning("frame cache: ignoring unreadable %s (%s)", path, exc)
            path.unlink(missing_ok=True)
            return None
        frame.flags.writeable = False
        return frame

    def _save(self, key: FrameKey, frame: np.ndarray) -> None:
        if self.disk_dir is None:
            return
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{threading.get_ident()}.tmp")
        with open(tmp, "wb") as fh:
            np.save(fh, frame, allow_pickle=False)
        tmp.replace(path)


class CachedReader:
    """A `FrameReader` in front of a `FrameCache`: same protocol, decodes only misses."""

    def __init__(self, reader: FrameReader, cache: FrameCache) -> None:
        self.reader = reader
        self.cache = cache
        self.name = reader.name
        self.max_pixels = reader.max_pixels
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()

    @property
    def stats(self) -> DecodeStats:
        return self.reader.stats

    def probe(self, path: str | Path) -> VideoInfo:
        return probe(path)

    def frames(self, path: str | Path, indices: Sequence[int], size: Size = None) -> np.ndarray:
        info = probe(path)
        return self._cached(info, check_indices(info, indices), size)

    def frames_at(
        self, path: str | Path, seconds: Sequence[float], size: Size = None
    ) -> np.ndarray:
        info = probe(path)
        check_times(info, seconds)
        if not info.constant_rate:  # times do not map to whole indices: decode, do not cache
            return self.reader.decode_times(info, [float(t) for t in seconds], size)
        return self._cached(info, [info.index_at(float(t)) for t in seconds], size)

    def thumbnails(
        self, path: str | Path, n: int, size: Size = 160
    ) -> tuple[np.ndarray, list[float]]:
        """Like `FrameReader.thumbnails`, through the cache."""
        info = probe(path)
        indices = thumbnail_indices(info, n)
        return self._cached(info, indices, size), [info.time_of(i) for i in indices]

    def decode_indices(self, info: VideoInfo, indices: Sequence[int], size: Size) -> np.ndarray:
        """Like `FrameReader.decode_indices`, through the cache."""
        return self._cached(info, list(indices), size)

    def _cached(self, info: VideoInfo, indices: list[int], size: Size) -> np.ndarray:
        wh = output_size(info, size, self.reader.max_pixels)
        found: dict[int, np.ndarray] = {}
        for i in set(indices):
            frame = self.cache.get((info.identity.key, i, wh))
            if frame is not None:
                found[i] = frame
        if len(found) < len(set(indices)):
            with self._lock_for(info.identity.key):  # one decode per frame across threads
                self._fill(info, set(indices) - found.keys(), wh, found)
        w, h = wh
        if not indices:
            return np.zeros((0, h, w, 3), np.uint8)
        return np.stack([found[i] for i in indices])

    def _fill(
        self, info: VideoInfo, wanted: set[int], wh: tuple[int, int], found: dict[int, np.ndarray]
    ) -> None:
        missing = []
        for i in sorted(wanted):  # another thread may have decoded them meanwhile
            frame = self.cache.get((info.identity.key, i, wh))
            if frame is None:
                missing.append(i)
            else:
                found[i] = frame
        if not missing:
            return
        decoded = self.reader.decode_indices(info, missing, wh)
        for i, frame in zip(missing, decoded, strict=True):
            self.cache.put((info.identity.key, i, wh), frame)
            found[i] = frame

    def _lock_for(self, key: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(key, threading.Lock())
