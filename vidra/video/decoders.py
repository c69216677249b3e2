"""Frame decoders by short name, and `FrameReader`, the one front door to all of them.

`FrameReader` validates requests, sorts and de-duplicates indices, sizes and rotates
frames, enforces the pixel cap and the deadline, and restores the caller's order.
Engines (``pyav``, ``decord``, ``torchcodec``) only decode sorted indices forward.
"""

from __future__ import annotations

import importlib
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from vidra.errors import BackendUnavailable, ConfigError, DecodeTimeout, InvalidInput
from vidra.video.info import VideoInfo, probe
from vidra.video.sampling import keyframe_thumbnail_times

__all__ = [
    "Deadline",
    "DecodeStats",
    "FrameDecoder",
    "FrameReader",
    "FrameSource",
    "Size",
    "check_indices",
    "check_times",
    "get_decoder",
    "output_size",
    "require_cpu",
    "thumbnail_indices",
]

Size = int | tuple[int, int] | None
"""Requested frame size: ``None`` (native), an int (longer side), or ``(width, height)``."""

_ENGINES = {
    "pyav": ("vidra.video.pyav_engine:PyAVEngine", "av"),
    "decord": ("vidra.video.decord_engine:DecordEngine", "decord"),
    "torchcodec": ("vidra.video.torchcodec_engine:TorchCodecEngine", "torchcodec"),
}


class Deadline:
    """A point in time after which a decode gives up with `DecodeTimeout`."""

    def __init__(self, seconds: float, path: str) -> None:
        self.seconds = seconds
        self.path = path
        self.until = time.monotonic() + seconds

    def check(self) -> None:
        if time.monotonic() > self.until:
            raise DecodeTimeout(
                self.path,
                f"decode ran past its {self.seconds:g} s deadline; ask for fewer frames "
                "or raise VIDRA_VIDEO__DECODE_TIMEOUT_S",
            )


@dataclass
class DecodeStats:
    """Counters a decoder keeps across calls (read them as deltas)."""

    calls: int = 0
    frames_returned: int = 0
    frames_decoded: int = 0
    seeks: int = 0
    corrupt_packets: int = 0


class Engine(Protocol):
    """What a backend implements: the frames on screen at sorted, distinct times."""

    name: str
    applies_rotation: bool

    def decode(
        self,
        info: VideoInfo,
        times: Sequence[float],
        size: tuple[int, int],
        deadline: Deadline,
        stats: DecodeStats,
    ) -> list[np.ndarray]:
        """One ``[h, w, 3]`` uint8 frame per time (seconds from the first frame), in order.

        The frame for ``t`` is the last one whose presentation time is ``<= t``.
        """
        ...


class FrameDecoder(Protocol):
    """The decoding protocol the rest of vidra uses."""

    name: str
    stats: DecodeStats

    def probe(self, path: str | Path) -> VideoInfo: ...

    def frames(self, path: str | Path, indices: Sequence[int], size: Size = None) -> np.ndarray:
        """Frames at ``indices`` in the caller's order: ``[n, h, w, 3]`` uint8."""
        ...

    def frames_at(
        self, path: str | Path, seconds: Sequence[float], size: Size = None
    ) -> np.ndarray:
        """Frames shown at ``seconds``: ``[n, h, w, 3]`` uint8."""
        ...


class FrameSource(Protocol):
    """What agents, graph nodes and training replay need from a (cached) frame reader."""

    @property
    def stats(self) -> DecodeStats:
        """Counters of the work done (read them as deltas)."""
        ...

    def probe(self, path: str | Path) -> VideoInfo: ...

    def frames(self, path: str | Path, indices: Sequence[int], size: Size = None) -> np.ndarray:
        """Frames at ``indices`` in the caller's order: ``[n, h, w, 3]`` uint8."""
        ...

    def frames_at(
        self, path: str | Path, seconds: Sequence[float], size: Size = None
    ) -> np.ndarray: ...

    def thumbnails(
        self, path: str | Path, n: int, size: Size = 160
    ) -> tuple[np.ndarray, list[float]]:
        """``n`` overview frames ``[n, h, w, 3]`` at cheap-to-decode keyframes, and their times."""
        ...

    def decode_indices(self, info: VideoInfo, indices: Sequence[int], size: Size) -> np.ndarray:
        """Frames at already-validated ``indices`` of a probed video."""
        ...


def require_cpu(backend: str, device: str) -> None:
    """`ConfigError` unless ``device`` is the CPU (for engines without GPU decoding)."""
    if device != "cpu":
        raise ConfigError(
            f"the {backend} backend decodes on the CPU only (device={device!r}); "
            "use backend='torchcodec' with device='cuda' for GPU decoding"
        )


def output_size(info: VideoInfo, size: Size, max_pixels: int) -> tuple[int, int]:
    """Display-oriented ``(width, height)`` of returned frames, under the pixel cap.

    An int asks for that longer side with the aspect kept; a pair is taken as is.
    Either way the result is scaled down (aspect kept) to at most ``max_pixels``.
    """
    if size is None:
        w, h = info.width, info.height
    elif isinstance(size, int):
        if size <= 0:
            raise InvalidInput(f"size={size} must be positive (the longer side in pixels)")
        scale = size / max(info.width, info.height)
        w, h = max(1, round(info.width * scale)), max(1, round(info.height * scale))
    else:
        w, h = int(size[0]), int(size[1])
        if w <= 0 or h <= 0:
            raise InvalidInput(f"size={size} must be a positive (width, height)")
    if w * h > max_pixels:
        scale = (max_pixels / (w * h)) ** 0.5
        w, h = max(1, int(w * scale)), max(1, int(h * scale))
    return w, h


class FrameReader:
    """Decode frames of any file with one engine; thread-safe, counts its work."""

    def __init__(self, engine: Engine, *, max_pixels: int, timeout_s: float) -> None:
        if max_pixels <= 0 or timeout_s <= 0:
            raise ConfigError("max_pixels and timeout_s must be positive")
        self.engine = engine
        self.name = engine.name
        self.max_pixels = max_pixels
        self.timeout_s = timeout_s
        self.stats = DecodeStats()
        self._lock = threading.Lock()

    def probe(self, path: str | Path) -> VideoInfo:
        return probe(path)

    def frames(self, path: str | Path, indices: Sequence[int], size: Size = None) -> np.ndarray:
        info = probe(path)
        wanted = check_indices(info, indices)
        return self.decode_indices(info, wanted, size)

    def frames_at(
        self, path: str | Path, seconds: Sequence[float], size: Size = None
    ) -> np.ndarray:
        info = probe(path)
        check_times(info, seconds)
        return self.decode_times(info, [float(t) for t in seconds], size)

    def thumbnails(
        self, path: str | Path, n: int, size: Size = 160
    ) -> tuple[np.ndarray, list[float]]:
        """``n`` overview frames at keyframes (cheap to decode) and their times in seconds."""
        info = probe(path)
        indices = thumbnail_indices(info, n)
        return self.decode_indices(info, indices, size), [info.time_of(i) for i in indices]

    def decode_indices(self, info: VideoInfo, indices: Sequence[int], size: Size) -> np.ndarray:
        """Decode already-validated ``indices`` of a probed video (any order, repeats allowed)."""
        return self.decode_times(info, [info.time_of(i) for i in indices], size)

    def decode_times(self, info: VideoInfo, seconds: Sequence[float], size: Size) -> np.ndarray:
        """Decode the frames shown at validated ``seconds`` (any order, repeats allowed)."""
        w, h = output_size(info, size, self.max_pixels)
        if not seconds:
            return np.zeros((0, h, w, 3), np.uint8)
        unique = sorted(set(seconds))
        rotate = info.rotation if not self.engine.applies_rotation else 0
        raw_size = (h, w) if rotate in (90, 270) else (w, h)
        stats = DecodeStats()
        decoded = self.engine.decode(
            info, unique, raw_size, Deadline(self.timeout_s, info.path), stats
        )
        if rotate:
            decoded = [np.ascontiguousarray(np.rot90(f, k=rotate // 90)) for f in decoded]
        out = _gather(decoded, unique, seconds)
        with self._lock:
            self.stats.calls += 1
            self.stats.frames_returned += len(seconds)
            self.stats.frames_decoded += stats.frames_decoded
            self.stats.seeks += stats.seeks
            self.stats.corrupt_packets += stats.corrupt_packets
        return out


def _gather(decoded: list[np.ndarray], unique: list[float], wanted: Sequence[float]) -> np.ndarray:
    """Frames for ``wanted`` (any order, repeats) from frames of sorted ``unique``: one copy."""
    if len(wanted) == len(unique) and all(a == b for a, b in zip(wanted, unique, strict=True)):
        return np.stack(decoded)
    position = {t: k for k, t in enumerate(unique)}
    out = np.empty((len(wanted), *decoded[0].shape), np.uint8)
    for k, t in enumerate(wanted):
        out[k] = decoded[position[t]]
    return out


def check_indices(info: VideoInfo, indices: Sequence[int]) -> list[int]:
    """Validate frame indices against a probed video; `InvalidInput` names the bad one."""
    out = []
    for i in indices:
        if isinstance(i, bool) or not isinstance(i, int | np.integer):
            raise InvalidInput(f"frame index {i!r} is not an integer")
        if not 0 <= int(i) < info.frame_count:
            note = "" if info.frame_count_exact else " (estimated)"
            raise InvalidInput(
                f"{info.path}: frame index {i} is out of range; the video has "
                f"{info.frame_count}{note} frames (0 to {info.frame_count - 1})"
            )
        out.append(int(i))
    return out


def thumbnail_indices(info: VideoInfo, n: int) -> list[int]:
    """Up to ``n`` distinct frame indices at keyframes spread over the video."""
    times = keyframe_thumbnail_times(info.duration, n, info.keyframe_times())
    return sorted({info.index_at(t) for t in times})


def check_times(info: VideoInfo, seconds: Sequence[float]) -> None:
    """`InvalidInput` for a time outside ``[0, duration]`` (one frame of slack at the end)."""
    for t in seconds:
        if not np.isfinite(t) or t < 0 or t > info.duration + 1.0 / info.fps:
            raise InvalidInput(
                f"{info.path}: time {t} s is outside the video (0 to {info.duration:.3f} s)"
            )


def get_decoder(
    name: str = "pyav",
    *,
    device: str = "cpu",
    max_pixels: int = 1920 * 1080,
    timeout_s: float = 120.0,
    threads: int = 1,
    workers: int = 2,
) -> FrameReader:
    """A `FrameReader` over the engine named ``name`` (``pyav``, ``decord``, ``torchcodec``).

    ``threads`` is FFmpeg's thread count per decode (0: FFmpeg decides); ``workers`` is how
    many runs of GOPs one call may decode in parallel (pyav).

    Raises:
        ConfigError: unknown name, or a device the engine cannot use.
        BackendUnavailable: the engine's package is not installed.
    """
    if name not in _ENGINES:
        raise ConfigError(f"unknown video backend {name!r}; choose one of {sorted(_ENGINES)}")
    target, package = _ENGINES[name]
    try:
        importlib.import_module(package)
    except ImportError as exc:
        raise BackendUnavailable(name, name if name != "pyav" else "video", str(exc)) from exc
    module_name, cls_name = target.split(":")
    engine_cls = getattr(importlib.import_module(module_name), cls_name)
    engine: Engine = engine_cls(device=device, threads=threads, workers=workers)
    return FrameReader(engine, max_pixels=max_pixels, timeout_s=timeout_s)
