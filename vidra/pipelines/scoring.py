"""Scoring evaluated answers: one result per question (score, what it cost) and the task's
aggregate with 95% bootstrap intervals, overall and per category.

Multiple choice: accuracy. Open-ended: normalised exact match, and a language-model judge's
verdict when one is given (reported apart, marked as judged). Grounding: mIoU and R@k. Costs
per question: frames decoded and shown, rounds, model calls, tokens, latency, and whether the
reasoner was shown the evidence (when the benchmark says where it is).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

from vidra.evals import EvalItem
from vidra.evals.metrics import accuracy, bootstrap_ci, by_category, normalised_match
from vidra.evals.spans import max_iou, parse_span_text
from vidra.models.protocol import ChatModel, ChatRequest, Message, SamplingParams
from vidra.rl.rewards import is_tool_call
from vidra.storage import Trajectory

__all__ = ["COSTS", "aggregate", "judge_answer", "question_result", "span_text"]

COSTS = (
    "frames_decoded", "frames_shown", "rounds", "model_calls", "tool_calls", "tokens",
    "latency_s",
)  # fmt: skip
_JUDGE = (
    "You grade answers to questions about a video.\nQuestion: {question}\n"
    "Correct answer: {truth}\nPredicted answer: {pred}\n"
    'Is the predicted answer correct? Reply with JSON: {{"correct": true|false}}'
)


def span_text(span: tuple[float, float]) -> str:
    """``(12.5, 20)`` -> ``"0:12.5-0:20.0"`` (the form the agents' span rewards read)."""

    def clock(t: float) -> str:
        return f"{int(t // 60)}:{t % 60:04.1f}"

    return f"{clock(span[0])}-{clock(span[1])}"


def _seen_evidence(item: EvalItem, traj: Trajectory, fps: float) -> float | None:
    """1.0 when a frame the reasoner was shown lies in an evidence window (1 s of slack) or
    within 2 s of an evidence time; None when the benchmark gives no evidence."""
    windows = [*item.spans] or ([item.span] if item.span else [])
    if not windows and not item.evidence:
        return None
    times = {i / fps for s in traj.steps if s.role == "reasoner" for _, i in s.frames}
    hit = any(a - 1.0 <= t <= b + 1.0 for t in times for a, b in windows) or any(
        abs(t - e) <= 2.0 for t in times for e in item.evidence
    )
    return float(hit)


def _costs(traj: Trajectory) -> dict[str, float]:
    steps = traj.steps
    return {
        "frames_decoded": float(len({tuple(f) for s in steps for f in s.frames})),
        "frames_shown": float(traj.episode.frames_used),
        "rounds": float(traj.episode.rounds),
        "model_calls": float(len(steps)),
        "tool_calls": float(sum(1 for s in steps if is_tool_call(s.parsed))),
        "tokens": float(sum(s.prompt_tokens + s.completion_tokens for s in steps)),
        "latency_s": float(traj.episode.latency_s),
    }


def question_result(item: EvalItem, traj: Trajectory, fps: float) -> dict[str, Any]:
    """The scored result of one answered question."""
    ep = traj.episode
    out: dict[str, Any] = {
        "qid": item.qid,
        "video": item.video_id,
        "categories": dict(item.categories),
        "answer": ep.answer,
        "episode_id": ep.id,
        **_costs(traj),
    }
    if item.style == "multiple_choice" and item.answer_index is not None:
        out["correct"] = float(ep.choice == item.answer_index)
    elif item.style == "open_ended" and item.answer is not None:
        out["correct"] = normalised_match(ep.answer, item.answer)
    elif item.style == "grounding" and (item.spans or item.span):
        truth = list(item.spans) or [item.span] if item.span else list(item.spans)
        out["iou"] = max_iou(parse_span_text(ep.answer), truth)
        out["correct"] = float(out["iou"] >= 0.5)
    hit = _seen_evidence(item, traj, fps)
    if hit is not None:
        out["evidence_seen"] = hit
    return out


def judge_answer(judge: ChatModel, item: EvalItem, answer: str | None) -> float | None:
    """The judge model's verdict (1.0 / 0.0) on an open-ended answer; None if unusable."""
    from vidra.agents.parsing import extract_json

    if item.answer is None:
        return None
    text = _JUDGE.format(question=item.question, truth=item.answer, pred=answer or "(none)")
    [comp] = judge.generate(
        [ChatRequest([Message("user", text)], sampling=SamplingParams(max_tokens=16))]
    )
    data = extract_json(comp.text) or {}
    verdict = data.get("correct")
    if isinstance(verdict, bool):
        return float(verdict)
    low = comp.text.strip().lower()
    return 1.0 if low.startswith("yes") else 0.0 if low.startswith("no") else None


def _mean_ci(values: Sequence[float]) -> dict[str, Any]:
    if not values:
        return {"n": 0, "mean": math.nan, "ci95": [math.nan, math.nan]}
    return {"n": len(values), "mean": accuracy(values), "ci95": list(bootstrap_ci(values))}


def aggregate(results: Sequence[dict[str, Any]], style: str) -> dict[str, Any]:
    """Accuracy (or exact match, or grounding scores) with 95% intervals, per category,
    and the mean cost per question."""
    scored = [r for r in results if r.get("correct") is not None]
    values = [float(r["correct"]) for r in scored]
    out: dict[str, Any] = {"accuracy": accuracy(values) if values else math.nan}
    out["ci95"] = list(bootstrap_ci(values)) if values else [math.nan, math.nan]
    keys = sorted({k for r in scored for k in r["categories"]})
    out["by_category"] = {
        f"{k}={name}": {**v, "ci95": list(v["ci95"])}
        for k in keys
        for name, v in by_category(
            [r for r in scored if k in r["categories"]], k, score="correct"
        ).items()
    }
    if style == "open_ended":
        out["exact_match"] = out["accuracy"]
        judged = [float(r["judged"]) for r in results if r.get("judged") is not None]
        if judged:
            out["judged"] = {**_mean_ci(judged), "note": "scored by a judge model"}
    if style == "grounding":
        ious = [float(r["iou"]) for r in results if "iou" in r]
        out["grounding"] = {"n": len(ious), "miou": _mean_ci(ious)["mean"]}
        for k in (0.3, 0.5, 0.7):
            out["grounding"][f"r@{k:g}"] = _mean_ci([float(x >= k) for x in ious])["mean"]
    for cost in COSTS:
        vals = [float(r[cost]) for r in results if cost in r]
        out[f"{cost}_per_question" if cost != "latency_s" else "latency_s"] = (
            round(sum(vals) / len(vals), 4) if vals else math.nan
        )
    hits = [float(r["evidence_seen"]) for r in results if "evidence_seen" in r]
    if hits:
        out["evidence_seen"] = _mean_ci(hits)
    out["frames_per_question"] = out["frames_shown_per_question"]
    return json.loads(json.dumps(out, default=float))
