"""Recorded groups of tiny-model rollouts for training tests (real steps, real replay data)."""

from __future__ import annotations

from pathlib import Path

from vidra.api import Client
from vidra.config import Settings
from vidra.video.synthetic import WorldSpec, generate_questions, make_world, render_world


def tiny_settings(home: Path, model: Path) -> Settings:
    settings = Settings(data_dir=home)
    settings.model.path = str(model)
    settings.agents.max_tokens = 12
    settings.agents.strategy = "uniform"
    quick_gate(settings)
    return settings


def quick_gate(settings: Settings, questions: int = 2) -> None:
    """A gate for plumbing tests: a few questions of one short world, and it always passes
    (a tie is promoted, with any lower bound; no minimum of samples)."""
    t = settings.train
    t.eval_questions = questions
    t.gate_options = {"worlds": "1", "duration": "60", "per_kind": "1", "seed": "7000"}
    t.min_samples, t.promote_ties, t.gate_tolerance = 0, True, 1.0


def record_groups(
    settings: Settings, seed: int, questions: int, rollouts: int, judge: str = "judge"
) -> None:
    """Answer ``questions`` synthetic questions with ``rollouts`` each, then add a reward
    ``judge`` that differs per rollout (an untrained model answers alike; scores arriving
    later give the groups the variance GRPO needs)."""
    world = make_world(WorldSpec(duration=120, fps=4, width=160, height=90, seed=seed))
    video = render_world(world, settings.data_dir / f"world{seed}.mp4", gop_s=4)
    with Client(settings) as client:
        ids = []
        for q in generate_questions(world, per_kind=2)[:questions]:
            job = client.submit(
                video,
                q.text,
                options=q.options,
                answer=q.answer,
                rollouts=rollouts,
                budget={"max_frames": 4, "max_rounds": 1},
            )
            job.result(timeout=900)
            ids.append(job.id)
        for t in client.store.iter_trajectories(job_ids=ids):
            client.store.add_rewards(
                t.episode.id,
                [{"name": judge, "source": "test", "value": t.episode.rollout_index / rollouts}],
            )
