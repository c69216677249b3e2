"""Training examples for vidra-tiny beyond the oracle's own steps, each an exact request
(prompted as the agent is prompted) with the reply to imitate:

- reasoner drills: a question answered from its evidence frames plus a random one or two
  (the oracle's jobs alone give few reasoner steps, each with many frames: too little to
  learn perception);
- index drills: the reasoner shown the moments a search of the index surfaced, with what
  the index says of them, answering right; the index captioned from the ground truth, or by
  the model being trained (its own perception errors in view: `CaptionIndex.captioned`);
- selector drills: each question's first search round as the oracle plays it;
- captions: single moments of a training world with their ground-truth caption.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from vidra.agents.captioner import caption_request
from vidra.agents.findings import SEARCH_K, Clip, find_moments, index_context
from vidra.agents.reasoner import reasoner_messages
from vidra.agents.search import ToolRequest, ToolSettings, first_queries, look, run_tools
from vidra.config import IndexSettings
from vidra.indexing import plan_clips
from vidra.models.protocol import ChatRequest, SamplingParams
from vidra.phrases import match_rank
from vidra.pipelines.oracle import (
    answer_json,
    evidence_times,
    ground_caption,
    look_for,
    oracle,
    search_query,
)
from vidra.video.sampling import uniform_segment_indices
from vidra.video.synthetic import Question, World

__all__ = [
    "CaptionIndex",
    "Example",
    "caption_accuracy",
    "caption_examples",
    "caption_scores",
    "drill_times",
    "index_drills",
    "oracle_look",
    "reasoner_drills",
    "selector_drills",
    "show",
]

Example = tuple[tuple[Any, ...], str, ChatRequest, list[int]]
"""``(sort key, role, request, target token ids)``."""
GREEDY = SamplingParams()


def show(
    reader: Any, video: Path, fps: float, times: Sequence[float], size: int
) -> tuple[Any, list[float]]:
    """The frames shown at ``times`` (decoded as the agents decode them) and their times."""
    index = sorted({max(0, int(t * fps + 1e-6)) for t in times})
    return reader.frames(video, index, size=size), [i / fps for i in index]


def drill_times(world: World, q: Question, rng: random.Random, n_max: int) -> list[float] | None:
    """Every evidence time of ``q`` plus random others (None: the evidence alone needs more
    than ``n_max`` frames). For counting, the others never show the colour counted."""
    targets = evidence_times(q)
    if len(targets) > n_max:
        return None
    m = re.search(r"an? (\w+) object", q.text) if q.kind == "counting" else None
    extra: list[float] = []
    for _ in range(4 * n_max):
        if len(extra) >= rng.randint(1, max(1, n_max - len(targets))):
            break
        t = round(rng.uniform(0, world.spec.duration - 1), 1)
        if m is None or all(o.colour != m.group(1) for o in world.visible_at(t)):
            extra.append(t)
    return sorted(targets + extra)


def _ids(tokenizer: Any, text: str, eos: int) -> list[int]:
    return [*tokenizer.encode(text, add_special_tokens=False), eos]


def reasoner_drills(
    worlds: Sequence[tuple[Path, World, Sequence[Question]]], reader: Any, size: int,
    draws: int, n_max: int, tokenizer: Any, eos: int, seed: int,
) -> list[Example]:  # fmt: skip
    """Each question answered ``draws`` times from its evidence plus random frames."""
    out: list[Example] = []
    for video, world, questions in worlds:
        fps = world.spec.fps
        rng = random.Random(f"drill:{seed}:{world.spec.seed}")
        for q in questions:
            for d in range(draws):
                times = drill_times(world, q, rng, n_max)
                if times is None:
                    continue
                frames, shown = show(reader, video, fps, times, size)
                msgs = reasoner_messages(q.text, q.options, frames, shown)
                ids = _ids(tokenizer, answer_json(q, q.answer_index, shown), eos)
                out.append(((str(video), "~drill", q.id, d), "reasoner",
                            ChatRequest(msgs, sampling=GREEDY), ids))  # fmt: skip
    return out


class CaptionIndex:
    """A `VideoIndex` of a world's clips (cut as the runtime cuts them, `plan_clips`) with
    given captions, searched and ranked as the store ranks them: `ground` (from the world's
    truth) or `captioned` (by a model, as the runtime builds it: its errors included)."""

    def __init__(self, clips: Sequence[tuple[float, float]], captions: Sequence[str]) -> None:
        pairs = zip(clips, captions, strict=True)
        self.all = [Clip(k, a, b, c) for k, ((a, b), c) in enumerate(pairs)]

    @staticmethod
    def plan(world: World, stride: float) -> list[tuple[int, float, float, int]]:
        fps = world.spec.fps
        frames = round(world.spec.duration * fps)
        return plan_clips(world.spec.duration, fps, frames, IndexSettings(stride_s=stride)).clips

    @classmethod
    def ground(cls, world: World, stride: float) -> CaptionIndex:
        clips = cls.plan(world, stride)
        return cls([(a, b) for _, a, b, _ in clips],
                   [ground_caption(world, (a + b) / 2) for _, a, b, _ in clips])  # fmt: skip

    @classmethod
    def captioned(
        cls, model: Any, reader: Any, video: Path, world: World, cfg: IndexSettings
    ) -> CaptionIndex:
        """Each clip captioned by ``model`` as `vidra.indexing.build_index` captions it."""
        from vidra.agents.captioner import caption_frames

        clips = cls.plan(world, cfg.stride_s or cfg.min_stride_s)
        sampling = SamplingParams(temperature=0.0, max_tokens=cfg.caption_tokens)
        caps: list[str] = []
        for k0 in range(0, len(clips), cfg.batch):
            batch = clips[k0 : k0 + cfg.batch]
            frames = reader.frames(video, [c[3] for c in batch], size=cfg.frame_size)
            caps += caption_frames(model, frames, [(a + b) / 2 for _, a, b, _ in batch], sampling)
        return cls([(a, b) for _, a, b, _ in clips], caps)

    def search(self, video_id: str, query: str, k: int) -> list[Clip]:
        ranked = []
        for c in self.all:
            phrases, words = match_rank(query, c.caption)
            if words:
                ranked.append(Clip(c.id, c.t0, c.t1, c.caption, 10.0 * phrases + words))
        return sorted(ranked, key=lambda c: (-c.score, c.t0))[:k]

    def window(self, video_id: str, t0: float, t1: float) -> list[Clip]:
        return [c for c in self.all if c.t1 > t0 and c.t0 < t1]

    def clips(self, ids: Sequence[int]) -> list[Clip]:
        return [c for c in self.all if c.id in set(ids)]


def oracle_look(q: Question, index: CaptionIndex, n: int) -> tuple[list[str], list[float]]:
    """The searches and inspected times of the oracle's ``search`` round for ``q``: the
    options' search (when they name things), the oracle's own query, then the moments found
    (or the moment a question about one moment names)."""
    duration = index.all[-1].t1 if index.all else 0.0
    req = ToolRequest("v", duration, 1.0, q.text, q.options, "", "", n, ToolSettings(max_calls=4))
    searches = first_queries(req)
    query = search_query(q)
    if query is not None and query not in searches:
        searches.append(query)
    found = [f for s in reversed(searches) for f in find_moments(s, index.search("v", s, SEARCH_K))]
    return searches, look(req, found)[:n]


def index_drills(
    worlds: Sequence[tuple[Path, World, Sequence[Question]]], reader: Any, size: int,
    n_frames: int, tokenizer: Any, eos: int,
    index_of: Callable[[Path, World], CaptionIndex], tag: str = "~index",
) -> list[Example]:  # fmt: skip
    """Each question answered from the moments the oracle's search round inspects, with what
    the index (``index_of(video, world)``) says: the findings and the captions at those
    frames, as the ``search`` strategy shows them."""
    out: list[Example] = []
    for video, world, questions in worlds:
        index = index_of(video, world)
        for k, q in enumerate(questions):
            searches, times = oracle_look(q, index, n_frames)
            if not times:  # nothing found: the selector looks uniformly instead
                count = round(world.spec.duration * world.spec.fps)
                times = [i / world.spec.fps for i in uniform_segment_indices(0, count, n_frames)]
            frames, shown = show(reader, video, world.spec.fps, times, size)
            notes = index_context(index, "v", searches, shown)
            msgs = reasoner_messages(q.text, q.options, frames, shown, captions=notes)
            ids = _ids(tokenizer, answer_json(q, q.answer_index, shown), eos)
            out.append(((str(video), tag, q.id, k), "reasoner",
                        ChatRequest(msgs, sampling=GREEDY), ids))  # fmt: skip
    return out


def selector_drills(
    worlds: Sequence[tuple[Path, World, Sequence[Question]]], n_frames: int, max_calls: int,
    tokenizer: Any, eos: int, index_of: Callable[[Path, World], CaptionIndex],
) -> list[Example]:  # fmt: skip
    """Each question's first ``search`` round as the oracle plays it (which query to search,
    when to inspect), every tool-call request with the oracle's reply: the oracle's own jobs
    ask too few questions of each kind for a small model to learn to copy the query."""
    from vidra.models.scripted import ScriptedChatModel

    out: list[Example] = []
    for video, world, questions in worlds:
        index = index_of(video, world)
        for q in questions:  # one script each: needle questions share their text
            script = oracle([q], 0.0, 0, world=world)
            model = ScriptedChatModel(script)
            req = ToolRequest("v", world.spec.duration, world.spec.fps, q.text, q.options,
                              look_for(q), "", n_frames, ToolSettings(max_calls))  # fmt: skip
            run_tools(req, index, model, GREEDY)
            for k, call in enumerate(model.calls):
                out.append(((str(video), "~select", q.id, k), "selector",
                            ChatRequest(call.messages, sampling=GREEDY),
                            _ids(tokenizer, script(call), eos)))  # fmt: skip
    return out


def caption_examples(
    worlds: Sequence[tuple[Path, World, Sequence[Question]]], reader: Any, size: int,
    every_s: float, tokenizer: Any, eos: int, label_s: float = 3600.0,
) -> list[Example]:  # fmt: skip
    """Moments every ``every_s`` seconds (clip middles) with their ground-truth caption.

    Each is asked at a random time within the first ``label_s`` seconds, not its own: what
    a frame shows does not depend on when (a model taught only short worlds' times otherwise
    reads late times as "nothing")."""
    out: list[Example] = []
    for video, world, _ in worlds:
        fps = world.spec.fps
        rng = random.Random(f"caption-time:{world.spec.seed}")
        times = [(k + 0.5) * every_s for k in range(int(world.spec.duration // every_s))]
        frames, shown = show(reader, video, fps, times, size)
        for frame, t in zip(frames, shown, strict=True):
            req = caption_request(frame, round(rng.uniform(0, label_s), 1), GREEDY)
            ids = _ids(tokenizer, ground_caption(world, t), eos)
            out.append(((str(video), "~caption", round(t, 2)), "captioner", req, ids))
    return out


def caption_accuracy(model: Any, worlds: Sequence[tuple[Path, World, Sequence[Question]]],
                     reader: Any, size: int, every_s: float) -> dict[str, float]:  # fmt: skip
    """Held-out captions: exact match rate and object-level precision and recall."""
    from vidra.agents.captioner import caption_frames

    pairs = []
    for video, world, _ in worlds:
        times = [(k + 0.5) * every_s for k in range(int(world.spec.duration // every_s))]
        frames, shown = show(reader, video, world.spec.fps, times, size)
        captions = caption_frames(model, frames, shown, SamplingParams(max_tokens=32))
        pairs += [(cap, ground_caption(world, t)) for cap, t in zip(captions, shown, strict=True)]
    return caption_scores(pairs)


def caption_scores(pairs: Iterable[tuple[str, str]]) -> dict[str, float]:
    """``(caption, ground caption)`` pairs scored: how many (``moments``), the exact match
    rate, and the precision and recall of their ``;``-separated objects."""
    exact = tp = fp = fn = total = 0
    for cap, truth in pairs:
        got, want = _objects(cap), _objects(truth)
        exact += int(got == want)
        tp, fp, fn = tp + len(got & want), fp + len(got - want), fn + len(want - got)
        total += 1
    return {
        "moments": total,
        "exact": round(exact / max(1, total), 4),
        "object_precision": round(tp / max(1, tp + fp), 4),
        "object_recall": round(tp / max(1, tp + fn), 4),
    }


def _objects(caption: str) -> set[str]:
    return {p.strip() for p in caption.split(";") if p.strip() and p.strip() != "nothing"}
