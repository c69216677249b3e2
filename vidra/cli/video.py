"""``vidra video probe | sample | storyboard | shots | synth``."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from vidra.errors import InvalidInput

__all__ = ["register"]


def register(sub: Any) -> None:
    p = sub.add_parser("video", help="probe, sample, storyboard and generate videos")
    vsub = p.add_subparsers(dest="video_command", required=True)

    probe = vsub.add_parser("probe", help="print what a video is")
    probe.add_argument("path")
    probe.add_argument("--keyframes", action="store_true", help="also list keyframe times")
    probe.set_defaults(func=cmd_probe)

    sample = vsub.add_parser("sample", help="decode sampled frames to PNG files")
    sample.add_argument("path")
    sample.add_argument("out", help="output directory")
    how = sample.add_mutually_exclusive_group()
    how.add_argument("-n", type=int, default=8, help="uniform: this many frames (default 8)")
    how.add_argument("--fps", type=float, help="fixed rate in frames per second of video")
    how.add_argument("--indices", help="comma-separated frame indices")
    sample.add_argument("--segment", help="START:END seconds to sample within (uniform only)")
    sample.add_argument("--size", type=int, default=None, help="longer side in pixels")
    sample.add_argument("--backend", default="pyav", help="pyav | decord | torchcodec")
    sample.set_defaults(func=cmd_sample)

    sb = vsub.add_parser("storyboard", help="write a timestamped grid of keyframe thumbnails")
    sb.add_argument("path")
    sb.add_argument("out", help="output image (.png or .jpg)")
    sb.add_argument("-n", type=int, default=16)
    sb.add_argument("--tile", type=int, default=160, help="thumbnail longer side in pixels")
    sb.set_defaults(func=cmd_storyboard)

    shots = vsub.add_parser("shots", help="detect shot boundaries")
    shots.add_argument("path")
    shots.add_argument("--sample-fps", type=float, default=1.0)
    shots.add_argument("--threshold", type=float, default=0.3)
    shots.set_defaults(func=cmd_shots)

    synth = vsub.add_parser("synth", help="generate a synthetic-world video with questions")
    synth.add_argument("out", help="output directory")
    synth.add_argument("--minutes", type=float, default=5.0)
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--fps", type=float, default=8.0)
    synth.add_argument("--size", default="320x180", help="WIDTHxHEIGHT")
    synth.add_argument("--per-kind", type=int, default=2, help="questions per kind")
    synth.set_defaults(func=cmd_synth)


def _reader(backend: str = "pyav") -> Any:
    from vidra.config import load_settings
    from vidra.video import open_reader

    settings = load_settings()
    settings.video.backend = backend  # type: ignore[assignment]
    return open_reader(settings)


def cmd_probe(args: argparse.Namespace) -> int:
    from vidra.video import probe

    info = probe(args.path)
    data = {k: v for k, v in asdict(info).items() if not k.startswith("_") and k != "identity"}
    if args.keyframes:
        data["keyframe_times"] = [round(t, 3) for t in info.keyframe_times()]
    print(json.dumps(data, indent=2))
    return 0


def _segment(text: str, info: Any) -> tuple[int, int]:
    try:
        a, b = (float(x) for x in text.split(":"))
    except ValueError as exc:
        raise InvalidInput(f"--segment {text!r} must be START:END in seconds, e.g. 60:90") from exc
    if not 0 <= a < b:
        raise InvalidInput(f"--segment {text!r}: need 0 <= START < END")
    return info.index_at(a), min(info.frame_count, info.index_at(b) + 1)


def cmd_sample(args: argparse.Namespace) -> int:
    from PIL import Image

    from vidra.video import fixed_fps_indices, uniform_segment_indices

    reader = _reader(args.backend)
    info = reader.probe(args.path)
    if args.indices:
        try:
            indices = [int(x) for x in args.indices.split(",") if x.strip()]
        except ValueError as exc:
            raise InvalidInput(f"--indices {args.indices!r} must be integers like 0,10,20") from exc
    elif args.fps:
        indices = fixed_fps_indices(info.frame_count, info.fps, args.fps)
    else:
        start, stop = _segment(args.segment, info) if args.segment else (0, info.frame_count)
        indices = uniform_segment_indices(start, stop, args.n)
    frames = reader.frames(args.path, indices, size=args.size)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for i, frame in zip(indices, frames, strict=True):
        name = out / f"frame_{i:07d}_{info.time_of(i):09.3f}s.png"
        Image.fromarray(frame).save(name)
        print(f"{i}\t{info.time_of(i):.3f}s\t{name}")
    return 0


def cmd_storyboard(args: argparse.Namespace) -> int:
    from vidra.video import make_storyboard

    board = make_storyboard(_reader(), args.path, n=args.n, tile=args.tile)
    path = board.save(args.out)
    print(f"{path}  ({len(board.times)} tiles at {', '.join(f'{t:.1f}s' for t in board.times)})")
    return 0


def cmd_shots(args: argparse.Namespace) -> int:
    from vidra.video import detect_shots

    for seg in detect_shots(_reader(), args.path, args.sample_fps, threshold=args.threshold):
        print(f"{seg.start:10.3f}s  {seg.end:10.3f}s  frames {seg.start_index}-{seg.end_index}")
    return 0


def parse_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(x) for x in text.lower().split("x"))
    except ValueError as exc:
        raise InvalidInput(f"size {text!r} must be WIDTHxHEIGHT, e.g. 320x180") from exc
    return w, h


def cmd_synth(args: argparse.Namespace) -> int:
    from vidra.video.synthetic import (
        WorldSpec,
        generate_questions,
        make_world,
        render_world,
        write_questions,
    )

    width, height = parse_size(args.size)
    if args.minutes <= 0:
        raise InvalidInput(f"--minutes {args.minutes} must be positive")
    spec = WorldSpec(
        duration=args.minutes * 60, fps=args.fps, width=width, height=height, seed=args.seed
    )
    out = Path(args.out)
    world = make_world(spec)
    video = render_world(world, out / "video.mp4")
    world.to_jsonl(out / "events.jsonl")
    questions = generate_questions(world, args.per_kind, video=str(video.resolve()))
    write_questions(questions, out / "questions.jsonl")
    print(
        f"{video}: {spec.duration:.0f} s, {len(world.objects)} objects, "
        f"{len(world.scenes)} scenes; {len(questions)} questions in {out / 'questions.jsonl'}"
    )
    return 0
