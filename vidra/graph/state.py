"""The episode state: serialisable ids, plan, frame indices, answers, critiques, budget use.

Frames never enter the state (only their indices); every agent step is appended to
``steps`` as a plain dict, so a checkpointed episode resumes without losing or repeating one.
"""

from __future__ import annotations

import operator
from typing import Annotated, Any, TypedDict

__all__ = ["Budget", "EpisodeState", "initial_state"]


class Budget(TypedDict):
    max_rounds: int
    max_frames: int
    frames_per_round: int
    deadline_s: float


class EpisodeState(TypedDict, total=False):
    job_id: str
    rollout: int
    video_id: str
    video_path: str
    duration: float
    fps: float
    frame_count: int
    question: str
    options: list[str] | None
    truth: str | None  # ground truth: used for rewards only, never shown to an agent
    evidence: list[tuple[float, float]] | None  # ground-truth spans: rewards only, never shown
    subtitles: str | None  # a subtitle file; lines near the looked-at frames go in prompts
    budget: Budget
    deadline: float  # absolute (epoch seconds)
    plan: dict[str, Any] | None
    seen: list[int]
    latest: list[int]
    clips: list[int]  # index entries (ids) the selector's searches surfaced
    searches: list[str]  # queries of the index searched (the reasoner reads their findings)
    rounds: int
    answers: Annotated[list[dict[str, Any]], operator.add]
    critiques: Annotated[list[dict[str, Any]], operator.add]
    steps: Annotated[list[dict[str, Any]], operator.add]
    decision: str
    final: dict[str, Any] | None
    rewards: list[dict[str, Any]]


def initial_state(
    *,
    job_id: str,
    rollout: int,
    video_id: str,
    video_path: str,
    duration: float,
    fps: float,
    frame_count: int,
    question: str,
    options: list[str] | None,
    truth: str | None,
    budget: Budget,
    now: float,
    evidence: list[tuple[float, float]] | None = None,
    subtitles: str | None = None,
) -> EpisodeState:
    return EpisodeState(
        job_id=job_id,
        rollout=rollout,
        video_id=video_id,
        video_path=video_path,
        duration=duration,
        fps=fps,
        frame_count=frame_count,
        question=question,
        options=options,
        truth=truth,
        evidence=evidence,
        subtitles=subtitles,
        budget=budget,
        deadline=now + budget["deadline_s"],
        plan=None,
        seen=[],
        latest=[],
        clips=[],
        searches=[],
        rounds=0,
        answers=[],
        critiques=[],
        steps=[],
        decision="",
        final=None,
        rewards=[],
    )
