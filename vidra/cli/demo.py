"""``vidra demo``: the main job on embedded defaults, offline.

Generates a long synthetic video with a question set, asks questions with the four agents
on the tiny model (the packaged ``vidra-tiny`` when present, else a tiny Qwen2.5-VL built
here), stores the trajectories in the default SQLite store, and prints each answer with
its trajectory id and where to look.
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
    p.add_argument("--questions", type=int, default=3, help="questions to ask")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_demo)


def _tiny_model(settings: Any) -> str:
    from vidra.errors import NotFound
    from vidra.models import resolve_model_path
    from vidra.models.tiny import build_tiny

    try:
        return resolve_model_path(settings.model.path)
    except NotFound:
        path = settings.data_dir / "models" / "tiny-xs"
        if not (path / "config.json").is_file():
            print(f"building a tiny Qwen2.5-VL at {path} (vidra-tiny is not packaged yet)")
            build_tiny(path, size="xs")
        return str(path)


def cmd_demo(args: argparse.Namespace) -> int:
    import torch

    from vidra.api import Client
    from vidra.cli.ask import print_trajectory
    from vidra.config import Settings
    from vidra.video import make_storyboard
    from vidra.video.synthetic import (
        WorldSpec,
        generate_questions,
        make_world,
        render_world,
        write_questions,
    )

    torch.set_num_threads(2)
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

    settings = Settings()
    settings.model.path = _tiny_model(settings)
    with Client(settings) as client:
        info = client.reader.probe(video)
        print(
            json.dumps(
                {
                    k: getattr(info, k)
                    for k in ("duration", "fps", "frame_count", "width", "height", "codec")
                }
            )
        )
        board = make_storyboard(client.reader, video, n=16)
        print(f"storyboard: {board.save(out / 'storyboard.png')}")
        picked = questions[:: max(1, len(questions) // args.questions)][: args.questions]
        for q in picked:
            print(f"\nQ ({q.kind}): {q.text}\n   options: {q.options}   truth: {q.answer!r}")
            job = client.submit(video, q.text, options=q.options, answer=q.answer)
            for event in job.events():
                if event["type"] == "step":
                    print(f"   · {event['node']:<13} {event['summary']}")
            answer = job.result()
            print(
                f"   answer: {answer.text!r} (confidence {answer.confidence or 0:.2f}); "
                f"rewards {answer.rewards}; trajectory id {answer.episode_id}"
            )
        print()
        print_trajectory(client.episode(answer.episode_id))
        print(
            f"\nstore: {settings.resolved_database_url()}\n"
            f"look at any trajectory with: vidra show <trajectory id>;  jobs: vidra jobs"
        )
    print(f"demo finished in {time.perf_counter() - t0:.0f} s")
    return 0
