"""What a search of the video index found, as agents read it: per alternative of the query,
its moments (consecutive clips naming it, merged), in order of first appearance.

    search 'cyan square, yellow circle':
    yellow circle: 2 moments: 0:50.0-0:58.0, 3:10.0-3:20.0
    cyan square: 1 moment: 1:38.0-2:26.0

A question of order, count, span or presence then reads off one line (the first one, the
count, the span, "no moment") instead of comparing timestamps across a list of captions;
the moments to inspect are referred to by the finding, not copied as times. When no
alternative is found whole, the best clips are listed with their captions (free-text
queries). A moment is an interval: two appearances that overlap or touch merge into one,
so a count of moments is a lower bound on a count of objects. Pure functions over `Clip`
records; the index itself arrives as a `VideoIndex`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from vidra.phrases import alternatives, contains
from vidra.video.storyboard import format_timestamp

__all__ = [
    "SEARCH_K",
    "Clip",
    "Finding",
    "Moment",
    "VideoIndex",
    "find_moments",
    "index_context",
    "inspect_order",
    "merge_clips",
    "render_clips",
    "render_findings",
]

SEARCH_K = 2000
"""Clips a search considers by default: every clip of an index of at most 2,000 (the
default `IndexSettings.max_clips`), so moments are counted from all of them."""
SHOWN_MOMENTS = 6  # moments written per alternative (the count is always exact)


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


@dataclass(frozen=True)
class Moment:
    """Consecutive clips merged: one appearance. ``at`` is the captioned (middle) time of
    its middle clip, a moment that shows it; ``caption`` is its first clip's."""

    t0: float
    t1: float
    at: float
    ids: tuple[int, ...]
    caption: str = ""


@dataclass(frozen=True)
class Finding:
    """The moments of one alternative of a query (``alternative`` "": clips naming none)."""

    alternative: str
    moments: list[Moment] = field(default_factory=list)


def merge_clips(clips: Sequence[Clip], tolerance: int = 1) -> list[Moment]:
    """``clips`` in time order, merged into moments: a clip joins the previous moment when at
    most ``tolerance`` clip lengths lie between them (a caption missed inside an appearance
    does not split it)."""
    groups: list[list[Clip]] = []
    for c in sorted(clips, key=lambda c: c.t0):
        if groups and c.t0 - groups[-1][-1].t1 <= tolerance * (c.t1 - c.t0) + 1e-6:
            groups[-1].append(c)
        else:
            groups.append([c])
    out = []
    for g in groups:
        mid = g[len(g) // 2]
        out.append(Moment(g[0].t0, g[-1].t1, round((mid.t0 + mid.t1) / 2, 2),
                          tuple(c.id for c in g), g[0].caption))  # fmt: skip
    return out


def find_moments(query: str, hits: Sequence[Clip]) -> list[Finding]:
    """Per alternative of ``query``, the moments of the hits naming it whole; found ones by
    first appearance, then those not found (query order), then other hits (best first, as
    separate moments) when no alternative was found."""
    alts = alternatives(query)
    found: list[Finding] = []
    missing: list[Finding] = []
    for alt in alts:
        moments = merge_clips([h for h in hits if contains(h.caption, alt)])
        (found if moments else missing).append(Finding(alt, moments))
    found.sort(key=lambda f: f.moments[0].t0)
    out = found + missing
    if not found:
        others = sorted(hits, key=lambda h: -h.score)[:SHOWN_MOMENTS]
        out.append(Finding("", [m for h in others for m in merge_clips([h])]))
    return out


def _span(m: Moment) -> str:
    return f"{format_timestamp(m.t0)}-{format_timestamp(m.t1)}"


def render_clips(moments: Sequence[Moment], limit: int = 8) -> str:
    """``2:11.0 red triangle top-left (2:10.0-2:14.0)`` per moment, in time order: its
    captioned time, caption and span; or ``no match``."""
    shown = sorted(moments[:limit], key=lambda m: m.t0)
    return "\n".join(f"{format_timestamp(m.at)} {m.caption} ({_span(m)})" for m in shown) or (
        "no match"
    )


def render_findings(findings: Sequence[Finding]) -> str:
    """One line per alternative (``red circle: 2 moments: 0:10.0-0:30.0, ...`` or
    ``red circle: no moment``), then other matching clips with their captions."""
    lines = []
    for f in findings:
        if not f.alternative:
            if f.moments:
                lines.append(render_clips(f.moments))
            continue
        n = len(f.moments)
        if not n:
            lines.append(f"{f.alternative}: no moment")
            continue
        spans = ", ".join(_span(m) for m in f.moments[:SHOWN_MOMENTS])
        more = f", +{n - SHOWN_MOMENTS} more" if n > SHOWN_MOMENTS else ""
        lines.append(f"{f.alternative}: {n} moment{'s' * (n > 1)}: {spans}{more}")
    return "\n".join(lines) or "no match"


def inspect_order(findings: Sequence[Finding]) -> list[float]:
    """The moments worth looking at, as times: each finding's first moment in turn, then each
    one's second, and so on (a few false hits of one alternative cannot crowd out another's
    only moment)."""
    out: list[float] = []
    depth = max((len(f.moments) for f in findings), default=0)
    for k in range(depth):
        out += [f.moments[k].at for f in findings if k < len(f.moments)]
    return list(dict.fromkeys(out))


def index_context(
    index: VideoIndex, video_id: str, searches: Sequence[str], times: Sequence[float],
    k: int = SEARCH_K,
) -> str:  # fmt: skip
    """What the index says for the reasoner: the findings of each search made, and the
    caption of the clip holding each frame shown (``times`` s); "" when there is nothing."""
    blocks = []
    lines = [render_findings(find_moments(q, index.search(video_id, q, k)))
             for q in dict.fromkeys(searches)]  # fmt: skip
    if lines:
        blocks.append("Found in the index:\n" + "\n".join(lines))
    if times:
        at = []
        for t in sorted(times):
            clips = index.window(video_id, t - 1e-3, t + 1e-3)
            c = next((c for c in clips if c.t0 <= t < c.t1), None) or next(
                (c for c in clips if c.t0 <= t <= c.t1), None
            )  # a frame at a clip's end (the video's last) belongs to that clip
            if c is not None:
                at.append(f"{format_timestamp(t)} {c.caption}")
        if at:
            blocks.append("Captions at these frames:\n" + "\n".join(at))
    return "\n".join(blocks)
