"""The planner: question (+ options, video facts) -> what to look for, hints, a frame budget.

Fallback (model output unusable after one repair): look for the question's words, no
hints, the configured budget.
"""

from __future__ import annotations

from collections.abc import Sequence

from vidra.agents.base import AgentResult, call_agent
from vidra.agents.context import VideoFacts
from vidra.agents.prompts import PLANNER, options_block, subtitles_block
from vidra.agents.schemas import Plan, parse_plan
from vidra.models.protocol import ChatModel, Message, SamplingParams

__all__ = ["plan"]


def plan(
    model: ChatModel,
    facts: VideoFacts,
    question: str,
    options: Sequence[str] | None,
    sampling: SamplingParams,
    budget: int,
    subtitles: str = "",
) -> AgentResult[Plan]:
    """Ask the planner; the returned plan's frame budget never exceeds ``budget``.
    ``subtitles``: rendered lines that match the question, if the video has any."""
    text = PLANNER.render(
        duration=facts.duration,
        fps=facts.fps,
        question=question,
        options=options_block(options),
        subtitles=subtitles_block(subtitles, near_frames=False),
    )
    result = call_agent(
        model,
        "planner",
        [Message("user", text)],
        parse_plan,
        lambda: Plan(look_for=question, frame_budget=budget),
        sampling,
    )
    value = result.value
    capped = min(budget, value.frame_budget or budget)
    hints = [(max(0.0, a), min(facts.duration, b)) for a, b in value.hints if a < facts.duration]
    fixed = value.model_copy(update={"frame_budget": capped, "hints": hints})
    return AgentResult(fixed, result.steps, result.fallback, result.samples)
