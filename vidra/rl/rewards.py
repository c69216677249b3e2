"""Reward components as plain typed functions, and the registry that names them.

Each returns a float; episodes record them separately (``accuracy``, ``format``,
``frame_cost``, ``temporal_iou``, ``critic``) and training combines them with a weighted
spec recorded with each run.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence

__all__ = [
    "DEFAULT_WEIGHTS",
    "REWARDS",
    "accuracy",
    "critic_reward",
    "format_reward",
    "frame_cost",
    "normalise_answer",
    "parse_span",
    "temporal_iou",
]

DEFAULT_WEIGHTS = {"accuracy": 1.0, "format": 0.2, "frame_cost": 0.1, "temporal_iou": 0.5}


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


REWARDS: dict[str, Callable[..., float]] = {
    "accuracy": accuracy,
    "format": format_reward,
    "frame_cost": frame_cost,
    "temporal_iou": temporal_iou,
    "critic": critic_reward,
}
