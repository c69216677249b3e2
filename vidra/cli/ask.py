"""``vidra ask | jobs | show | resume``: questions, jobs and trajectories (via `api` only)."""

from __future__ import annotations

import argparse
import json
from typing import Any

__all__ = ["print_trajectory", "register"]


STRATEGY_NAMES = ("uniform", "shots", "coarse_to_fine", "model", "search", "retrieve")
STATUSES = ("queued", "running", "done", "failed", "cancelled")
DEFAULTS = argparse.ArgumentDefaultsHelpFormatter


def register(sub: Any) -> None:
    ask = sub.add_parser(
        "ask",
        help="ask a question about a video and watch the agents work",
        description="Ask one question about a video. With --option the answer is one of the "
        "options; without, it is free text. Ctrl-C cancels the job (a second Ctrl-C quits).",
        formatter_class=DEFAULTS,
    )
    ask.add_argument("video", help="a video file, or an http(s)/fsspec URL")
    ask.add_argument("question", help="the question (quote it)")
    ask.add_argument(
        "--option",
        action="append",
        dest="options",
        help="a multiple-choice option (repeat it; none: an open-ended question)",
    )
    ask.add_argument("--answer", help="the ground truth, if known (enables the accuracy reward)")
    ask.add_argument(
        "--rollouts",
        type=int,
        default=1,
        help="sampled episodes; 2 or more form a GRPO group for retraining",
    )
    ask.add_argument(
        "--model",
        help="checkpoint directory or hub id (default: VIDRA_MODEL__PATH, the built-in vidra-tiny)",
    )
    ask.add_argument(
        "--strategy",
        choices=STRATEGY_NAMES,
        help="frame selector (default: VIDRA_AGENTS__STRATEGY)",
    )
    ask.add_argument(
        "--max-frames",
        type=int,
        help="frames the episode may look at (default: VIDRA_AGENTS__MAX_FRAMES)",
    )
    ask.add_argument("--subtitles", help="an SRT/VTT/JSON subtitle file for the video")
    ask.add_argument(
        "--evidence",
        action="append",
        metavar="START-END",
        help="a ground-truth span that shows the answer, e.g. 12.5-15 or 1:02-1:05 (repeat it; "
        "rewards only: credits the search/zoom steps that surface it)",
    )
    ask.add_argument("--json", action="store_true", help="print the answer as JSON only")
    ask.set_defaults(func=cmd_ask)  # fmt: skip

    jobs = sub.add_parser("jobs", help="list recent jobs", formatter_class=DEFAULTS)
    jobs.add_argument("--status", choices=STATUSES, help="only jobs in this status")
    jobs.add_argument("--limit", type=int, default=20, help="most jobs to list")
    jobs.add_argument("--json", action="store_true", help="one JSON object per job")
    jobs.set_defaults(func=cmd_jobs)

    show = sub.add_parser("show", help="show a job's or an episode's trajectory")
    show.add_argument("id", help="a job id (all its episodes) or an episode id")
    show.set_defaults(func=cmd_show)

    resume = sub.add_parser("resume", help="finish jobs a crash or an outage left unfinished")
    resume.set_defaults(func=cmd_resume)


def _span(text: str) -> tuple[float, float]:
    """``START-END``, each in seconds or m:ss, e.g. ``12.5-15`` or ``1:02-1:05.5``."""
    from vidra.errors import InvalidInput
    from vidra.video.subtitles import parse_clock

    start, sep, end = text.partition("-")
    try:
        if sep:
            return parse_clock(start), parse_clock(end)
    except ValueError:
        pass
    raise InvalidInput(f"--evidence {text!r} is not a span: give START-END, e.g. 12.5-15")


def _client(model: str | None = None) -> Any:
    from vidra.api import Client
    from vidra.config import load_settings

    settings = load_settings()
    if model:
        settings.model.path = model
    return Client(settings)


def _watch(job: Any, console: Any) -> None:
    """Every rollout's steps as they happen (until the job ends)."""
    with console.status(f"job {job.id}: working", spinner="dots") as status:
        for event in job.events():
            if event["type"] == "step":
                console.print(
                    f"  rollout {event['rollout']} · {event['node']:<13} {event['summary']}",
                    highlight=False,
                )
                status.update(f"job {job.id}: rollout {event['rollout']} {event['node']}")
            elif event["type"] == "episode":
                console.print(
                    f"  rollout {event['rollout']} recorded as episode {event['episode_id']}",
                    highlight=False,
                )


def _interruptible(job: Any) -> dict[str, int]:
    """Ctrl-C cancels ``job`` (it stops at its next step); a second Ctrl-C quits at once."""
    import os
    import signal
    import sys

    hits = {"n": 0}

    def on_sigint(signum: int, frame: Any) -> None:
        hits["n"] += 1
        if hits["n"] > 1:
            os._exit(130)
        print(f"vidra: cancelling job {job.id} (Ctrl-C again quits at once)", file=sys.stderr)
        job.cancel()

    signal.signal(signal.SIGINT, on_sigint)
    return hits


def cmd_ask(args: argparse.Namespace) -> int:
    import sys

    from rich.console import Console

    from vidra.errors import JobCancelled

    console = Console(stderr=True)
    evidence = [_span(x) for x in args.evidence or []]
    with _client(args.model) as client:
        budget = {"max_frames": args.max_frames} if args.max_frames is not None else None
        job = client.submit(
            args.video, args.question, options=args.options, answer=args.answer,
            rollouts=args.rollouts, budget=budget, strategy=args.strategy,
            subtitles=args.subtitles, evidence=evidence,
        )  # fmt: skip
        hits = _interruptible(job)
        _watch(job, console)
        try:
            answer = job.result()
        except JobCancelled:
            if not hits["n"]:
                raise
            kept = len(client.store.episodes_of_job(job.id))
            print(f"vidra: job {job.id} cancelled; {kept} finished episode(s) stay recorded",
                  file=sys.stderr)  # fmt: skip
            return 130
    if args.json:
        print(json.dumps(answer.__dict__))
        return 0
    print(f"answer:     {answer.text}")
    if answer.confidence is not None:
        print(f"confidence: {answer.confidence:.2f}")
    print(f"evidence:   {', '.join(f'{t:.1f}s' for t in answer.evidence) or '-'}")
    if answer.rewards:
        print("rewards:    " + ", ".join(f"{k}={v:.2f}" for k, v in answer.rewards.items()))
    print(f"job:        {answer.job_id}")
    print(f"episode:    {answer.episode_id}   (vidra show {answer.job_id})")
    return 0


def _job_row(client: Any, j: Any) -> dict[str, Any]:
    eps = client.store.episodes_of_job(j.id)
    answer = eps[0].answer if eps else None
    return {"id": j.id, "status": j.status, "created": j.created_at.strftime("%Y-%m-%d %H:%M:%S"),
            "rollouts": j.rollouts, "question": j.question, "answer": answer,
            "episodes": [e.id for e in eps], "error": j.error}  # fmt: skip


def cmd_jobs(args: argparse.Namespace) -> int:
    import sys

    from rich.console import Console
    from rich.table import Table

    with _client() as client:
        rows = [_job_row(client, j) for j in client.jobs(status=args.status, limit=args.limit)]
    if args.json:
        for row in rows:
            print(json.dumps(row))
        return 0
    table = Table("job", "status", "created", "G", "question", "answer", "episodes", "error")
    for r in rows:
        eps = "\n".join(r["episodes"]) or "-"
        table.add_row(r["id"], r["status"], r["created"], str(r["rollouts"]),
                      r["question"][:60], str(r["answer"] or "-")[:30], eps,
                      (r["error"] or "")[:60])  # fmt: skip
    width = None if sys.stdout.isatty() else 240  # ids are never cut
    Console(width=width).print(table)
    if not rows:
        print("no jobs" + (f" with status {args.status}" if args.status else ""))
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
    from vidra.errors import NotFound

    with _client() as client:
        try:
            client.store.get_job(args.id)
        except NotFound:
            print_trajectory(client.episode(args.id))
            return 0
        eps = client.store.episodes_of_job(args.id)
        if not eps:
            print(f"job {args.id} has no recorded episode yet ({client.job(args.id).status()})")
        for e in eps:
            print_trajectory(client.episode(e.id))
    return 0


def cmd_resume(args: argparse.Namespace) -> int:
    from vidra.errors import VidraError

    with _client() as client:
        jobs = client.resume()
        for job in jobs:
            try:
                answer = job.result()
                print(f"{job.id}: done, answer {answer.text!r} (episode {answer.episode_id})")
            except VidraError as exc:  # report each job, keep going
                print(f"{job.id}: {exc}")
        if not jobs:
            print("nothing to resume")
    return 0
