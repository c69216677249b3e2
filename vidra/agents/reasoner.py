"""The reasoner: frames with their timestamps + question -> answer, option, confidence, evidence.

Self-consistency: with ``samples > 1`` the reasoner samples several answers and the
majority option wins (ties: highest mean confidence). Fallback: the first option (or an
empty free-form answer) with confidence 0. With ``constrain`` (default) a multiple-choice
reply starts ``{"answer": "<one of the options>`` (`answer_prefixes`; the backend picks the
option by likelihood), so a model that cannot copy an option still answers with one.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from vidra.agents.base import AgentResult, call_agent
from vidra.agents.context import VideoFacts
from vidra.agents.prompts import REASONER, REFLECT, options_block, subtitles_block
from vidra.agents.schemas import Answer, parse_answer
from vidra.models.protocol import ChatModel, ImagePart, Message, SamplingParams, TextPart

__all__ = ["answer_prefixes", "reason", "reasoner_messages", "reflect", "vote"]

STANCES = {
    "conservative": "only trust what a frame clearly shows; prefer 'nothing' or the safest option",
    "neutral": "weigh all frames equally",
    "aggressive": "commit to the most likely option even on weak evidence",
}


def _frame_parts(frames: np.ndarray, times: Sequence[float]) -> list[Any]:
    """The frames, each after its time label. They go last in a request, right before the
    reply: their distance to it is then the same whatever the length of the text (a small
    model learns where to look by relative position)."""
    parts: list[Any] = []
    for frame, t in zip(frames, times, strict=True):
        parts += [TextPart(f"t={t:.1f}s "), ImagePart(frame, float(t))]
    return parts


def answer_prefixes(options: Sequence[str] | None) -> list[str]:
    """How a reply naming each option begins: ``{"answer": "<option>`` (open quote: the
    model's own tokens for the rest, e.g. ``",``, are not split)."""
    return ['{"answer": ' + json.dumps(o)[:-1] for o in options or []]


def _constrained(sampling: SamplingParams, options: Sequence[str] | None) -> SamplingParams:
    return sampling.model_copy(update={"prefixes": answer_prefixes(options)})


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


def reasoner_messages(
    question: str,
    options: Sequence[str] | None,
    frames: np.ndarray,
    times: Sequence[float],
    feedback: str = "",
    subtitles: str = "",
    captions: str = "",
) -> list[Message]:
    """The reasoner's request: what the index says
    (``captions``: the findings of the searches made and the captions at these frames, as
    `vidra.agents.findings.index_context` writes them) and the subtitles near the frames, the
    question and options, then the frames with their times."""
    note = f"Critic feedback on the last answer: {feedback}\n" if feedback else ""
    found = f"{captions}\n" if captions else ""
    text = REASONER.render(
        question=question,
        options=options_block(options),
        feedback=note,
        subtitles=found + subtitles_block(subtitles),
    )
    return [Message("user", [TextPart(text), *_frame_parts(frames, times)])]


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
    constrain: bool = True,
    subtitles: str = "",
    captions: str = "",
) -> AgentResult[Answer]:
    """Answer from ``frames`` (``[n, h, w, 3]`` uint8) shown at ``times`` (s), with the
    rendered ``subtitles`` near them and what the index says (``captions``)."""
    refs = [(facts.video_id, facts.index_at(t)) for t in times]
    s = sampling.model_copy(update={"n": samples}) if samples > 1 else sampling
    s = _constrained(s, options) if constrain else s
    result = call_agent(
        model,
        "reasoner",
        reasoner_messages(question, options, frames, times, feedback, subtitles, captions),
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
    constrain: bool = True,
) -> AgentResult[Answer]:
    """ReAgent-V-style reflection: conservative, neutral and aggressive re-answers, then a vote."""
    steps: list[dict[str, Any]] = []
    sampling = _constrained(sampling, options) if constrain else sampling
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
            [Message("user", [TextPart(text), *_frame_parts(frames, times)])],
            lambda out: parse_answer(out, options),
            lambda: previous,
            sampling,
            refs,
        )
        steps += r.steps
        if not r.fallback:
            answers.append(r.value)
    return AgentResult(vote(answers), steps, False, answers)
