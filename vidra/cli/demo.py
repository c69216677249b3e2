"""``vidra demo``: the whole loop on embedded defaults, offline.

Generates a long synthetic video with a question set; answers questions with the four
agents on the built-in ``vidra-tiny`` (G sampled rollouts each, live progress); stores the
trajectories in the default SQLite store; runs one GRPO retraining cycle on them through Ray
Train with MLflow tracking; evaluates before and after on held-out questions and prints a
short report and where to look.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

__all__ = ["register"]


def register(sub: Any) -> None:
    p = sub.add_parser("demo", help="run the offline demo: answer, log, retrain, evaluate")
    p.add_argument("--out", default="demo_out", help="output directory (default ./demo_out)")
    p.add_argument("--minutes", type=float, default=30.0, help="length of the generated video")
    p.add_argument("--questions", type=int, default=8, help="questions to answer")
    p.add_argument("--rollouts", type=int, default=4, help="sampled rollouts per question (G)")
    p.add_argument("--eval-questions", type=int, default=10, help="held-out questions")
    p.add_argument("--no-retrain", action="store_true", help="only answer the questions")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_demo)


def _model_path(settings: Any) -> str:
    from vidra.errors import NotFound
    from vidra.models import resolve_model_path
    from vidra.models.tiny import build_tiny

    try:
        return resolve_model_path("vidra-tiny")
    except NotFound:
        path = settings.data_dir / "models" / "tiny-xs"
        if not (path / "config.json").is_file():
            print(
                "vidra-tiny is not in this installation; building an untrained tiny model "
                f"at {path}"
            )
            build_tiny(path, size="xs")
        return str(path)


def _row(name: str, before: Any, after: Any, fmt: str = "{:.2f}") -> str:
    b, a = (fmt.format(x) if isinstance(x, int | float) else str(x) for x in (before, after))
    return f"  {name:<22}{b:>12}{a:>12}"


def cmd_demo(args: argparse.Namespace) -> int:
    import torch

    from vidra.api import Client
    from vidra.config import Settings
    from vidra.errors import InvalidInput
    from vidra.models.train_tiny import tiny_agent_settings
    from vidra.video.synthetic import (
        WorldSpec,
        generate_questions,
        make_world,
        render_world,
        write_questions,
    )

    torch.set_num_threads(2)
    t0 = time.perf_counter()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    world = make_world(
        WorldSpec(duration=args.minutes * 60, fps=4, width=160, height=90, seed=args.seed)
    )
    video = render_world(world, out / "video.mp4", gop_s=4)
    world.to_jsonl(out / "events.jsonl")
    questions = generate_questions(world, 3, video=str(video.resolve()))
    write_questions(questions, out / "questions.jsonl")
    print(
        f"[1/4] generated {video} ({args.minutes:g} min, {len(world.objects)} objects, "
        f"{len(questions)} questions) in {time.perf_counter() - t0:.0f} s"
    )

    settings = tiny_agent_settings(Settings())
    settings.mlflow.use_champions = False  # the demo compares against the SFT'd base
    settings.model.path = _model_path(settings)
    picked = questions[:: max(1, len(questions) // args.questions)][: args.questions]
    print(
        f"[2/4] answering {len(picked)} questions x {args.rollouts} rollouts with "
        f"{settings.model.path}"
    )
    last = None
    with Client(settings) as client:

        def answer(batch: list[Any], first: int) -> None:
            nonlocal last
            for k, q in enumerate(batch, first):
                print(f"  Q{k} ({q.kind}): {q.text}  options {q.options}  truth {q.answer!r}")
                job = client.submit(
                    video, q.text, options=q.options, answer=q.answer, rollouts=args.rollouts
                )
                for event in job.events():
                    if event["type"] == "step" and event.get("rollout", 0) == 0:
                        print(f"     · {event['node']:<9} {str(event['summary'])[:90]}")
                ans = job.result()
                last = ans.episode_id
                right = "right" if ans.rewards.get("accuracy") else "wrong"
                print(f"     -> {ans.text!r} ({right}); trajectory {ans.episode_id}")

        answer(picked, 1)
        episodes = sum(1 for _ in client.store.iter_trajectories())
        print(f"  {episodes} episodes in {settings.resolved_database_url()}")
        if args.no_retrain:
            print(f"done in {time.perf_counter() - t0:.0f} s; look at one: vidra show {last}")
            return 0
        print("[3/4] one GRPO cycle on these trajectories (Ray Train, MLflow) + held-out eval")
        settings.train.eval_questions = args.eval_questions
        spare = [q for q in questions if q not in picked]
        while True:
            try:
                result = client.retrain("grpo")
                break
            except InvalidInput as exc:  # every group answered alike: nothing to learn yet
                if not spare or "no GRPO samples" not in str(exc):
                    raise
                print(f"  {exc}\n  answering two more questions for reward variance")
                more, spare = spare[:2], spare[2:]
                answer(more, len(picked) + 1)
                picked += more
    before, after = result.eval_report["champion"], result.eval_report["candidate"]
    print(f"[4/4] report on {after['questions']} held-out questions")
    print(f"  {'':<22}{'before':>12}{'after':>12}")
    print(_row("accuracy", before["accuracy"], after["accuracy"]))
    print(_row("frames per question", before["frames_per_question"], after["frames_per_question"]))
    print(_row("rounds per question", before["rounds_per_question"], after["rounds_per_question"]))
    print(_row("latency (s)", before["latency_s"], after["latency_s"]))
    print(_row("selector hit rate", before["selector_hit_rate"], after["selector_hit_rate"]))
    print(f"  trained on {result.samples} steps of {result.episodes} episodes")
    print(f"  {result.summary()}")
    print(
        f"\nlook at a trajectory:  vidra show {last}\n"
        f"all jobs:              vidra jobs\n"
        f"training runs:         mlflow ui --backend-store-uri {settings.resolved_tracking_uri()}\n"
        f"demo finished in {time.perf_counter() - t0:.0f} s"
    )
    return 0
