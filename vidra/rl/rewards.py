"""Reward components as plain typed functions, and the registry that names them.

Each returns a float; episodes record them separately (``format``, ``frame_cost``,
``tool_cost``, ``critic``, ``accuracy``, ``temporal_iou``) and training combines them with a
weighted spec recorded with each run. `REWARDS` is the one place the names live: the runtime
hands the episode graph `episode_rewards`, which computes every registered component that
applies, and the step-level ones (`STEP_REWARDS`: ``evidence_credit``, ``tool_cost_to_go``)
of each tool call.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "DEFAULT_STEP_WEIGHTS",
    "DEFAULT_WEIGHTS",
    "REWARDS",
    "STEP_REWARDS",
    "Outcome",
    "Reward",
    "accuracy",
    "critic_reward",
    "episode_rewards",
    "evidence_credit",
    "format_reward",
    "frame_cost",
    "is_tool_call",
    "normalise_answer",
    "parse_span",
    "step_rewards",
    "temporal_iou",
    "tool_cost",
    "tool_cost_to_go",
]

DEFAULT_WEIGHTS = {"accuracy": 1.0, "format": 0.2, "frame_cost": 0.1, "temporal_iou": 0.5}
DEFAULT_STEP_WEIGHTS = {"evidence_credit": 0.5}


def normalise_answer(text: str) -> str:
    """Lower-case, accents and punctuation removed, articles dropped, spaces collapsed."""
    t = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    t = re.sub(r"[^a-z0-9:.\- ]+", " ", t)
    t = re.sub(r"\b(the|a|an)\b", " ", t)
    return " ".join(t.split()).strip(" .")


def accuracy(
    answer: str | None, truth: str, options: Sequence[str] | None = None, choice: int | None = None
) -> float:
    """1.0 when the answer matches the ground truth, else 0.0.

    Multiple choice: the chosen option index (if given) must point at ``truth``; otherwise
    the normalised answer text must equal it. Free form: normalised string equality.
    """
    if options is not None and choice is not None and 0 <= choice < len(options):
        return float(options[choice] == truth)
    if answer is None:
        return 0.0
    return float(normalise_answer(answer) == normalise_answer(truth))


def format_reward(parse_ok: Sequence[bool]) -> float:
    """1.0 when every step's output parsed as asked (no repair, no fallback), else 0.0."""
    return float(all(parse_ok))


def frame_cost(frames_used: int, budget: int) -> float:
    """``-frames_used / budget`` in [-1, 0]: fewer frames looked at is better."""
    if budget <= 0:
        return 0.0
    return -min(1.0, frames_used / budget)


def tool_cost(calls: int) -> float:
    """``-calls``: minus one per tool call (search, zoom, inspect) the episode made. Not in
    `DEFAULT_WEIGHTS`: weigh it (``train.reward_weights``) to make a cheaper path pay, e.g.
    0.05 (an extra call costs a twentieth of a right answer)."""
    return -float(calls)


def is_tool_call(parsed: Any) -> bool:
    """Whether a step's parsed reply is a tool call: the tool loop notes on each call what it
    surfaced (`vidra.agents.search`), on the step as recorded."""
    return isinstance(parsed, dict) and "surfaced" in parsed


def temporal_iou(pred: tuple[float, float] | None, truth: tuple[float, float]) -> float:
    """Intersection over union of two time spans (0.0 for no prediction)."""
    if pred is None:
        return 0.0
    a0, a1 = sorted(pred)
    b0, b1 = sorted(truth)
    inter = max(0.0, min(a1, b1) - max(a0, b0))
    union = max(a1, b1) - min(a0, b0)
    return inter / union if union > 0 else float(a0 == b0)


def critic_reward(score: float | None) -> float:
    """The critic's last score in [0, 1] (0.0 when it never scored)."""
    return 0.0 if score is None else max(0.0, min(1.0, float(score)))


_SPAN = re.compile(r"(\d+):(\d+(?:\.\d+)?)\s*-\s*(\d+):(\d+(?:\.\d+)?)")


def parse_span(text: str | None) -> tuple[float, float] | None:
    """``"m:ss.s-m:ss.s"`` (as grounding options are written) to seconds."""
    if not text:
        return None
    m = _SPAN.search(text)
    if m is None:
        return None
    a = int(m.group(1)) * 60 + float(m.group(2))
    b = int(m.group(3)) * 60 + float(m.group(4))
    return (a, b)


@dataclass(frozen=True)
class Outcome:
    """What an episode's rewards are computed from: plain values, no graph types.

    Attributes:
        answer, choice: the final answer text and option index (None: no answer).
        options: the multiple-choice options (None: open-ended).
        truth: the ground truth (None: unknown; accuracy-type rewards do not apply).
        parse_ok: one flag per model step: did its output parse as asked.
        frames_used, frame_budget: frames the episode looked at, and its budget.
        critic_score: the critic's last score (None: it never scored).
        evidence: ground-truth spans that show the answer (None: unknown).
        tools: each tool call's step order and the time spans it surfaced.
    """

    answer: str | None
    choice: int | None
    options: list[str] | None
    truth: str | None
    parse_ok: list[bool]
    frames_used: int
    frame_budget: int
    critic_score: float | None
    evidence: list[tuple[float, float]] | None = None
    tools: list[tuple[int, list[tuple[float, float]]]] | None = None  # (step order, surfaced)


Reward = Callable[[Outcome], "float | None"]
"""A reward component: its value for an outcome, or None where it does not apply."""


def _accuracy(o: Outcome) -> float | None:
    return None if o.truth is None else accuracy(o.answer, o.truth, o.options, o.choice)


def _temporal_iou(o: Outcome) -> float | None:
    span = parse_span(o.truth)
    return None if span is None else temporal_iou(parse_span(o.answer), span)


REWARDS: dict[str, Reward] = {
    "format": lambda o: format_reward(o.parse_ok),
    "frame_cost": lambda o: frame_cost(o.frames_used, o.frame_budget),
    "tool_cost": lambda o: None if o.tools is None else tool_cost(len(o.tools)),
    "critic": lambda o: critic_reward(o.critic_score),
    "accuracy": _accuracy,
    "temporal_iou": _temporal_iou,
}


def evidence_credit(
    surfaced: Sequence[tuple[float, float]], evidence: Sequence[tuple[float, float]],
    slack: float = 1.0,
) -> float:  # fmt: skip
    """1.0 when a surfaced span overlaps a ground-truth evidence span (``slack`` s), else 0.0
    (Video-MTR-style per-turn credit for a search, zoom or inspect)."""
    return float(
        any(a <= e1 + slack and b >= e0 - slack for a, b in surfaced for e0, e1 in evidence)
    )


STEP_REWARDS = ("evidence_credit", "tool_cost_to_go")


def tool_cost_to_go(orders: Sequence[int]) -> list[dict[str, Any]]:
    """``tool_cost_to_go`` of each tool call (by step order): `tool_cost` of the calls from it
    to the episode's end, so a call is charged for the calls it led to and not for those
    before it (a return-to-go; `tool_cost` charges every step the episode's total)."""
    ordered = sorted(orders)
    return [
        {"name": "tool_cost_to_go", "value": tool_cost(len(ordered) - k), "step_order": order}
        for k, order in enumerate(ordered)
    ]


def step_rewards(outcome: Outcome) -> list[dict[str, Any]]:
    """Step-level components of each tool call: ``evidence_credit`` where the question carries
    evidence spans, and ``tool_cost_to_go``."""
    if not outcome.tools:
        return []
    credit = [
        {"name": "evidence_credit", "value": evidence_credit(spans, outcome.evidence),
         "step_order": order}
        for order, spans in outcome.tools
    ] if outcome.evidence else []  # fmt: skip
    return credit + tool_cost_to_go([order for order, _ in outcome.tools])


def episode_rewards(outcome: Outcome, names: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Every registered component (or those in ``names``) that applies, as records
    ``{"name", "value"}`` in registry order."""
    out = []
    for name in names or list(REWARDS):
        value = REWARDS[name](outcome)
        if value is not None:
            out.append({"name": name, "value": float(value)})
    return out + step_rewards(outcome)
