"""The reasoner: frames with their timestamps + question -> answer, option, confidence, evidence.

Self-consistency: with ``samples > 1`` the reasoner samples several answers and the
majority option wins (ties: highest mean confidence). Fallback: the first option (or an
empty free-form answer) with confidence 0.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from vidra.agents.base import AgentResult, call_agent
from vidra.agents.context import VideoFacts
from vidra.agents.prompts import REASONER, REFLECT, options_block
from vidra.agents.schemas import Answer, parse_answer
from vidra.models.protocol import ChatModel, ImagePart, Message, SamplingParams, TextPart

__all__ = ["reason", "reflect", "vote"]

STANCES = {
    "conservative": "only trust what a frame clearly shows; prefer 'nothing' or the safest option",
    "neutral": "weigh all frames equally",
    "aggressive": "commit to the most likely option even on weak evidence",
}


def _frame_parts(frames: np.ndarray, times: Sequence[float]) -> list[Any]:
    parts: list[Any] = []
    for frame, t in zip(frames, times, strict=True):
        parts += [TextPart(f"t={t:.1f}s "), ImagePart(frame, float(t))]
    return parts


def _fallback(options: Sequence[str] | None) -> Answer:
    return Answer(
        answer=options[0] if options else "", choice=0 if options else None, confidence=0.0
    )


def vote(answers: Sequence[Answer]) -> Answer:
    """Majority answer; ties broken by mean confidence."""
    counts = Counter(a.answer for a in answers)
    best = max(
        counts, key=lambda k: (counts[k], np.mean([a.confidence for a in answers if a.answer == k]))
    )
    winners = [a for a in answers if a.answer == best]
    return max(winners, key=lambda a: a.confidence)


def reason(
    model: ChatModel,
    facts: VideoFacts,
    question: str,
    options: Sequence[str] | None,
    frames: np.ndarray,
    times: Sequence[float],
    sampling: SamplingParams,
    feedback: str = "",
    samples: int = 1,
) -> AgentResult[Answer]:
    """Answer from ``frames`` (``[n, h, w, 3]`` uint8) shown at ``times`` (s)."""
    note = f"Critic feedback on the last answer: {feedback}\n" if feedback else ""
    text = REASONER.render(question=question, options=options_block(options), feedback=note)
    parts = [*_frame_parts(frames, times), TextPart(text)]
    refs = [(facts.video_id, facts.index_at(t)) for t in times]
    s = sampling.model_copy(update={"n": samples}) if samples > 1 else sampling
    result = call_agent(
        model,
        "reasoner",
        [Message("user", parts)],
        lambda out: parse_answer(out, options),
        lambda: _fallback(options),
        s,
        refs,
    )
    if len(result.samples) > 1:
        return AgentResult(vote(result.samples), result.steps, result.fallback, result.samples)
    return result


def reflect(
    model: ChatModel,
    facts: VideoFacts,
    question: str,
    options: Sequence[str] | None,
    frames: np.ndarray,
    times: Sequence[float],
    sampling: SamplingParams,
    previous: Answer,
) -> AgentResult[Answer]:
    """ReAgent-V-style reflection: conservative, neutral and aggressive re-answers, then a vote."""
    steps: list[dict[str, Any]] = []
    answers: list[Answer] = [previous]
    refs = [(facts.video_id, facts.index_at(t)) for t in times]
    for stance, hint in STANCES.items():
        text = REFLECT.render(
            stance=stance,
            stance_hint=hint,
            question=question,
            options=options_block(options),
            previous=previous.answer,
        )
        r = call_agent(
            model,
            "reasoner",
            [Message("user", [*_frame_parts(frames, times), TextPart(text)])],
            lambda out: parse_answer(out, options),
            lambda: previous,
            sampling,
            refs,
        )
        steps += r.steps
        if not r.fallback:
            answers.append(r.value)
    return AgentResult(vote(answers), steps, False, answers)
