"""Frame-number calibration videos: each frame shows its own index as a grid of bits.

`read_counter` recovers the index from a decoded frame, so tests and benchmarks can
check that every backend returns exactly the frame asked for.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import numpy as np

from vidra.video.synthetic.encode import VideoWriter

__all__ = ["counter_image", "read_counter", "write_counter_video"]

_COLS = 4


def _bits_for(n_frames: int) -> int:
    return max(4, math.ceil(math.log2(max(2, n_frames))))


def counter_image(index: int, width: int, height: int, bits: int) -> np.ndarray:
    """An ``[height, width, 3]`` image whose grid cells are white for set bits of ``index``."""
    rows = math.ceil(bits / _COLS)
    img = np.zeros((height, width, 3), np.uint8)
    for b in range(bits):
        if index >> b & 1:
            r, c = divmod(b, _COLS)
            y0, y1 = r * height // rows, (r + 1) * height // rows
            x0, x1 = c * width // _COLS, (c + 1) * width // _COLS
            img[y0:y1, x0:x1] = 255
    return img


def read_counter(frame: np.ndarray, bits: int) -> int:
    """Recover the index drawn by `counter_image` from a decoded ``[h, w, 3]`` frame."""
    h, w = frame.shape[:2]
    rows = math.ceil(bits / _COLS)
    gray = frame.mean(axis=2)
    value = 0
    for b in range(bits):
        r, c = divmod(b, _COLS)
        y0, y1 = r * h // rows, (r + 1) * h // rows
        x0, x1 = c * w // _COLS, (c + 1) * w // _COLS
        cy, cx = (y0 + y1) // 2, (x0 + x1) // 2
        dy, dx = max(1, (y1 - y0) // 4), max(1, (x1 - x0) // 4)
        if gray[cy - dy + 1 : cy + dy, cx - dx + 1 : cx + dx].mean() > 127:
            value |= 1 << b
    return value


def write_counter_video(
    path: str | Path,
    n_frames: int,
    *,
    fps: float = 30.0,
    width: int = 64,
    height: int = 48,
    gop: int | None = None,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    rotation: int = 0,
    container_options: dict[str, str] | None = None,
    times: Sequence[float] | None = None,
) -> int:
    """Write a counter video and return the number of bits per frame (for `read_counter`).

    ``times`` (seconds, increasing) makes a variable-frame-rate file with those timestamps.
    """
    bits = _bits_for(n_frames)
    tb = Fraction(1, 1000) if times is not None else None
    with VideoWriter(
        path,
        fps=fps,
        width=width,
        height=height,
        codec=codec,
        gop=gop,
        pix_fmt=pix_fmt,
        rotation=rotation,
        container_options=container_options,
        time_base=tb,
    ) as writer:
        for i in range(n_frames):
            pts = None if times is None else round(times[i] * 1000)
            writer.write(counter_image(i, width, height, bits), pts=pts)
    return bits
