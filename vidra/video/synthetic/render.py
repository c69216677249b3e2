"""Render a `World` to an H.264 MP4: one image per stable interval, re-encoded per frame.

The picture only changes at event times, so each interval's frame is drawn and
colour-converted once; long videos encode at thousands of frames per second.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from vidra.video.synthetic.encode import VideoWriter
from vidra.video.synthetic.world import COLOURS, World, WorldObject

__all__ = ["draw_frame", "render_world"]


def _quadrant_centre(quadrant: str, width: int, height: int) -> tuple[float, float]:
    col = 0 if quadrant.endswith("left") else 1
    row = 0 if quadrant.startswith("top") else 1
    return (col + 0.5) * width / 2, (row + 0.5) * height / 2


def _draw_object(draw: ImageDraw.ImageDraw, obj: WorldObject, width: int, height: int) -> None:
    cx, cy = _quadrant_centre(obj.quadrant, width, height)
    r = 0.3 * min(width, height) / 2 * obj.scale
    fill = COLOURS[obj.colour]
    if obj.shape == "circle":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fill)
    elif obj.shape == "square":
        s = r * 0.9
        draw.rectangle([cx - s, cy - s, cx + s, cy + s], fill=fill)
    else:  # triangle, apex up
        pts = [
            (cx + r * math.cos(a), cy - r * math.sin(a))
            for a in (math.pi / 2, 7 * math.pi / 6, 11 * math.pi / 6)
        ]
        draw.polygon(pts, fill=fill)


def draw_frame(
    world: World, t: float, width: int | None = None, height: int | None = None
) -> np.ndarray:
    """The picture at ``t`` seconds: ``[height, width, 3]`` uint8."""
    w = width or world.spec.width
    h = height or world.spec.height
    img = Image.new("RGB", (w, h), world.scene_at(t).background)
    draw = ImageDraw.Draw(img)
    for obj in world.visible_at(t):
        _draw_object(draw, obj, w, h)
    return np.asarray(img)


def render_world(
    world: World,
    path: str | Path,
    *,
    gop_s: float | None = 8.0,
    crf: int = 23,
) -> Path:
    """Encode ``world`` to ``path`` (H.264 MP4) and return the path.

    Args:
        gop_s: keyframe interval in seconds (``None``: encoder default; ``0``: one keyframe).
        crf: x264 quality (lower is better).
    """
    spec = world.spec
    n_frames = max(1, round(spec.duration * spec.fps))
    gop = None if gop_s is None else (0 if gop_s == 0 else max(1, round(gop_s * spec.fps)))
    changes = sorted(
        {min(n_frames, round(t * spec.fps)) for t in world.change_times()} | {n_frames}
    )
    with VideoWriter(
        path, fps=spec.fps, width=spec.width, height=spec.height, gop=gop, crf=crf
    ) as w:
        for a, b in itertools.pairwise(changes):
            frame = w.frame(draw_frame(world, (a + 0.5) / spec.fps))
            for _ in range(a, b):
                w.write(frame)
    return Path(path)
