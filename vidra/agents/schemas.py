"""Pydantic output schemas of the four agents and their tolerant parsers.

Each ``parse_*`` takes raw model text and returns a schema instance or raises
``ValueError`` saying what was wrong (shown to the model in the repair turn).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from vidra.agents.parsing import extract_json, match_option, parse_time, parse_times

__all__ = ["Answer", "Critique", "Plan", "Selection", "parse_answer", "parse_critique",
           "parse_plan", "parse_selection"]  # fmt: skip


class Plan(BaseModel):
    """What to look for, and where."""

    look_for: str = ""
    sub_questions: list[str] = Field(default_factory=list)
    hints: list[tuple[float, float]] = Field(default_factory=list, description="time spans (s)")
    frame_budget: int | None = Field(None, ge=1)
    queries: list[str] = Field(default_factory=list, description="first searches of the index")


class Selection(BaseModel):
    """Which times to look at: single times and/or segments, in seconds."""

    times: list[float] = Field(default_factory=list)
    segments: list[tuple[float, float]] = Field(default_factory=list)


class Answer(BaseModel):
    answer: str
    choice: int | None = None
    confidence: float = Field(0.0, ge=0.0, le=1.0)
    evidence: list[float] = Field(default_factory=list, description="times (s) that show it")


class Critique(BaseModel):
    score: float = Field(ge=0.0, le=1.0)
    accept: bool
    feedback: str = ""

    def accepts(self, threshold: float) -> bool:
        """The model's own verdict: it accepts, with a score reaching ``threshold``."""
        return self.accept and self.score >= threshold


def _obj(text: str) -> dict[str, Any]:
    data = extract_json(text)
    if data is None:
        raise ValueError("no JSON object found")
    return data


def _spans(value: Any) -> list[tuple[float, float]]:
    out = []
    for item in value if isinstance(value, list) else []:
        if isinstance(item, list | tuple) and len(item) == 2:
            a, b = parse_time(item[0]), parse_time(item[1])
            if a is not None and b is not None:
                out.append((min(a, b), max(a, b)))
    return out


def _queries(value: Any) -> list[str]:
    items = value if isinstance(value, list) else []
    return [str(q).strip()[:200] for q in items if isinstance(q, str) and q.strip()][:4]


def parse_plan(text: str) -> Plan:
    data = _obj(text)
    try:
        return Plan(
            look_for=str(data.get("look_for", data.get("target", ""))),
            sub_questions=[str(q) for q in data.get("sub_questions", []) if q][:8],
            hints=_spans(data.get("hints", data.get("temporal_hints", []))),
            frame_budget=int(data["frame_budget"])
            if str(data.get("frame_budget", "")).isdigit()
            else None,
            queries=[str(q)[:200] for q in data.get("queries", []) if isinstance(q, str) and q][:4],
        )
    except (ValidationError, TypeError, ValueError) as exc:
        raise ValueError(f"plan fields are invalid: {exc}") from exc


def parse_selection(text: str, duration: float) -> Selection:
    data = _obj(text)
    times = [t for t in parse_times(data.get("times", data.get("frames", []))) if t <= duration]
    segments = [(a, min(b, duration)) for a, b in _spans(data.get("segments", [])) if a < duration]
    if not times and not segments:
        raise ValueError(
            "give 'times' (seconds) or 'segments' ([start, end] in seconds) "
            f"inside the video (0 to {duration:.0f} s)"
        )
    return Selection(times=times, segments=segments)


# A reply whose JSON breaks after a complete "answer" field (a small model's garbled tail)
_ANSWER_FIELD = re.compile(r'^\s*\{\s*"answer"\s*:\s*"((?:[^"\\]|\\.)*)"')
_ANSWER_OPEN = re.compile(r'^\s*\{\s*"answer"\s*:\s*"')


def _leading_option(text: str, options: Sequence[str] | None) -> str | None:
    """The longest option whose whole text opens the reply's unclosed answer field
    (``{"answer": "2:11.5-2:26.2-2:29.0]}``): what a constrained reply chose (its prefix,
    `vidra.agents.reasoner.answer_prefixes`) before the model's own tokens broke it."""
    m = _ANSWER_OPEN.match(text)
    if m is None or not options:
        return None
    rest = text[m.end() :]
    hits = [o for o in options if o and rest.startswith(json.dumps(o)[1:-1])]
    return max(hits, key=len) if hits else None


def _answer_obj(text: str, options: Sequence[str] | None = None) -> dict[str, Any]:
    """The reply's JSON object, or only its leading ``"answer"`` field when the rest is
    not JSON, or the option that opens an unclosed answer field."""
    try:
        return _obj(text)
    except ValueError:
        m = _ANSWER_FIELD.match(text)
        if m is None:
            option = _leading_option(text, options)
            if option is None:
                raise
            return {"answer": option}
        try:
            return {"answer": json.loads(f'"{m.group(1)}"')}
        except json.JSONDecodeError:
            raise ValueError("no JSON object found") from None


def _free_text(text: str) -> dict[str, Any]:
    """An open-ended reply that is not JSON: its first line is the answer."""
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    line = line.strip(" \"'`").removeprefix("Answer:").removeprefix("answer:").strip()
    if not line:
        raise ValueError("'answer' is empty")
    return {"answer": line[:300]}


def parse_answer(text: str, options: Sequence[str] | None) -> Answer:
    """The answer in a reply: JSON (or its leading answer field); for an open-ended
    question, plain text is an answer too. A blank answer is an error (a format failure)."""
    try:
        data = _answer_obj(text, options)
    except ValueError:
        if options:
            raise
        data = _free_text(text)
    raw = data.get("choice", data.get("answer"))
    choice = match_option(raw, options) if options else None
    if options and choice is None:
        choice = match_option(data.get("answer"), options)
    if options and choice is None:
        raise ValueError(f"the answer must be one of the options {list(options)} (or its letter)")
    answer = options[choice] if options and choice is not None else str(data.get("answer", ""))
    if not answer:
        raise ValueError("'answer' is empty")
    try:
        confidence = float(data.get("confidence", 0.5))
    except (TypeError, ValueError):
        confidence = 0.5
    return Answer(
        answer=answer,
        choice=choice,
        confidence=max(0.0, min(1.0, confidence)),
        evidence=parse_times(data.get("evidence", []))[:16],
    )


def parse_critique(text: str) -> Critique:
    data = _obj(text)
    try:
        score = float(data.get("score"))  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise ValueError("'score' must be a number in [0, 1]") from exc
    accept = data.get("accept", data.get("decision"))
    if isinstance(accept, str):
        accept = accept.strip().lower() in ("accept", "yes", "true", "ok")
    if not isinstance(accept, bool):
        accept = score >= 0.5
    return Critique(
        score=max(0.0, min(1.0, score)), accept=accept, feedback=str(data.get("feedback", ""))[:500]
    )
