"""The ``needle`` task: V-NIAH-style needle questions on synthetic or real haystacks.

``source=synthetic`` (default): haystack worlds of ``minutes`` (``30,60``) x ``count`` (1),
rendered with the needle under ``--videos``. ``source=videos``: every video under
``--videos`` is a haystack; ``count`` needles each, re-encoded once into ``cache=DIR``
(default ``<vidra data dir>/needle-cache``). Categories: ``length``, ``depth`` (where the
needle sits, in fifths of the video) and ``quadrant``. Deterministic by ``seed``.
"""

from __future__ import annotations

import os
import random
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from vidra.config import default_data_dir
from vidra.errors import ConfigError, VideoError
from vidra.evals.collect import Collector
from vidra.evals.items import EvalItem, LoadRequest, LoadResult
from vidra.evals.needle import (
    NEEDLE_QUESTION,
    Needle,
    choose_needle,
    insert_needle,
    needle_options,
    render_with_needle,
)
from vidra.evals.params import opt_float, opt_floats, opt_int, opt_path, opt_str
from vidra.evals.resolve import VIDEO_EXTS
from vidra.evals.tasks.synthetic import output_dir
from vidra.video.info import probe
from vidra.video.synthetic import World, WorldSpec, make_world

__all__ = ["Haystack", "haystack_world", "load_needle", "synthetic_haystacks", "synthetic_video"]


def _item(
    req: LoadRequest,
    qid: str,
    video: Path,
    haystack: str,
    needle: Needle,
    duration: float,
    options: tuple[list[str], int],
) -> EvalItem:
    opts, idx = options
    fifth = min(4, int(needle.start / max(duration, 1e-9) * 5))
    return EvalItem(
        task=req.task,
        qid=qid,
        video_id=haystack,
        path=str(video),
        question=NEEDLE_QUESTION,
        options=opts,
        answer=opts[idx],
        answer_index=idx,
        span=(needle.start, needle.end),
        evidence=[round((needle.start + needle.end) / 2, 3)],
        categories={
            "length": f"{round(duration / 60, 1):g}min",
            "depth": f"{fifth * 20}-{fifth * 20 + 20}%",
            "quadrant": needle.quadrant,
        },
    )


def haystack_world(minutes: float, seed: int, fps: float = 4.0) -> World:
    """A 160x90 synthetic world of ``minutes`` without its own needle (its look and three
    more stay absent, for the options)."""
    spec = WorldSpec(duration=minutes * 60, fps=fps, width=160, height=90, seed=seed, needles=1)
    world = make_world(spec)
    drop = {o.id for o in world.objects if o.needle}
    events = [e for e in world.events if not (e.kind != "scene" and e.ref in drop)]
    return replace(world, objects=[o for o in world.objects if not o.needle], events=events)


@dataclass(frozen=True)
class Haystack:
    """One synthetic needle question's ground truth: the haystack world (without the needle),
    the needle, the four options and the answer's index."""

    tag: str
    world: World
    needle: Needle
    options: list[str]
    answer: int


def synthetic_haystacks(
    seed: int, minutes: Sequence[float], count: int, fps: float = 4.0
) -> Iterator[Haystack]:
    """The haystacks ``source=synthetic`` asks about, in its order (``count`` per length)."""
    for m in minutes:
        for k in range(count):
            tag = f"{m:g}min-{k}"
            world = haystack_world(m, zlib.crc32(f"{seed}:{tag}".encode()), fps)
            rng = random.Random(f"needle:{seed}:{tag}")
            present = sorted({o.name for o in world.objects})
            needle = choose_needle(rng, world.spec.duration, fps, present, busy=world.objects)
            options, answer = needle_options(rng, needle, present)
            yield Haystack(tag, world, needle, options, answer)


def synthetic_video(root: Path, h: Haystack) -> Path:
    """Where ``source=synthetic`` renders haystack ``h`` (with its needle) under ``root``."""
    return root / f"needle-{h.tag}-{h.needle.key}.mp4"


def _synthetic(req: LoadRequest, col: Collector, seed: int, count: int) -> None:
    root = output_dir(req)
    fps = opt_float(req.options, req.task, "fps", 4.0)
    minutes = opt_floats(req.options, req.task, "minutes", (30.0, 60.0))
    for h in synthetic_haystacks(seed, minutes, count, fps):
        if col.full:
            return
        video = render_with_needle(h.world, h.needle, synthetic_video(root, h))
        qid = f"needle-s{seed}-{h.tag}"
        col.add(_item(req, qid, video, f"haystack-{h.tag}", h.needle, h.world.spec.duration,
                      (h.options, h.answer)))  # fmt: skip


def _haystacks(root: Path, cache: Path) -> list[Path]:
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        here = Path(dirpath)
        if here.resolve() == cache.resolve() or cache.resolve() in here.resolve().parents:
            continue
        out += [here / f for f in sorted(filenames) if Path(f).suffix in VIDEO_EXTS]
    return out


def _real(req: LoadRequest, col: Collector, seed: int, count: int) -> None:
    if req.videos is None or not req.videos.is_dir():
        raise ConfigError("needle source=videos reads haystacks; fix: pass --videos DIR of videos")
    cache = opt_path(req.options, "cache") or default_data_dir() / "needle-cache"
    cache.mkdir(parents=True, exist_ok=True)
    for n, hay in enumerate(_haystacks(req.videos, cache), start=1):
        try:
            info = probe(hay)
        except VideoError as exc:
            col.skip(n, None, f"haystack {hay.name} unreadable: {exc}")
            continue
        for k in range(count):
            if col.full:
                return
            rng = random.Random(f"needle:{seed}:{hay.name}:{k}")
            needle = choose_needle(rng, info.duration, info.fps)
            try:
                video = insert_needle(hay, needle, cache)
            except VideoError as exc:
                col.skip(n, None, f"haystack {hay.name} unusable: {exc}")
                break
            qid = f"needle-s{seed}-{hay.stem}-{k}"
            options = needle_options(rng, needle)
            col.add(_item(req, qid, video, hay.stem, needle, info.duration, options))


def load_needle(req: LoadRequest) -> LoadResult:
    """Build needle questions (``source=synthetic|videos``)."""
    source = opt_str(req.options, req.task, "source", "synthetic", ("synthetic", "videos"))
    seed = opt_int(req.options, req.task, "seed", 0)
    count = opt_int(req.options, req.task, "count", 1, low=1)
    col = Collector(req, None, ())
    (_synthetic if source == "synthetic" else _real)(req, col, seed, count)
    return col.finish((), "")
