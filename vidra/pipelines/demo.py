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
    eval_questions: int = 30
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
    """Answer ``batch`` (live steps of every rollout, tagged r0, r1, ...); the last episode id."""
    from vidra import jobs
    from vidra.evals.tasks.synthetic import evidence_spans

    last = ""
    for k, q in enumerate(batch, first):
        say(f"  Q{k} ({q.kind}): {q.text}  options {q.options}  truth {q.answer!r}")
        job_id = jobs.submit(rt, video, q.text, q.options, q.answer, rollouts,
                             evidence=evidence_spans(q))  # fmt: skip
        events = rt.executor.events(job_id)
        while (event := events.get()).get("type") != "job_done":
            if event["type"] == "step":
                say(f"     r{event.get('rollout', 0)} {event['node']:<13} "
                    f"{str(event['summary'])[:100]}")  # fmt: skip
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
    from vidra.pipelines.retrain import retrain, step_line

    last = ""
    while True:
        try:
            return retrain(rt.settings, "grpo", on_step=lambda row: say(step_line(row))), last
        except InvalidInput as exc:  # every group answered alike: nothing to learn yet
            if not spare or "no GRPO samples" not in str(exc):
                raise
            say(f"  {exc}\n  answering two more questions for reward variance")
            more, spare = spare[:2], spare[2:]
            last = _answer(rt, video, more, len(picked) + 1, spec.rollouts, say)
            picked += more


def _vidra_command() -> str:
    """How to run ``vidra`` from the user's shell: the bare name when it is on PATH, else
    the path of this environment's script (the README's ``make demo`` does not activate)."""
    import os
    import shutil
    import sys

    here = Path(sys.executable).parent / "vidra"
    found = shutil.which("vidra")
    if found and Path(found).resolve() == here.resolve():
        return "vidra"
    if here.is_file():
        try:
            return os.path.relpath(here)
        except ValueError:
            return str(here)
    return "vidra"


def _ci(mean: float | None, ci: Any) -> str:
    if mean is None:
        return "-"
    return f"{mean:.2f} [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else f"{mean:.2f}"


def _training_score(rt: Any) -> tuple[int, float, tuple[float, float]]:
    """Accuracy of every rollout the demo answered (the training set), with its interval."""
    from vidra.evals.metrics import bootstrap_ci

    values = [
        r.value for t in rt.store.iter_trajectories() for r in t.rewards if r.name == "accuracy"
    ]
    if not values:
        return 0, float("nan"), (float("nan"), float("nan"))
    return len(values), sum(values) / len(values), bootstrap_ci(values)


METRICS = """  what the figures mean:
    accuracy         share of questions answered right (multiple choice, chance ~0.30);
                     [a, b] is its 95% bootstrap interval: a difference inside the
                     intervals' overlap is noise
    evidence shown   share of questions where the reasoner was shown a frame within 2 s
                     of the ground-truth evidence (the frame selector's hit rate)
    frames           frames shown to the reasoner per question; rounds: select-reason-
                     critique rounds per question (the critic sends answers back)
    paired diff      after minus before on the same questions, with its 95% paired
                     bootstrap interval (what the promotion gate decides on)"""


def _report(result: Any, settings: Settings, last: str, train: Any, t0: float, say: Say) -> None:
    before, after = result.eval_report["champion"], result.eval_report["candidate"]
    n = after.get("answered", after["questions"])
    say(f"[4/4] report: {n} held-out questions (synthetic worlds never trained on), "
        f"before (vidra-tiny) and after the cycle")  # fmt: skip
    say(f"  {'':<22}{'before':>20}{'after':>20}")
    wide = "{:>20}"

    def row(name: str, b: str, a: str) -> None:
        say(f"  {name:<22}{wide.format(b)}{wide.format(a)}")

    row("accuracy [95% CI]", _ci(before["accuracy"], before.get("ci95")),
        _ci(after["accuracy"], after.get("ci95")))  # fmt: skip
    seen_b, seen_a = before.get("evidence_seen") or {}, after.get("evidence_seen") or {}
    row("evidence shown", _ci(seen_b.get("mean"), seen_b.get("ci95")),
        _ci(seen_a.get("mean"), seen_a.get("ci95")))  # fmt: skip
    row("frames per question", f"{before['frames_per_question']:.1f}",
        f"{after['frames_per_question']:.1f}")  # fmt: skip
    row("rounds per question", f"{before['rounds_per_question']:.2f}",
        f"{after['rounds_per_question']:.2f}")  # fmt: skip
    row("latency (s)", f"{before['latency_s']:.2f}", f"{after['latency_s']:.2f}")
    ev = result.evaluation
    if "diff" in ev:
        lo, hi = ev.get("ci95_low", float("nan")), ev.get("ci95_high", float("nan"))
        say(f"  paired diff (after - before): {ev['diff']:+.3f} [{lo:+.3f}, {hi:+.3f}]")
    k, acc, ci = train
    say(f"  training set: {k} rollouts answered by vidra-tiny, accuracy {_ci(acc, ci)}")
    say(f"  trained on {result.samples} steps of {result.episodes} episodes")
    say(f"  {result.summary()}")
    say(METRICS)
    vidra = _vidra_command()
    say(
        f"\nlook at a trajectory:  {vidra} show {last}\n"
        f"all jobs:              {vidra} jobs\n"
        f"training runs:         {Path(vidra).parent / 'mlflow' if '/' in vidra else 'mlflow'} "
        f"ui --backend-store-uri {settings.resolved_tracking_uri()}\n"
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
            say(f"done in {time.perf_counter() - t0:.0f} s; look at one: "
                f"{_vidra_command()} show {last}")  # fmt: skip
            return 0
        say("[3/4] one GRPO cycle on these trajectories (Ray Train, MLflow) + held-out eval")
        spare = [q for q in questions if q not in picked]
        train = _training_score(rt)
        result, more_last = _retrain(rt, video, picked, spare, spec, say)
    _report(result, settings, more_last or last, train, t0, say)
    return 0
