"""Episode builders shared by the storage tests and their writer subprocesses."""

from __future__ import annotations

import random
from typing import Any

from vidra.storage import EpisodeIn, JobCreate, TrajectoryStore, VideoIn

ROLES = ("planner", "selector", "reasoner", "critic")


def video_in(tag: str = "a", content: str | None = None) -> VideoIn:
    return VideoIn(
        path=f"/videos/{tag}.mp4",
        size=1000,
        mtime_ns=1,
        content_hash=content or f"h{tag}",
        duration=60.0,
        fps=30.0,
        frame_count=1800,
        width=640,
        height=360,
        codec="h264",
    )


def make_job(
    store: TrajectoryStore, tag: str = "a", question: str = "What colour?", **kw: Any
) -> str:
    video = store.register_video(video_in(tag, kw.pop("content", None)))
    job = store.create_job(
        JobCreate(video_id=video.id, question=question, options=["red", "blue"], answer="red", **kw)
    )
    return job.id


def make_episode(
    job_id: str,
    rollout: int,
    n_steps: int = 4,
    seed: int = 0,
    accuracy: float | None = None,
    tokens: int = 12,
) -> EpisodeIn:
    rng = random.Random(seed * 1000 + rollout)
    steps = []
    for k in range(n_steps):
        ids = [rng.randrange(0, 150_000) for _ in range(tokens)]
        steps.append(
            {
                "order": k,
                "role": ROLES[k % 4],
                "adapter_version": f"{ROLES[k % 4]}@v1",
                "prompt": f"prompt {seed}/{rollout}/{k} " + "x" * rng.randrange(0, 50),
                "frames": [("vid", rng.randrange(0, 1800)) for _ in range(3)],
                "completion": f"completion {k}",
                "token_ids": ids,
                "logprobs": [-rng.random() * 5 for _ in ids],
                "parsed": {"k": k, "answer": "red"},
                "latency_s": 0.01,
                "prompt_tokens": 100,
                "completion_tokens": len(ids),
            }
        )
    acc = float(rng.random() > 0.5) if accuracy is None else accuracy
    return EpisodeIn(
        job_id=job_id,
        rollout_index=rollout,
        answer="red",
        choice=0,
        confidence=0.7,
        frames_used=3 * n_steps,
        rounds=1,
        latency_s=0.5,
        thread_id=f"{job_id}:{rollout}",
        steps=steps,
        rewards=[
            {"name": "accuracy", "value": acc},
            {"name": "format", "value": 1.0},
            {"name": "critic", "value": 0.5, "step_order": 0},
        ],
    )
