"""Needle-in-a-video-haystack (V-NIAH style): a synthetic object drawn into a haystack video.

A `Needle` is one of the synthetic world's looks (a shape of a colour, drawn by the same code)
shown for 2-4 s in one quadrant. `insert_needle` decodes a real haystack with PyAV, draws the
needle on the frames of its window and re-encodes the whole video once into a cache keyed by
the haystack's identity and the needle, keeping the source's timestamps (audio is dropped).
Synthetic haystacks are rendered with the needle in one pass (`render_with_needle`).
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from vidra.errors import VideoUnreadable
from vidra.video.identity import identify
from vidra.video.info import open_container, probe, select_video_stream
from vidra.video.synthetic import (
    COLOURS,
    QUADRANTS,
    SHAPES,
    Event,
    VideoWriter,
    World,
    WorldObject,
    render_world,
)

# The world's own object drawing, so a needle looks exactly like a synthetic object.
from vidra.video.synthetic.render import _draw_object

__all__ = [
    "NEEDLE_QUESTION",
    "Needle",
    "all_looks",
    "cached_path",
    "choose_needle",
    "draw_needle",
    "insert_needle",
    "needle_options",
    "render_with_needle",
    "with_needle",
]

NEEDLE_QUESTION = "One of these objects appears briefly somewhere in the video. Which one?"
_VERSION = "needle-v1"  # bump when the drawing or encoding changes, to invalidate caches


@dataclass(frozen=True)
class Needle:
    """A look (``colour shape``) on screen in ``quadrant`` during ``[start, end)`` seconds."""

    shape: str
    colour: str
    quadrant: str
    start: float
    end: float
    scale: float = 1.0

    @property
    def name(self) -> str:
        return f"{self.colour} {self.shape}"

    @property
    def key(self) -> str:
        """Stable 12-hex-digit key of the needle's spec."""
        raw = repr(sorted(asdict(self).items())).encode()
        return hashlib.sha1(raw).hexdigest()[:12]

    def as_object(self, ident: int) -> WorldObject:
        """The needle as a synthetic-world object."""
        return WorldObject(
            ident,
            self.shape,
            self.colour,
            self.quadrant,
            self.start,
            self.end,
            needle=True,
            scale=self.scale,
        )


def all_looks() -> list[str]:
    """Every ``colour shape`` the synthetic world can draw (24)."""
    return [f"{c} {s}" for s in SHAPES for c in COLOURS]


def choose_needle(
    rng: random.Random,
    duration: float,
    fps: float,
    exclude: Sequence[str] = (),
    length_s: tuple[float, float] = (2.0, 4.0),
    busy: Sequence[WorldObject] = (),
) -> Needle:
    """Pick a look not in ``exclude``, a quadrant and a window snapped to frame times.

    The window keeps 5% of the video (at most 10 s) free at either end and, when ``busy``
    objects are given, stays 2 s clear of any of them in the same quadrant.
    """
    looks = [x for x in all_looks() if x not in set(exclude)]
    colour, shape = rng.choice(looks or all_looks()).split(" ")
    length = min(rng.uniform(*length_s), duration / 2)
    edge = min(10.0, duration * 0.05)
    needle = None
    for _ in range(200):
        start = round(rng.uniform(edge, max(edge, duration - length - edge)) * fps) / fps
        end = min(duration, round((start + length) * fps) / fps)
        needle = Needle(shape, colour, rng.choice(QUADRANTS), start, max(end, start + 1 / fps))
        clash = [
            o
            for o in busy
            if o.quadrant == needle.quadrant
            and o.start < needle.end + 2
            and needle.start < o.end + 2
        ]
        if not clash:
            return needle
    return needle if needle is not None else Needle(shape, colour, QUADRANTS[0], 0.0, length)


def needle_options(
    rng: random.Random, needle: Needle, exclude: Sequence[str] = ()
) -> tuple[list[str], int]:
    """Four options: the needle and three looks absent from the video; and the answer index."""
    pool = [x for x in all_looks() if x != needle.name and x not in set(exclude)]
    options = [needle.name, *rng.sample(pool, 3)]
    rng.shuffle(options)
    return options, options.index(needle.name)


def draw_needle(frame: np.ndarray, needle: Needle) -> np.ndarray:
    """``frame`` (``[h, w, 3]`` uint8) with the needle drawn on it (a new array)."""
    img = Image.fromarray(np.ascontiguousarray(frame[..., :3]))
    _draw_object(ImageDraw.Draw(img), needle.as_object(0), img.width, img.height)
    return np.asarray(img)


def with_needle(world: World, needle: Needle) -> World:
    """``world`` with ``needle`` as one more object (and its enter and leave events)."""
    obj = needle.as_object(len(world.objects))
    events = [
        *world.events,
        Event(obj.start, "enter", obj.id, obj.name),
        Event(obj.end, "leave", obj.id, obj.name),
    ]
    return replace(world, objects=[*world.objects, obj], events=sorted(events, key=_event_order))


def render_with_needle(world: World, needle: Needle, path: Path, gop_s: float = 4.0) -> Path:
    """Render a synthetic haystack ``world`` with ``needle`` added (cached: kept if present)."""
    if path.is_file():
        return path
    tmp = path.with_name(f".{path.stem}.part{path.suffix}")
    render_world(with_needle(world, needle), tmp, gop_s=gop_s)
    tmp.replace(path)
    return path


def _event_order(e: Event) -> tuple[float, bool, str, int]:
    return (e.time, e.kind != "scene", e.kind, e.ref)


def cached_path(haystack: Path, needle: Needle, cache_dir: Path) -> Path:
    """Where `insert_needle` keeps ``haystack`` with ``needle``: keyed by both."""
    ident = identify(haystack)
    key = hashlib.sha1(f"{_VERSION}|{ident.key}|{needle.key}".encode()).hexdigest()[:16]
    return cache_dir / f"{haystack.stem}-needle-{key}.mp4"


def insert_needle(haystack: Path, needle: Needle, cache_dir: Path, crf: int = 20) -> Path:
    """Re-encode ``haystack`` with ``needle`` drawn on the frames of its window.

    Reuses the cached file when the same haystack (path, size, mtime) and needle were
    done before. Frame timestamps are copied from the source (variable rates stay exact);
    sizes are cropped to even numbers (H.264 4:2:0); audio is not copied.

    Raises:
        VideoNotFound, VideoUnreadable, NoVideoStream: the haystack cannot be read.
    """
    out = cached_path(haystack, needle, cache_dir)
    if out.is_file():
        return out
    import av

    info = probe(haystack)
    tmp = out.with_name(f".{out.stem}.part.mp4")
    try:
        with open_container(haystack) as src:
            stream = select_video_stream(src, haystack)
            stream.thread_type = "AUTO"
            _reencode(src, stream, tmp, needle, info.fps, info.rotation, crf)
    except av.error.FFmpegError as exc:
        tmp.unlink(missing_ok=True)
        raise VideoUnreadable(haystack, f"decoding or re-encoding failed ({exc})") from exc
    tmp.replace(out)
    return out


def _reencode(
    src: Any, stream: Any, tmp: Path, needle: Needle, fps: float, rotation: int, crf: int
) -> None:
    tb = Fraction(stream.time_base) if stream.time_base else Fraction(1, 1000)
    step = max(1, round(1 / (fps * tb)))
    writer: VideoWriter | None = None
    first: int | None = None
    last = -1
    try:
        for frame in src.decode(stream):
            if frame.pts is None or (first is None and last >= 0):  # no timestamp: next slot
                rel = last + step if last >= 0 else 0
            else:
                first = frame.pts if first is None else first
                rel = max(last + 1, frame.pts - first)
            img = frame.to_ndarray(format="rgb24")
            h, w = img.shape[0] // 2 * 2, img.shape[1] // 2 * 2
            if writer is None:
                writer = VideoWriter(
                    tmp, fps=fps, width=w, height=h, crf=crf, time_base=tb, rotation=rotation
                )
            t = float(rel * tb)
            if needle.start <= t < needle.end:
                img = draw_needle(img, needle)
            writer.write(img[:h, :w], pts=rel)
            last = rel
    finally:
        if writer is not None:
            writer.close()
