"""The ``decord`` engine: decord's VideoReader, resized during decode, in sorted chunks.

decord picks its own seek strategy. decord 0.6 mis-sizes frames of files with a display
rotation, and it reads local paths only, so rotated files and URLs are decoded by the PyAV
engine instead (logged once per call).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from vidra.errors import VideoUnreadable
from vidra.video.decoders import Deadline, DecodeStats, require_cpu
from vidra.video.identity import is_remote
from vidra.video.info import VideoInfo
from vidra.video.pyav_engine import PyAVEngine

__all__ = ["DecordEngine"]

log = logging.getLogger(__name__)

_CHUNK = 8


class DecordEngine:
    """Decode with decord on the CPU."""

    name = "decord"
    applies_rotation = False

    def __init__(self, device: str = "cpu", threads: int = 1, workers: int = 1) -> None:
        require_cpu(self.name, device)
        self.threads = threads  # decord chooses its own threading; kept for the pyav fallback
        self.workers = workers

    def decode(
        self,
        info: VideoInfo,
        times: Sequence[float],
        size: tuple[int, int],
        deadline: Deadline,
        stats: DecodeStats,
    ) -> list[np.ndarray]:
        import decord

        reason = _pyav_reason(info)
        if reason:
            log.info("%s: decoding with pyav (%s)", info.path, reason)
            return PyAVEngine(threads=self.threads, workers=self.workers).decode(
                info, times, size, deadline, stats
            )
        w, h = size
        try:
            reader = decord.VideoReader(info.path, ctx=decord.cpu(0), width=w, height=h)
            starts = reader.get_frame_timestamp(np.arange(len(reader)))[:, 0] - info.start_time
            eps = min(1e-3, 0.25 / max(info.fps, info.nominal_fps))
            indices = [
                max(0, int(np.searchsorted(starts, t + eps, side="right")) - 1) for t in times
            ]
            out: list[np.ndarray] = []
            for start in range(0, len(indices), _CHUNK):
                deadline.check()
                chunk = indices[start : start + _CHUNK]
                batch = reader.get_batch(chunk).asnumpy()
                out.extend(np.ascontiguousarray(f) for f in batch)
        except decord.DECORDError as exc:
            raise VideoUnreadable(info.path, f"decord failed to decode ({exc})") from exc
        return out


def _pyav_reason(info: VideoInfo) -> str:
    """Why this video goes to the PyAV engine instead, or ``""``."""
    if is_remote(info.location):
        return "decord reads local files only"
    if info.rotation:
        return "decord mishandles rotation"
    return ""
