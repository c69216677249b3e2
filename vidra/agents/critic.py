"""The critic: rule checks plus a model critique; decides accept or revise, with feedback.

Rules: the answer is among the options and not empty (these block acceptance); every
evidence time lies within half a second of a frame that was seen, and the answer agrees with
the previous round's (these two are reported to the model critic, which decides: a citation
off by some seconds is no reason to drop an answer that may be right; with vidra-tiny,
revisions forced by it turned 17 right answers wrong and 11 wrong ones right of 66 on 104
synthetic questions, and the critic's own accept/revise is what DPO trains).
The model scores the answer against the frames it cites. Accept when no blocking rule fails
and the score reaches ``threshold``. Fallback (unusable critique): score 0.5, accept iff no
blocking rule fails.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vidra.agents.base import call_agent
from vidra.agents.context import VideoFacts
from vidra.agents.prompts import CRITIC, options_block
from vidra.agents.schemas import Answer, Critique, parse_critique
from vidra.models.protocol import ChatModel, ImagePart, Message, SamplingParams, TextPart

__all__ = ["Verdict", "check_rules", "critique"]


@dataclass
class Verdict:
    accept: bool
    score: float
    feedback: str
    rule_failures: list[str]
    steps: list[dict[str, Any]] = field(default_factory=list)
    fallback: bool = False
    why: str = ""  # what decided: the failed rules, the score against the threshold, ...


def _rules(
    answer: Answer,
    options: Sequence[str] | None,
    seen_times: Sequence[float],
    previous: Answer | None,
) -> list[tuple[str, bool]]:
    """Each rule the answer breaks, and whether it blocks acceptance: an answer off the
    options or empty does; an unseen citation or a flip is weighed by the model critic."""
    failures = []
    if options is not None and answer.answer not in options:
        failures.append(("answer is not one of the options", True))
    if not answer.answer:
        failures.append(("answer is empty", True))
    seen = np.asarray(sorted(seen_times)) if seen_times else np.zeros(0)
    for t in answer.evidence:
        if seen.size == 0 or np.min(np.abs(seen - t)) > 0.5:
            failures.append((f"evidence at {t:.1f}s was never seen", False))
            break
    if previous is not None and previous.answer != answer.answer:
        failures.append((f"answer changed from {previous.answer!r}", False))
    return failures


def check_rules(
    answer: Answer,
    options: Sequence[str] | None,
    seen_times: Sequence[float],
    previous: Answer | None,
) -> list[str]:
    """Names of the rules the answer breaks (empty: all pass)."""
    return [name for name, _ in _rules(answer, options, seen_times, previous)]


def critique(
    model: ChatModel,
    facts: VideoFacts,
    question: str,
    options: Sequence[str] | None,
    answer: Answer,
    frames: np.ndarray,
    times: Sequence[float],
    seen_times: Sequence[float],
    previous: Answer | None,
    sampling: SamplingParams,
    threshold: float = 0.5,
) -> Verdict:
    """Judge ``answer``; ``frames``/``times`` are the frames it cites (or the latest seen)."""
    broken = _rules(answer, options, seen_times, previous)
    failures = [name for name, _ in broken]
    blocking = [name for name, blocks in broken if blocks]
    parts: list[Any] = []
    for frame, t in zip(frames, times, strict=True):
        parts += [TextPart(f"t={t:.1f}s "), ImagePart(frame, float(t))]
    parts.append(
        TextPart(
            CRITIC.render(
                question=question,
                options=options_block(options),
                answer=answer.answer,
                confidence=answer.confidence,
                evidence=[round(t, 1) for t in answer.evidence] or "none",
                rules="; ".join(failures) or "all passed",
            )
        )
    )
    refs = [(facts.video_id, facts.index_at(t)) for t in times]
    result = call_agent(
        model,
        "critic",
        [Message("user", parts)],
        parse_critique,
        lambda: Critique(score=0.5, accept=not blocking),
        sampling,
        refs,
    )
    c = result.value
    accept = c.accepts(threshold) and not blocking
    feedback = c.feedback or "; ".join(failures)
    if blocking:
        why = "rule failed: " + "; ".join(blocking)
    elif c.score < threshold:
        why = f"score {c.score:.2f} below the threshold {threshold:.2f}"
    elif not c.accept:
        why = "the critic asked for another look"
    else:
        why = "the critic accepted and every rule passed"
    if result.fallback:
        why += " (critic reply unusable: rules only)"
    return Verdict(accept, c.score, feedback, failures, result.steps, result.fallback, why)
