"""Temporal grounding: reading a predicted span from text, IoU / IoP, mIoU and R@k.

Spans are ``(start, end)`` seconds. Pure functions; re-exported by `vidra.evals.metrics`.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from typing import Any

from vidra.video.subtitles import parse_clock

__all__ = [
    "evidence_windows",
    "grounded_accuracy",
    "grounding_scores",
    "iop",
    "iou",
    "max_iou",
    "parse_span_text",
]

Span = tuple[float, float]
Truth = Span | Sequence[Span]


def evidence_windows(
    spans: Sequence[Span], times: Sequence[float], half: float = 1.0
) -> list[Span] | None:
    """A question's ground-truth evidence as the spans rewards compare tool calls' surfaced
    spans with: the ``spans`` given, else ``half`` seconds either side of each of ``times``
    (where a frame shows it); None when there is neither. A span written end first, or
    reaching before 0 s (annotations have both), is put in order and clipped at 0; one that
    ends before 0 s is left out."""
    given = [(max(0.0, min(a, b)), max(a, b)) for a, b in spans if max(a, b) >= 0]
    return given or [(max(0.0, t - half), t + half) for t in times] or None


_TIME = r"(?:\d+:)*\d+(?:\.\d+)?"
_PAIR = re.compile(
    rf"({_TIME})\s*(?:s|sec|secs|seconds?)?\s*(?:-|–|—|~|to|and|,|until)\s*({_TIME})",
    re.I,
)


def _json_span(text: str) -> Span | None:
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return None
    if isinstance(data, dict):
        for a, b in (("start", "end"), ("start_time", "end_time"), ("begin", "end")):
            if a in data and b in data:
                return _ordered(data[a], data[b])
        span = data.get("span", data.get("timestamp"))
        data = span if isinstance(span, list) else None
    if isinstance(data, list) and len(data) == 2:
        return _ordered(data[0], data[1])
    return None


def _ordered(a: Any, b: Any) -> Span | None:
    try:
        x, y = parse_clock(a), parse_clock(b)
    except (TypeError, ValueError):
        return None
    if not (math.isfinite(x) and math.isfinite(y)):
        return None
    return (min(x, y), max(x, y))


def parse_span_text(text: str | None) -> Span | None:
    """A span from a model's reply, or ``None``.

    Accepts ``"12.5-20"``, ``"12.5 to 20 s"``, ``"from 12.5s to 20s"``, ``"0:12-0:20"``,
    ``"[12.5, 20.0]"``, ``{"start": 12.5, "end": 20}`` (also inside surrounding prose).
    Reversed ends are swapped.
    """
    if not text:
        return None
    stripped = text.strip()
    if stripped[:1] in "[{":
        span = _json_span(stripped)
        if span is not None:
            return span
    m = re.search(r"\{[^{}]*\}", stripped)
    if m is not None and (span := _json_span(m.group(0))) is not None:
        return span
    m = _PAIR.search(stripped)
    return _ordered(m.group(1), m.group(2)) if m else None


def iou(a: Span | None, b: Span) -> float:
    """Temporal intersection over union (``0.0`` for no prediction; equal points give 1.0)."""
    if a is None:
        return 0.0
    a0, a1 = sorted(a)
    b0, b1 = sorted(b)
    inter = max(0.0, min(a1, b1) - max(a0, b0))
    union = max(a1, b1) - min(a0, b0)
    return inter / union if union > 0 else float(a0 == b0)


def iop(a: Span | None, b: Span) -> float:
    """Intersection over the prediction's length (NExT-GQA's IoP); a point prediction
    inside the truth gives 1.0."""
    if a is None:
        return 0.0
    a0, a1 = sorted(a)
    b0, b1 = sorted(b)
    if a1 == a0:
        return float(b0 <= a0 <= b1)
    return max(0.0, min(a1, b1) - max(a0, b0)) / (a1 - a0)


def _windows(truth: Truth) -> list[Span]:
    if len(truth) == 2 and all(isinstance(v, int | float) for v in truth):
        return [(float(truth[0]), float(truth[1]))]  # type: ignore[arg-type]
    return [(float(s[0]), float(s[1])) for s in truth]  # type: ignore[index]


def max_iou(pred: Span | None, truth: Truth, measure: str = "iou") -> float:
    """Best IoU (or IoP with ``measure="iop"``) of ``pred`` against one or several windows."""
    fn = iop if measure == "iop" else iou
    return max((fn(pred, w) for w in _windows(truth)), default=0.0)


def _as_span(pred: Span | str | None) -> Span | None:
    return parse_span_text(pred) if isinstance(pred, str) else pred


def grounding_scores(
    preds: Sequence[Span | str | None],
    truths: Sequence[Truth],
    thresholds: Sequence[float] = (0.3, 0.5, 0.7),
    with_iop: bool = False,
) -> dict[str, float]:
    """``{"n", "miou", "r@0.3", "r@0.5", "r@0.7"}`` (R@k: share with IoU >= k).

    Predictions may be spans, reply texts (read with `parse_span_text`) or ``None`` (IoU 0).
    A truth may be one window or several (the best window counts, as NExT-GQA scores).
    ``with_iop`` adds ``miop`` and ``iop@k``.
    """
    if len(preds) != len(truths):
        from vidra.errors import InvalidInput

        raise InvalidInput(
            f"{len(preds)} predictions for {len(truths)} truths; fix: pass one per question"
        )
    spans = [_as_span(p) for p in preds]
    out: dict[str, float] = {"n": float(len(spans))}
    measures = ("iou", "iop") if with_iop else ("iou",)
    for measure in measures:
        scores = [max_iou(p, t, measure) for p, t in zip(spans, truths, strict=True)]
        name = "r" if measure == "iou" else "iop"
        out[f"m{measure}"] = sum(scores) / len(scores) if scores else math.nan
        for k in thresholds:
            hits = sum(1 for s in scores if s >= k)
            out[f"{name}@{k:g}"] = hits / len(scores) if scores else math.nan
    return out


def grounded_accuracy(
    correct: Sequence[float],
    preds: Sequence[Span | str | None],
    truths: Sequence[Truth],
    threshold: float = 0.5,
) -> float:
    """NExT-GQA's Acc@GQA: the share answered right *and* grounded with IoP >= ``threshold``."""
    spans = [_as_span(p) for p in preds]
    hits = [
        float(c >= 1.0 and max_iou(p, t, "iop") >= threshold)
        for c, p, t in zip(correct, spans, truths, strict=True)
    ]
    return sum(hits) / len(hits) if hits else math.nan
