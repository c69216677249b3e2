"""The demo: the whole loop on embedded defaults, offline.

Generates a long synthetic video with a question set; answers questions with the four
agents on the built-in ``vidra-tiny`` (G sampled rollouts each, live progress); stores the
trajectories in the default SQLite store; runs one GRPO retraining cycle on them through Ray
Train with MLflow tracking; evaluates before and after on held-out questions and prints a
short report and where to look.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vidra.config import Settings, load_settings

__all__ = ["DemoSpec", "run_demo"]

Say = Callable[[str], None]


@dataclass(frozen=True)
class DemoSpec:
    """What the demo does (the CLI's flags)."""

    out: Path = Path("demo_out")
    minutes: float = 30.0
    questions: int = 8
    rollouts: int = 4
    eval_questions: int = 10
    retrain: bool = True
    seed: int = 0


def _model_path(settings: Settings, say: Say) -> str:
    from vidra.errors import NotFound
    from vidra.models import resolve_model_path
    from vidra.models.tiny import build_tiny

    try:
        return resolve_model_path("vidra-tiny")
    except NotFound:
        path = settings.data_dir / "models" / "tiny-xs"
        if not (path / "config.json").is_file():
            say(f"vidra-tiny is not in this installation; building an untrained model at {path}")
            build_tiny(path, size="xs")
        return str(path)


def _row(name: str, before: Any, after: Any, fmt: str = "{:.2f}") -> str:
    b, a = (fmt.format(x) if isinstance(x, int | float) else str(x) for x in (before, after))
    return f"  {name:<22}{b:>12}{a:>12}"


def _world(spec: DemoSpec, say: Say) -> tuple[Path, list[Any]]:
    from vidra.video.synthetic import (
        WorldSpec,
        generate_questions,
        make_world,
        render_world,
        write_questions,
    )

    t0 = time.perf_counter()
    spec.out.mkdir(parents=True, exist_ok=True)
    world = make_world(
        WorldSpec(duration=spec.minutes * 60, fps=4, width=160, height=90, seed=spec.seed)
    )
    video = render_world(world, spec.out / "video.mp4", gop_s=4)
    world.to_jsonl(spec.out / "events.jsonl")
    questions = generate_questions(world, 3, video=str(video.resolve()))
    write_questions(questions, spec.out / "questions.jsonl")
    say(
        f"[1/4] generated {video} ({spec.minutes:g} min, {len(world.objects)} objects, "
        f"{len(questions)} questions) in {time.perf_counter() - t0:.0f} s"
    )
    return video, questions


def _answer(rt: Any, video: Path, batch: list[Any], first: int, rollouts: int, say: Say) -> str:
    """Answer ``batch`` (live steps of rollout 0); the last episode id."""
    from vidra import jobs

    last = ""
    for k, q in enumerate(batch, first):
        say(f"  Q{k} ({q.kind}): {q.text}  options {q.options}  truth {q.answer!r}")
        job_id = jobs.submit(rt, video, q.text, q.options, q.answer, rollouts)
        events = rt.executor.events(job_id)
        while (event := events.get()).get("type") != "job_done":
            if event["type"] == "step" and event.get("rollout", 0) == 0:
                say(f"     · {event['node']:<9} {str(event['summary'])[:90]}")
        ans = jobs.wait(rt, job_id)
        last = ans.episode_id
        right = "right" if ans.rewards.get("accuracy") else "wrong"
        say(f"     -> {ans.text!r} ({right}); trajectory {ans.episode_id}")
    return last


def _retrain(
    rt: Any, video: Path, picked: list[Any], spare: list[Any], spec: DemoSpec, say: Say
) -> tuple[Any, str]:
    """One GRPO cycle; when every group answered alike, ask two more questions and retry."""
    from vidra.errors import InvalidInput
    from vidra.pipelines.retrain import retrain

    last = ""
    while True:
        try:
            return retrain(rt.settings, "grpo"), last
        except InvalidInput as exc:  # every group answered alike: nothing to learn yet
            if not spare or "no GRPO samples" not in str(exc):
                raise
            say(f"  {exc}\n  answering two more questions for reward variance")
            more, spare = spare[:2], spare[2:]
            last = _answer(rt, video, more, len(picked) + 1, spec.rollouts, say)
            picked += more


def _report(result: Any, settings: Settings, last: str, t0: float, say: Say) -> None:
    before, after = result.eval_report["champion"], result.eval_report["candidate"]
    say(f"[4/4] report on {after['questions']} held-out questions")
    say(f"  {'':<22}{'before':>12}{'after':>12}")
    say(_row("accuracy", before["accuracy"], after["accuracy"]))
    say(_row("frames per question", before["frames_per_question"], after["frames_per_question"]))
    say(_row("rounds per question", before["rounds_per_question"], after["rounds_per_question"]))
    say(_row("latency (s)", before["latency_s"], after["latency_s"]))
    seen = (
        (before.get("evidence_seen") or {}).get("mean"),
        (after.get("evidence_seen") or {}).get("mean"),
    )
    say(_row("evidence shown", seen[0] if seen[0] is not None else "-", seen[1] or "-"))
    say(f"  trained on {result.samples} steps of {result.episodes} episodes")
    say(f"  {result.summary()}")
    say(
        f"\nlook at a trajectory:  vidra show {last}\n"
        f"all jobs:              vidra jobs\n"
        f"training runs:         mlflow ui --backend-store-uri {settings.resolved_tracking_uri()}\n"
        f"demo finished in {time.perf_counter() - t0:.0f} s"
    )


def run_demo(spec: DemoSpec, settings: Settings | None = None, say: Say = print) -> int:
    """Run the demo; returns the exit status."""
    import torch

    from vidra.pipelines.train_tiny import tiny_agent_settings
    from vidra.runtime import Runtime

    torch.set_num_threads(2)
    t0 = time.perf_counter()
    video, questions = _world(spec, say)
    settings = tiny_agent_settings(settings or load_settings())
    settings.mlflow.use_champions = False  # the demo compares against the SFT'd base
    settings.model.path = _model_path(settings, say)
    settings.train.eval_questions = spec.eval_questions
    picked = questions[:: max(1, len(questions) // spec.questions)][: spec.questions]
    say(
        f"[2/4] answering {len(picked)} questions x {spec.rollouts} rollouts "
        f"with {settings.model.path}"
    )
    with Runtime(settings) as rt:
        last = _answer(rt, video, picked, 1, spec.rollouts, say)
        episodes = sum(1 for _ in rt.store.iter_trajectories())
        say(f"  {episodes} episodes in {settings.resolved_database_url()}")
        if not spec.retrain:
            say(f"done in {time.perf_counter() - t0:.0f} s; look at one: vidra show {last}")
            return 0
        say("[3/4] one GRPO cycle on these trajectories (Ray Train, MLflow) + held-out eval")
        spare = [q for q in questions if q not in picked]
        result, more_last = _retrain(rt, video, picked, spare, spec, say)
    _report(result, settings, more_last or last, t0, say)
    return 0
