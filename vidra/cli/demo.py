"""``vidra demo``: the main job on embedded defaults.

Until the question-answering pipeline lands this shows the video layer end to end:
generate a long synthetic video, probe it, write a storyboard and sampled frames.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

__all__ = ["register"]


def register(sub: Any) -> None:
    p = sub.add_parser("demo", help="run the offline demo on embedded defaults")
    p.add_argument("--out", default="demo_out", help="output directory (default ./demo_out)")
    p.add_argument("--minutes", type=float, default=30.0, help="length of the generated video")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> int:
    from PIL import Image

    from vidra.video import make_storyboard, open_reader, uniform_indices
    from vidra.video.synthetic import (
        WorldSpec,
        generate_questions,
        make_world,
        render_world,
        write_questions,
    )

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    world = make_world(WorldSpec(duration=args.minutes * 60, seed=args.seed))
    video = render_world(world, out / "video.mp4")
    world.to_jsonl(out / "events.jsonl")
    questions = generate_questions(world, 2, video=str(video.resolve()))
    write_questions(questions, out / "questions.jsonl")
    print(
        f"generated {video} ({args.minutes:g} min, {len(world.objects)} objects, "
        f"{len(questions)} questions) in {time.perf_counter() - t0:.1f} s"
    )

    reader = open_reader()
    info = reader.probe(video)
    print(
        json.dumps(
            {
                k: getattr(info, k)
                for k in ("duration", "fps", "frame_count", "width", "height", "codec", "pix_fmt")
            },
            indent=2,
        )
    )
    t1 = time.perf_counter()
    board = make_storyboard(reader, video, n=16)
    print(f"storyboard: {board.save(out / 'storyboard.png')} ({time.perf_counter() - t1:.2f} s)")
    t2 = time.perf_counter()
    indices = uniform_indices(info.frame_count, 8)
    frames = reader.frames(video, indices, size=160)
    for i, frame in zip(indices, frames, strict=True):
        Image.fromarray(frame).save(out / f"frame_{i:07d}.png")
    print(
        f"sampled {len(indices)} frames at {[round(info.time_of(i), 1) for i in indices]} s "
        f"into {out}/ ({time.perf_counter() - t2:.2f} s)"
    )
    q = questions[0]
    print(f"example question ({q.kind}): {q.text} options={q.options} answer={q.answer!r}")
    return 0
