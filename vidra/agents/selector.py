"""The frame selector: which frames to look at next, by a named strategy.

Strategies: ``uniform``; ``shots`` (one frame per detected shot); ``coarse_to_fine``
(a coarse uniform overview, then denser frames around the evidence, hints or critic
feedback); ``model`` (the VLM reads a timestamped keyframe storyboard and names segments
or times, FrameThinker-style); ``search`` (the VLM searches the video's index and zooms over
several turns, then inspects, `vidra.agents.search`); ``retrieve`` (the same index, searched
without a model for the options that name things, else the planned look-for: a baseline).
Every strategy respects the budget and never returns a frame already seen; the model-driven
ones fall back to ``uniform`` (or the moments found) when their answer is unusable, and the
index-driven ones to ``uniform`` when they find nothing new.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from vidra.agents.base import call_agent
from vidra.agents.context import VideoFacts
from vidra.agents.parsing import named_times
from vidra.agents.prompts import SELECTOR
from vidra.agents.schemas import Plan, Selection, parse_selection
from vidra.agents.search import ToolRequest, ToolSettings, VideoIndex, run_tools
from vidra.errors import ConfigError
from vidra.models.protocol import ChatModel, ImagePart, Message, SamplingParams, TextPart
from vidra.video.sampling import uniform_segment_indices

__all__ = ["INDEXED", "STRATEGIES", "SelectRequest", "SelectResult", "select_frames"]


@dataclass
class SelectRequest:
    """Everything a strategy may use. ``n`` is how many new frames this round may add."""

    facts: VideoFacts
    question: str
    plan: Plan
    seen: set[int]
    n: int
    round: int
    model: ChatModel
    reader: Any  # a frame reader (``thumbnails``, ``frames``)
    sampling: SamplingParams
    evidence: list[float] = field(default_factory=list)
    feedback: str = ""
    storyboard_size: int = 16
    options: Sequence[str] | None = None
    index: VideoIndex | None = None  # the video's index (search, retrieve)
    tools: ToolSettings = field(default_factory=ToolSettings)  # search: its tool loop


@dataclass
class SelectResult:
    indices: list[int]
    steps: list[dict[str, Any]] = field(default_factory=list)
    fallback: bool = False
    clips: list[int] = field(default_factory=list)  # index entries that led to the frames
    searches: list[str] = field(default_factory=list)  # queries of the index it searched


def _fill(candidates: Sequence[int], req: SelectRequest) -> list[int]:
    """Distinct, unseen candidates in order, topped up uniformly, at most ``req.n``, sorted."""
    out: list[int] = []
    for i in candidates:
        if 0 <= i < req.facts.frame_count and i not in req.seen and i not in out:
            out.append(i)
            if len(out) == req.n:
                return sorted(out)
    if len(out) < req.n:  # spread the rest evenly over the frames still unseen
        taken = set(out)
        left = [i for i in range(req.facts.frame_count) if i not in req.seen and i not in taken]
        out += [left[j] for j in uniform_segment_indices(0, len(left), req.n - len(out))]
    return sorted(out)


def _uniform(req: SelectRequest) -> SelectResult:
    return SelectResult(_fill([], req))


def _shots(req: SelectRequest) -> SelectResult:
    from vidra.video.shots import detect_shots

    shots = detect_shots(req.reader, req.facts.path)
    mids = [(s.start_index + s.end_index) // 2 for s in shots]
    # spare budget: every shot's first quarter, then every shot's third (never its cut frame)
    spare = [s.start_index + (s.end_index - s.start_index) * q // 4 for q in (1, 3) for s in shots]
    order = (
        mids
        if len(mids) <= req.n
        else [mids[i] for i in uniform_segment_indices(0, len(mids), req.n)]
    )
    return SelectResult(_fill([*order, *spare], req))


def _around(times: Sequence[float], width: float, req: SelectRequest) -> list[int]:
    """Unseen indices inside windows of ``width`` seconds around ``times``: each window's
    share of ``req.n`` (the remainder to the first ones) spread over its unseen frames, then
    the windows' other unseen frames, nearest a focus first."""
    shares = [req.n // len(times) + (k < req.n % len(times)) for k in range(len(times))]
    picks: list[int] = []
    rest: list[tuple[float, int]] = []
    for t, share in zip(times, shares, strict=True):
        a = req.facts.index_at(max(0.0, t - width / 2))
        b = req.facts.index_at(min(req.facts.duration, t + width / 2)) + 1
        free = [i for i in range(a, b) if i not in req.seen and i not in picks]
        chosen = [free[j] for j in uniform_segment_indices(0, len(free), share)]
        picks += chosen
        rest += [(abs(i - req.facts.index_at(t)), i) for i in free if i not in chosen]
    return [*picks, *(i for _, i in sorted(rest))]


def _coarse_to_fine(req: SelectRequest) -> SelectResult:
    asked = named_times(req.feedback, req.facts.duration)  # "look again near 0:40"
    if req.round == 0 and not req.plan.hints and not asked:
        return SelectResult(_fill([], req))
    focus = list(dict.fromkeys([*req.evidence, *asked])) or [(a + b) / 2 for a, b in req.plan.hints]
    width = max(4.0, req.facts.duration / max(8, len(req.seen) + req.n))
    return SelectResult(_fill(_around(focus, width, req), req))


def _model(req: SelectRequest) -> SelectResult:
    thumbs, times = req.reader.thumbnails(req.facts.path, req.storyboard_size, size=112)
    parts: list[Any] = []
    for frame, t in zip(thumbs, times, strict=True):
        parts += [TextPart(f"t={t:.1f}s "), ImagePart(frame, t)]
    seen = ", ".join(f"{req.facts.time_of(i):.1f}s" for i in sorted(req.seen)[:24]) or "nothing"
    feedback = f"Critic feedback: {req.feedback}\n" if req.feedback else ""
    parts.append(
        TextPart(
            SELECTOR.render(
                duration=req.facts.duration,
                question=req.question,
                look_for=req.plan.look_for or req.question,
                feedback=feedback,
                seen=seen,
                n=req.n,
            )
        )
    )
    refs = [(req.facts.video_id, req.facts.index_at(t)) for t in times]
    result = call_agent(
        req.model,
        "selector",
        [Message("user", parts)],
        lambda text: parse_selection(text, req.facts.duration),
        lambda: Selection(),
        req.sampling,
        refs,
    )
    sel = result.value
    candidates = [req.facts.index_at(t) for t in sel.times]
    if sel.segments:
        per = max(1, (req.n - len(candidates)) // len(sel.segments))
        for a, b in sel.segments:
            candidates += uniform_segment_indices(
                req.facts.index_at(a), req.facts.index_at(b) + 1, per
            )
    picked = [i for i in candidates if i not in req.seen]
    if not picked:  # unusable or only repeats: uniform fallback
        return SelectResult(_fill([], req), result.steps, True)
    return SelectResult(_fill(picked, req), result.steps, result.fallback)


def _tools(req: SelectRequest, learned: bool) -> SelectResult:
    if req.index is None:  # no index for this video: look as coarse_to_fine does
        return _coarse_to_fine(req)
    facts = req.facts
    treq = ToolRequest(
        facts.video_id, facts.duration, facts.fps, req.question, req.options,
        req.plan.look_for, req.feedback, req.n, req.tools, req.plan.queries,
    )  # fmt: skip

    def thumbnails(t0: float, t1: float, n: int) -> tuple[Any, list[float]]:
        indices = uniform_segment_indices(facts.index_at(t0), facts.index_at(t1) + 1, n)
        return req.reader.frames(facts.path, indices, size=112), [facts.time_of(i) for i in indices]

    model = req.model if learned else None
    out = run_tools(treq, req.index, model, req.sampling, thumbnails)
    picked = [i for i in dict.fromkeys(facts.index_at(t) for t in out.times) if i not in req.seen]
    if not picked:  # nothing new to inspect: a uniform look instead
        return SelectResult(_fill([], req), out.steps, True, out.clips, out.searches)
    # only what was inspected: searching is how this strategy keeps its frame count low
    return SelectResult(sorted(picked[: req.n]), out.steps, out.fallback, out.clips, out.searches)


STRATEGIES: dict[str, Callable[[SelectRequest], SelectResult]] = {
    "uniform": _uniform,
    "shots": _shots,
    "coarse_to_fine": _coarse_to_fine,
    "model": _model,
    "search": lambda req: _tools(req, learned=True),
    "retrieve": lambda req: _tools(req, learned=False),
}
INDEXED = ("search", "retrieve")
"""Strategies that need the video's index (the runtime builds it before the episode)."""


def select_frames(strategy: str, req: SelectRequest) -> SelectResult:
    """Run the named strategy. Raises `ConfigError` for an unknown name."""
    if strategy not in STRATEGIES:
        raise ConfigError(
            f"unknown selector strategy {strategy!r}; choose from {sorted(STRATEGIES)}"
        )
    if req.n <= 0:
        return SelectResult([])
    return STRATEGIES[strategy](req)
