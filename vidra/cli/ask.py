"""``vidra ask | jobs | show | resume``: questions, jobs and trajectories (via `api` only)."""

from __future__ import annotations

import argparse
import json
from typing import Any

__all__ = ["print_trajectory", "register"]


def register(sub: Any) -> None:
    ask = sub.add_parser("ask", help="ask a question about a video and watch the agents work")
    ask.add_argument("video")
    ask.add_argument("question")
    ask.add_argument("--option", action="append", dest="options", help="a choice (repeat)")
    ask.add_argument("--answer", help="ground truth, if known (enables rewards)")
    ask.add_argument("--rollouts", type=int, default=1, help="G sampled episodes (a group)")
    ask.add_argument("--model", help="checkpoint path or hub id (default: settings)")
    ask.add_argument("--strategy", help="uniform | shots | coarse_to_fine | model")
    ask.add_argument("--max-frames", type=int, help="frame budget of an episode")
    ask.add_argument("--json", action="store_true", help="print the answer as JSON only")
    ask.set_defaults(func=cmd_ask)

    jobs = sub.add_parser("jobs", help="list recent jobs")
    jobs.add_argument("--status", help="queued | running | done | failed | cancelled")
    jobs.add_argument("--limit", type=int, default=20)
    jobs.set_defaults(func=cmd_jobs)

    show = sub.add_parser("show", help="show an episode's trajectory (steps and rewards)")
    show.add_argument("episode_id")
    show.set_defaults(func=cmd_show)

    resume = sub.add_parser("resume", help="finish jobs left queued or running by a crash")
    resume.set_defaults(func=cmd_resume)


def _client(model: str | None = None) -> Any:
    from vidra.api import Client
    from vidra.config import load_settings

    settings = load_settings()
    if model:
        settings.model.path = model
    return Client(settings)


def cmd_ask(args: argparse.Namespace) -> int:
    from rich.console import Console

    console = Console(stderr=True)
    with _client(args.model) as client:
        budget = {"max_frames": args.max_frames} if args.max_frames else None
        job = client.submit(
            args.video,
            args.question,
            options=args.options,
            answer=args.answer,
            rollouts=args.rollouts,
            budget=budget,
            strategy=args.strategy,
        )
        with console.status(f"job {job.id}: working", spinner="dots") as status:
            for event in job.events():
                if event["type"] == "step":
                    console.print(
                        f"  rollout {event['rollout']} · {event['node']:<13} {event['summary']}",
                        highlight=False,
                    )
                    status.update(f"job {job.id}: {event['node']}")
                elif event["type"] == "episode":
                    console.print(
                        f"  rollout {event['rollout']} recorded as episode {event['episode_id']}",
                        highlight=False,
                    )
        answer = job.result()
        if args.json:
            print(json.dumps(answer.__dict__))
            return 0
        print(f"answer:     {answer.text}")
        print(f"confidence: {answer.confidence:.2f}" if answer.confidence is not None else "")
        print(f"evidence:   {', '.join(f'{t:.1f}s' for t in answer.evidence) or '-'}")
        if answer.rewards:
            print("rewards:    " + ", ".join(f"{k}={v:.2f}" for k, v in answer.rewards.items()))
        print(f"episode:    {answer.episode_id}   (vidra show {answer.episode_id})")
    return 0


def cmd_jobs(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    with _client() as client:
        rows = client.jobs(status=args.status, limit=args.limit)
    table = Table("job", "status", "created", "rollouts", "question")
    for j in rows:
        table.add_row(
            j.id,
            j.status,
            j.created_at.strftime("%Y-%m-%d %H:%M:%S"),
            str(j.rollouts),
            j.question[:60],
        )
    Console().print(table)
    return 0


def _tool_line(step: Any) -> str:
    """A selector tool call in a few words: ``search 'red triangle'``, ``inspect 2:11.0``."""
    from vidra.video.storyboard import format_timestamp

    p = step.parsed
    if p["tool"] == "search":
        return f"search {p.get('query', '')!r}"
    if p["tool"] == "zoom":
        return f"zoom {format_timestamp(p['start'])}-{format_timestamp(p['end'])}"
    times = ", ".join(format_timestamp(t) for t in p.get("times", [])) or "the best hits"
    return f"inspect {times}"


def print_trajectory(t: Any) -> None:
    """A trajectory as a readable table: one row per step, then the rewards."""
    import sys

    from rich.console import Console
    from rich.table import Table

    e = t.episode
    console = Console(width=None if sys.stdout.isatty() else 160)
    console.print(
        f"episode {e.id}  job {e.job_id}  rollout {e.rollout_index}  "
        f"rounds {e.rounds}  frames {e.frames_used}  {e.latency_s:.1f} s",
        highlight=False,
    )
    table = Table("#", "role", "adapter", "frames", "tokens", "ok")
    table.add_column("output", no_wrap=True, overflow="ellipsis", max_width=60)
    for s in t.steps:
        table.add_row(
            str(s.order),
            s.role,
            s.adapter_version or "-",
            str(len(s.frames)),
            str(s.completion_tokens),
            "yes" if s.parse_ok else "no",
            (json.dumps(s.parsed) if s.parsed else s.completion)[:70],
        )
    console.print(table)
    calls = [_tool_line(s) for s in t.steps if isinstance(s.parsed, dict) and "tool" in s.parsed]
    if calls:
        console.print("tool calls: " + " -> ".join(calls), highlight=False)
    damaged = [str(s.order) for s in t.steps if s.damaged]
    if damaged:
        console.print(
            f"note: the stored text of step(s) {', '.join(damaged)} is damaged (not valid "
            "UTF-8); shown with replacement characters, token ids are intact",
            highlight=False,
        )
    console.print(f"answer: {e.answer!r}  confidence: {e.confidence}", highlight=False)
    console.print(
        "rewards: "
        + ", ".join(
            f"{r.name}{'' if r.step_order is None else f'@{r.step_order}'}={r.value:.3f}"
            for r in t.rewards
        ),
        highlight=False,
    )


def cmd_show(args: argparse.Namespace) -> int:
    with _client() as client:
        print_trajectory(client.episode(args.episode_id))
    return 0


def cmd_resume(args: argparse.Namespace) -> int:
    with _client() as client:
        jobs = client.resume()
        for job in jobs:
            try:
                answer = job.result()
                print(f"{job.id}: done, answer {answer.text!r} (episode {answer.episode_id})")
            except Exception as exc:  # report each job, keep going
                print(f"{job.id}: {exc}")
        if not jobs:
            print("nothing to resume")
    return 0
