"""The frame selector's tools over the video index, and the multi-turn ``search`` policy.

Each turn the selector (the model, as role ``selector``) names one tool as JSON:

    {"tool": "search", "query": "red triangle, blue circle"}  -> the moments of each, in order
    {"tool": "zoom", "start": 120, "end": 180}                 -> a storyboard of that window only
    {"tool": "inspect"}                                        -> the moments the question
                                                                  names, else the moments found
                                                                  (each alternative's first,
                                                                  then second, ...), go to the
                                                                  reasoner
    {"tool": "inspect", "times": ["2:11.5"]}                   -> those frames instead
    {"tool": "find", "query": "red triangle"}                  -> a search, then a bare inspect,
                                                                  in one call (a constrained
                                                                  reply with
                                                                  ``agents.find_tool``)

Every turn is a model step recorded like any other (prompt layout, frame refs, token ids,
logprobs), so GRPO trains the policy. Index entries are referred to by id (`Clip.id`); the
loop ends at ``inspect`` or when the tool-call budget is spent (then the moments found are
inspected). ``retrieve`` is the same loop without a model: search the options (or the planned
look-for), inspect the moments; a non-learned baseline. Agents never talk to SQL: the index
arrives as a `VideoIndex`; what a search found is read as `vidra.agents.findings` renders it.
"""

from __future__ import annotations

import json
import random
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

from pydantic import BaseModel, ConfigDict

from vidra.agents.base import call_agent
from vidra.agents.findings import (
    SEARCH_K,
    Clip,
    Finding,
    VideoIndex,
    find_moments,
    inspect_order,
    merge_clips,
    render_clips,
    render_findings,
)
from vidra.agents.parsing import extract_json, named_times, parse_time, parse_times
from vidra.agents.prompts import Prompt
from vidra.config import Tool
from vidra.models.protocol import ImagePart, Message, TextPart
from vidra.phrases import words
from vidra.video.storyboard import format_timestamp

__all__ = [
    "SEARCH",
    "Clip",
    "ToolCall",
    "ToolRequest",
    "ToolResult",
    "VideoIndex",
    "call_kind",
    "explored",
    "first_queries",
    "look",
    "parse_tool",
    "retrieve_plan",
    "run_tools",
    "tool_calls",
]

# The question comes last, right before the reply: a query or a time is copied from it, and
# a small model copies what is near (as it reads frames placed right before the reply).
# ``find`` is not named here: a prompt that names it changes which of the other calls
# vidra-tiny picks (it inspects at once far more often), so it is offered as a reply only
SEARCH = Prompt(
    "search/v3",
    (
        "You are the frame selector. You can search an index of the video's moments.\n"
        "Video: {duration:.0f} s.\n{feedback}Results so far:\n{history}\n"
        "Next, reply with one JSON tool call: "
        '{{"tool": "search", "query": "<words>"}} or {{"tool": "zoom", "start": s, "end": s}} '
        'or {{"tool": "inspect"}} (the moments the question names, else those found) or '
        '{{"tool": "inspect", "times": [t_s]}} '
        "(at most {n} times).\nLook for: {look_for}\n{options}Question: {question}\n"
    ),
)


class ToolCall(BaseModel):
    """One tool call of the selector (``inspect`` with no times: the moments found; ``find``:
    a search, then a bare inspect, in one call)."""

    model_config = ConfigDict(frozen=True)

    tool: Tool
    query: str = ""
    start: float = 0.0
    end: float = 0.0
    times: tuple[float, ...] = ()


def parse_tool(text: str, duration: float) -> ToolCall:
    """The tool call in a reply; ``ValueError`` saying what a valid call looks like."""
    data = extract_json(text) or {}
    tool = str(data.get("tool", data.get("action", ""))).strip().lower()
    if tool in ("search", "find") and str(data.get("query", "")).strip():
        return ToolCall(tool=tool, query=str(data["query"]).strip()[:200])
    if tool == "zoom":
        a, b = parse_time(data.get("start")), parse_time(data.get("end"))
        if a is not None and b is not None and min(a, b) < duration:
            return ToolCall(tool="zoom", start=min(a, b), end=min(duration, max(a, b)))
    if tool in ("inspect", "look"):
        times = tuple(t for t in parse_times(data.get("times", [])) if t <= duration)
        if times or not data.get("times"):
            return ToolCall(tool="inspect", times=times)
    raise ValueError(
        'reply with one tool call: {"tool": "search", "query": "..."}, {"tool": "zoom", '
        f'"start": s, "end": s}}, {{"tool": "inspect"}} or {{"tool": "inspect", "times": [s]}} '
        f"(0 to {duration:.0f} s)"
    )


@dataclass(frozen=True)
class ToolSettings:
    """How a selection round's tool loop runs, the same for every question of a job: built
    once by the composition root from ``agents.*`` and ``index.search_k``."""

    max_calls: int = 4  # tool calls per round
    k: int = SEARCH_K  # clips one search considers at most
    constrain: bool = True  # the model's reply is one of `tool_calls` (picked by likelihood)
    find: bool = False  # ``find`` is among `tool_calls` (a constrained reply)
    explore: float = 0.0  # sampled turns: how often the choice is among one kind of call
    repeat: bool = False  # a search of a query already searched is among `tool_calls`


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
    tools: ToolSettings = ToolSettings()
    queries: Sequence[str] = ()


@dataclass
class ToolResult:
    """Where the loop decided to look (times, best first: the caller takes the first unseen
    ones), what it found (clip ids), the queries it searched, and its steps."""

    times: list[float]
    clips: list[int] = field(default_factory=list)
    steps: list[dict[str, Any]] = field(default_factory=list)
    fallback: bool = False
    searches: list[str] = field(default_factory=list)


_NONE = {"nothing", "none", "none of the above", "no one", "nobody"}


def _searchable(option: str) -> bool:
    """Whether an option names something to look for (not a count, a time or "nothing")."""
    w = words(option)
    return any(x.isalpha() for x in w) and " ".join(w) not in _NONE


def first_queries(req: ToolRequest) -> list[str]:
    """The searches a first round starts from, before the model's own: the planner's
    queries, else the options that name something to look for (all in one query)."""
    if req.queries:
        return list(req.queries)
    named = [o for o in req.options or [] if _searchable(o)]
    return [", ".join(named)] if named else []


def retrieve_plan(req: ToolRequest) -> list[str]:
    """The queries a non-learned searcher asks: `first_queries`, else the planned look-for."""
    return first_queries(req) or [req.look_for or req.question]


# function words: no search on its own, nor at the edge of a two-word phrase
_FUNCTION = frozenset(
    words(
        "a an the of in on at to for from by with and or not no is are was were be been does do "
        "did has have had it its this that these those there what which who whom whose how many "
        "much when where why near again video"
    )
)
_OPENINGS = ('{"tool": "zoom", "start": ', '{"tool": "inspect", "times": [')


def tool_calls(req: ToolRequest, searched: Collection[str] = ()) -> list[str]:
    """The replies a constrained selector chooses among, by its likelihood of each whole
    reply (as the reasoner's answer is one of the options): the bare inspect; a search of
    the options that name things and of each phrase of the question, the planned look-for
    and the critic's feedback (words and two-word phrases, without function words or
    numbers); with ``find`` offered, a find of each of those phrases after its search; and
    the openings of a zoom and of an inspect with times, which the model completes. A model
    that cannot write JSON, or copies a word wrongly, still makes a call about the question
    (at most 64 replies: a backend's limit). A search of a query in ``searched`` (already
    searched this round: the index would give the same moments again) is left out unless
    ``req.tools.repeat``; its find stays (it inspects what was found)."""
    phrases: list[str] = list(first_queries(req))
    for text in (req.question, req.look_for, req.feedback):
        w = [x if x not in _FUNCTION and not x.isdigit() else "" for x in words(text)]
        phrases += [x for x in w if x]
        phrases += [f"{a} {b}" for a, b in pairwise(w) if a and b]
    tools = ("search", "find") if req.tools.find else ("search",)
    done = set() if req.tools.repeat else set(searched)
    searches = [json.dumps({"tool": t, "query": p}) for p in dict.fromkeys(phrases) for t in tools
                if t != "search" or p not in done]  # fmt: skip
    fixed = [json.dumps({"tool": "inspect"}), *_OPENINGS]
    return fixed + searches[: 64 - len(fixed)]


def call_kind(reply: str) -> str:
    """A constrained reply's kind: what it says before its query (a search, a find) or the
    whole reply (the bare inspect, the openings of a zoom and of an inspect with times)."""
    return reply.split('"query"', 1)[0]


def explored(req: ToolRequest, calls: list[str], seed: int | None, turn: int) -> list[str]:
    """The replies a sampled turn chooses among: with probability ``req.tools.explore`` only
    those of one kind (`call_kind`), drawn uniformly, so that a call the model finds unlikely is
    tried; all of them otherwise, and always when greedy (no seed). Drawn from the rollout's
    seed and the turn: the same rollout explores alike when it resumes."""
    if req.tools.explore <= 0 or seed is None:
        return calls
    rng = random.Random(f"{seed}:{turn}:{req.feedback}")
    if rng.random() >= req.tools.explore:
        return calls
    kinds = list(dict.fromkeys(call_kind(c) for c in calls))
    kind = rng.choice(kinds)
    return [c for c in calls if call_kind(c) == kind]


def _options_block(options: Sequence[str] | None) -> str:
    return "Options: " + "; ".join(options) + "\n" if options else ""


def run_tools(
    req: ToolRequest, index: VideoIndex, model: Any = None, sampling: Any = None,
    thumbnails: Any = None,
) -> ToolResult:  # fmt: skip
    """The tool loop: with a model, the model picks each tool; without one, `retrieve_plan`.

    ``thumbnails(t0, t1, n) -> (frames, times)`` renders a zoom window's storyboard. The
    first round starts from `first_queries` (the planner's queries, else the options that
    name things), so the model begins with results in front of it; a later round (critic
    feedback) starts from the planner's queries only and the model searches anew.
    """
    found: list[Finding] = []
    history: list[str] = []
    result = ToolResult([])
    if model is None:
        queries = retrieve_plan(req)
    else:  # a later round (critic feedback) starts from the planner's queries only
        queries = list(req.queries) if req.feedback else first_queries(req)
    for query in queries:
        found = _search(req, index, query, history, result) + found
    if model is None:
        result.times = look(req, found)
        return result
    window: tuple[float, float] | None = None
    for _ in range(req.tools.max_calls):
        call, steps, fell = _ask(req, model, sampling, history, window, thumbnails,
                                 result.searches)  # fmt: skip
        result.steps += steps
        result.fallback = result.fallback or fell
        if call.tool in ("search", "find"):
            new = _search(req, index, call.query, history, result)
            found = new + found  # the latest search's findings first
        if call.tool in ("inspect", "find"):  # find: that search, then a bare inspect
            result.times = list(call.times[: req.n]) or look(req, found)
            _surfaced(steps, [(t, t) for t in result.times[: req.n]])
            return result
        if call.tool == "search":
            _surfaced(steps, [(m.t0, m.t1) for f in new for m in f.moments][:16])
        else:
            window = (call.start, call.end)
            clips = index.window(req.video_id, call.start, call.end)
            result.clips = list(dict.fromkeys([*result.clips, *(c.id for c in clips)]))
            _surfaced(steps, [window])
            lines = render_clips([m for c in clips for m in merge_clips([c])], limit=16)
            history.append(f"zoom {format_timestamp(call.start)}-{format_timestamp(call.end)}:\n"
                           f"{lines}")  # fmt: skip
    result.times = look(req, found)  # the budget is spent: look at what was found
    return result


def look(req: ToolRequest, found: Sequence[Finding]) -> list[float]:
    """What a bare ``inspect`` looks at: the moments the question names ("At 2:11.5, what
    ..."), else the moments found (`inspect_order`). Times are referred to, not copied."""
    return named_times(req.question, req.duration) or inspect_order(found)


def _surfaced(steps: list[dict[str, Any]], spans: Sequence[tuple[float, float]]) -> None:
    """Note on the tool call's step what it surfaced (time spans): rewards credit a step
    whose result holds the ground-truth evidence."""
    if steps and isinstance(steps[-1].get("parsed"), dict):
        steps[-1]["parsed"]["surfaced"] = [[round(a, 2), round(b, 2)] for a, b in spans]


def _search(
    req: ToolRequest, index: VideoIndex, query: str, history: list[str], result: ToolResult
) -> list[Finding]:
    """Search ``query``; its findings (recorded in ``history`` and ``result``)."""
    findings = find_moments(query, index.search(req.video_id, query, k=req.tools.k))
    result.clips = list(dict.fromkeys([*result.clips, *(i for f in findings for m in f.moments
                                                        for i in m.ids)]))  # fmt: skip
    result.searches.append(query)
    history.append(f"search {query!r}:\n{render_findings(findings)}")
    return findings


def _ask(
    req: ToolRequest, model: Any, sampling: Any, history: list[str],
    window: tuple[float, float] | None, thumbnails: Any, searched: Sequence[str],
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
    if req.tools.constrain and sampling is not None:
        calls = explored(req, tool_calls(req, searched), sampling.seed, len(history))
        sampling = sampling.model_copy(update={"prefixes": calls})
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
