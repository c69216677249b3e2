"""The frame selector's tools over the video index, and the multi-turn ``search`` policy.

Each turn the selector (the model, as role ``selector``) names one tool as JSON:

    {"tool": "search", "query": "red triangle, blue circle"}  -> matching moments, with times
    {"tool": "zoom", "start": 120, "end": 180}                 -> a storyboard of that window only
    {"tool": "inspect", "times": [131.5, 140.0]}               -> those frames go to the reasoner

Every turn is a model step recorded like any other (prompt layout, frame refs, token ids,
logprobs), so GRPO trains the policy. Index entries are referred to by id (`Clip.id`); the
loop ends at ``inspect`` or when the tool-call budget is spent (then the best hits are
inspected). ``retrieve`` is the same loop without a model: search the options (or the planned
look-for), inspect the hits; a non-learned baseline. Agents never talk to SQL: the index
arrives as a `VideoIndex`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict

from vidra.agents.base import call_agent
from vidra.agents.parsing import extract_json, parse_time, parse_times
from vidra.agents.prompts import Prompt
from vidra.models.protocol import ImagePart, Message, TextPart
from vidra.video.storyboard import format_timestamp

__all__ = [
    "SEARCH",
    "Clip",
    "Segment",
    "ToolCall",
    "VideoIndex",
    "alternatives",
    "interleave",
    "merge_hits",
    "parse_tool",
    "render_segments",
    "retrieve_plan",
    "run_tools",
]

SEARCH = Prompt(
    "search/v1",
    (
        "You are the frame selector. You can search an index of the video's moments.\n"
        "Video: {duration:.0f} s.\nQuestion: {question}\n{options}Look for: {look_for}\n"
        "{feedback}Results so far:\n{history}\nNext, reply with one JSON tool call: "
        '{{"tool": "search", "query": "<words>"}} or {{"tool": "zoom", "start": s, "end": s}} '
        'or {{"tool": "inspect", "times": [t_s]}} (at most {n} times).'
    ),
)


@dataclass(frozen=True)
class Clip:
    """An index entry as agents see it: its id, time span (s), caption and match score."""

    id: int
    t0: float
    t1: float
    caption: str
    score: float = 0.0


class VideoIndex(Protocol):
    """What the selector's tools need from a video's index (the runtime provides it)."""

    def search(self, video_id: str, query: str, k: int) -> list[Clip]:
        """The ``k`` best-matching clips, best first."""
        ...

    def window(self, video_id: str, t0: float, t1: float) -> list[Clip]:
        """Every clip overlapping ``[t0, t1]``, in time order."""
        ...

    def clips(self, ids: Sequence[int]) -> list[Clip]:
        """Clips by id, in time order."""
        ...


class ToolCall(BaseModel):
    """One tool call of the selector (``inspect`` with no times: look at the best hits)."""

    model_config = ConfigDict(frozen=True)

    tool: Literal["search", "zoom", "inspect"]
    query: str = ""
    start: float = 0.0
    end: float = 0.0
    times: tuple[float, ...] = ()


@dataclass(frozen=True)
class Segment:
    """Consecutive matching clips merged: one appearance, with its clips' ids. ``at`` is the
    time of the first clip's captioned (middle) frame: a moment that shows it."""

    t0: float
    t1: float
    caption: str
    ids: tuple[int, ...]
    at: float = 0.0


def parse_tool(text: str, duration: float) -> ToolCall:
    """The tool call in a reply; ``ValueError`` saying what a valid call looks like."""
    data = extract_json(text) or {}
    tool = str(data.get("tool", data.get("action", ""))).strip().lower()
    if tool == "search" and str(data.get("query", "")).strip():
        return ToolCall(tool="search", query=str(data["query"]).strip()[:200])
    if tool == "zoom":
        a, b = parse_time(data.get("start")), parse_time(data.get("end"))
        if a is not None and b is not None and min(a, b) < duration:
            return ToolCall(tool="zoom", start=min(a, b), end=min(duration, max(a, b)))
    if tool in ("inspect", "look"):
        times = tuple(t for t in parse_times(data.get("times", [])) if t <= duration)
        if times:
            return ToolCall(tool="inspect", times=times)
    raise ValueError(
        'reply with one tool call: {"tool": "search", "query": "..."}, {"tool": "zoom", '
        f'"start": s, "end": s}} or {{"tool": "inspect", "times": [s]}} (0 to {duration:.0f} s)'
    )


def merge_hits(hits: Sequence[Clip], gap: float = 0.5) -> list[Segment]:
    """Hits in time order, consecutive ones (closer than ``gap`` s) merged, best first by
    their best score: each segment is one appearance of what was searched."""
    segs: list[tuple[float, float, str, list[int], float]] = []
    for h in sorted(hits, key=lambda c: c.t0):
        if segs and h.t0 - segs[-1][1] <= gap:
            a, _, cap, ids, best = segs[-1]
            segs[-1] = (a, h.t1, cap, [*ids, h.id], max(best, h.score))
        else:
            segs.append((h.t0, h.t1, h.caption, [h.id], h.score))
    ranked = sorted(segs, key=lambda s: (-s[4], s[0]))
    first = {h.id: (h.t0 + h.t1) / 2 for h in hits}
    return [Segment(a, b, cap, tuple(ids), round(first[ids[0]], 2)) for a, b, cap, ids, _ in ranked]


_WORD = re.compile(r"[a-z0-9]+")


def alternatives(query: str) -> list[str]:
    """The alternatives a query lists (``"red star, blue circle"``: its comma- or
    semicolon-separated parts), lower-cased, one space between words."""
    parts = (" ".join(_WORD.findall(p.lower())) for p in re.split(r"[,;]", query))
    return [p for p in dict.fromkeys(parts) if p]


def interleave(segments: Sequence[Segment], query: str) -> list[Segment]:
    """``segments`` (best first) reordered so a query listing alternatives gets each
    alternative's best segment in turn, then each one's second, and so on; segments naming
    none of them whole come after, in their order. A captioner's few false hits for one
    alternative then cannot push another's only true hit out of the moments looked at."""
    alts = alternatives(query)
    if len(alts) < 2:
        return list(segments)
    groups: dict[str, list[Segment]] = {a: [] for a in alts}
    rest: list[Segment] = []
    for seg in segments:
        words = f" {' '.join(_WORD.findall(seg.caption.lower()))} "
        alt = next((a for a in alts if f" {a} " in words), None)
        (groups[alt] if alt is not None else rest).append(seg)
    out: list[Segment] = []
    for k in range(max(len(g) for g in groups.values())):
        out += [g[k] for g in groups.values() if k < len(g)]
    return out + rest


def render_segments(segments: Sequence[Segment], limit: int = 8) -> str:
    """``2:11.0 red triangle top-left (2:10.0-2:14.0)`` per segment (time order): a moment
    that shows it, its caption, its span; or ``no match``."""
    shown = sorted(segments[:limit], key=lambda s: s.t0)
    lines = [
        f"{format_timestamp(s.at)} {s.caption} ({format_timestamp(s.t0)}-{format_timestamp(s.t1)})"
        for s in shown
    ]
    return "\n".join(lines) or "no match"


@dataclass
class ToolRequest:
    """What a tool loop needs (a slice of the selector's request)."""

    video_id: str
    duration: float
    fps: float
    question: str
    options: Sequence[str] | None
    look_for: str
    feedback: str
    n: int
    max_calls: int
    queries: Sequence[str] = ()


@dataclass
class ToolResult:
    """Where the loop decided to look, what it found (clip ids), and its steps."""

    times: list[float]
    clips: list[int] = field(default_factory=list)
    steps: list[dict[str, Any]] = field(default_factory=list)
    fallback: bool = False


def retrieve_plan(req: ToolRequest) -> list[str]:
    """The queries a non-learned searcher asks: the planner's, else the options (all in
    one query), else the planned look-for."""
    if req.queries:
        return list(req.queries)
    if req.options:
        return [", ".join(req.options)]
    return [req.look_for or req.question]


def _pick(segments: Sequence[Segment], n: int) -> list[float]:
    """Up to ``n`` times: the moment each segment shows it (its ``at``), best first."""
    return [s.at for s in segments[:n]]


def _options_block(options: Sequence[str] | None) -> str:
    return "Options: " + "; ".join(options) + "\n" if options else ""


def run_tools(
    req: ToolRequest, index: VideoIndex, model: Any = None, sampling: Any = None,
    thumbnails: Any = None,
) -> ToolResult:  # fmt: skip
    """The tool loop: with a model, the model picks each tool; without one, `retrieve_plan`.

    ``thumbnails(t0, t1, n) -> (frames, times)`` renders a zoom window's storyboard. The
    first round starts from `retrieve_plan`'s search (the planner's queries, else the
    options), so the model begins with results in front of it; a later round (critic
    feedback) starts from the planner's queries only and the model searches anew.
    """
    found: list[Segment] = []
    history: list[str] = []
    result = ToolResult([])
    first = model is None or not req.feedback
    for query in retrieve_plan(req) if first else list(req.queries):
        found = _search(req, index, query, found, history, result)
    if model is None:
        result.times = _pick(found, req.n)
        return result
    window: tuple[float, float] | None = None
    for _ in range(req.max_calls):
        call, steps, fell = _ask(req, model, sampling, history, window, thumbnails)
        result.steps += steps
        result.fallback = result.fallback or fell
        if call.tool == "inspect":
            result.times = list(call.times[: req.n]) or _pick(found, req.n)
            _surfaced(steps, [(t, t) for t in result.times])
            return result
        if call.tool == "search":
            found = _search(req, index, call.query, found, history, result)
            _surfaced(steps, [(g.t0, g.t1) for g in found[:8]])
        else:
            window = (call.start, call.end)
            segs = merge_hits(index.window(req.video_id, call.start, call.end))
            result.clips += [i for s in segs for i in s.ids]
            _surfaced(steps, [window])
            history.append(f"zoom {format_timestamp(call.start)}-{format_timestamp(call.end)}:\n"
                           f"{render_segments(segs)}")  # fmt: skip
    result.times = _pick(found, req.n)  # the budget is spent: look at the best hits
    return result


def _surfaced(steps: list[dict[str, Any]], spans: Sequence[tuple[float, float]]) -> None:
    """Note on the tool call's step what it surfaced (time spans): rewards credit a step
    whose result holds the ground-truth evidence."""
    if steps and isinstance(steps[-1].get("parsed"), dict):
        steps[-1]["parsed"]["surfaced"] = [[round(a, 2), round(b, 2)] for a, b in spans]


def _search(
    req: ToolRequest, index: VideoIndex, query: str, found: list[Segment], history: list[str],
    result: ToolResult,
) -> list[Segment]:  # fmt: skip
    segs = interleave(merge_hits(index.search(req.video_id, query, k=48)), query)
    result.clips += [i for s in segs for i in s.ids if i not in result.clips]
    history.append(f"search {query!r}:\n{render_segments(segs)}")
    return segs + [s for s in found if s not in segs]  # the latest search's hits first


def _ask(
    req: ToolRequest, model: Any, sampling: Any, history: list[str],
    window: tuple[float, float] | None, thumbnails: Any,
) -> tuple[ToolCall, list[dict[str, Any]], bool]:  # fmt: skip
    parts: list[Any] = []
    refs: list[tuple[str, int]] = []
    if window is not None and thumbnails is not None:
        frames, times = thumbnails(window[0], window[1], 8)
        for frame, t in zip(frames, times, strict=True):
            parts += [TextPart(f"t={t:.1f}s "), ImagePart(frame, float(t))]
            refs.append((req.video_id, max(0, int(t * req.fps + 1e-6))))
    feedback = f"Critic feedback: {req.feedback}\n" if req.feedback else ""
    text = SEARCH.render(
        duration=req.duration, question=req.question, options=_options_block(req.options),
        look_for=req.look_for or req.question, feedback=feedback,
        history="\n".join(history[-4:]) or "nothing yet", n=req.n,
    )  # fmt: skip
    parts.append(TextPart(text))
    r = call_agent(
        model,
        "selector",
        [Message("user", parts)],
        lambda out: parse_tool(out, req.duration),
        lambda: ToolCall(tool="inspect"),
        sampling,
        refs,
    )
    return r.value, r.steps, r.fallback
