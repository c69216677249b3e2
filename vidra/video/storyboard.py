"""Storyboards: a grid image of N thumbnails, each labelled with its timestamp.

Built from keyframe thumbnails by default (cheap overviews of long videos); the grid
layout is a pure function of the frames and times given.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from vidra.errors import InvalidInput

__all__ = ["Storyboard", "format_timestamp", "make_storyboard", "render_grid"]


@dataclass(frozen=True)
class Storyboard:
    """A storyboard image and the time (seconds) and frame index of each tile, row-major."""

    image: Image.Image
    times: list[float]
    indices: list[int]
    columns: int

    def save(self, path: str | Path) -> Path:
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        self.image.save(p)
        return p


def format_timestamp(seconds: float) -> str:
    """``h:mm:ss`` for an hour or more, else ``m:ss`` (tenths below ten minutes)."""
    if seconds >= 3600:
        h, rem = divmod(int(seconds), 3600)
        return f"{h}:{rem // 60:02d}:{rem % 60:02d}"
    m, s = divmod(seconds, 60)
    return f"{int(m)}:{s:04.1f}" if seconds < 600 else f"{int(m)}:{int(s):02d}"


def render_grid(
    frames: np.ndarray, times: Sequence[float], columns: int | None = None, label: bool = True
) -> Image.Image:
    """Lay out ``frames`` (``[n, h, w, 3]`` uint8) row-major with timestamp labels."""
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise InvalidInput(f"frames must be uint8 [n, h, w, 3], got {frames.dtype} {frames.shape}")
    n, h, w, _ = frames.shape
    if n == 0 or n != len(times):
        raise InvalidInput(
            f"need one time per frame and at least one frame (got {n}, {len(times)})"
        )
    cols = columns or math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    grid = Image.new("RGB", (cols * w, rows * h), (0, 0, 0))
    draw = ImageDraw.Draw(grid)
    font: Any = ImageFont.load_default(size=max(8, h // 8))
    for k, (frame, t) in enumerate(zip(frames, times, strict=True)):
        x, y = (k % cols) * w, (k // cols) * h
        grid.paste(Image.fromarray(frame), (x, y))
        if label:
            text = format_timestamp(t)
            box = draw.textbbox((x + 2, y + 1), text, font=font)
            draw.rectangle(box, fill=(0, 0, 0))
            draw.text((x + 2, y + 1), text, fill=(255, 255, 0), font=font)
    return grid


def make_storyboard(
    reader: Any, path: str | Path, n: int = 16, tile: int = 160, columns: int | None = None
) -> Storyboard:
    """A storyboard of ``n`` keyframe thumbnails of ``path``, each ``tile`` px on its long side.

    Args:
        reader: a `FrameReader` (anything with ``thumbnails(path, n, size)``).
    """
    if n <= 0:
        raise InvalidInput(f"n={n}: a storyboard needs at least one tile")
    frames, times = reader.thumbnails(path, n, size=tile)
    info = reader.probe(path)
    indices = [info.index_at(t) for t in times]
    cols = columns or math.ceil(math.sqrt(len(times)))
    return Storyboard(render_grid(frames, times, cols), times, indices, cols)
