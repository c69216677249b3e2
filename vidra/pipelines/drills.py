"""Training examples for vidra-tiny beyond the oracle's own steps, each an exact request
(prompted as the agent is prompted) with the reply to imitate:

- reasoner drills: a question answered from its evidence frames plus a random one or two
  (the oracle's jobs alone give few reasoner steps, each with many frames: too little to
  learn perception);
- index drills: the reasoner shown the moments a search of the index surfaced, with the
  captions that led to them, answering right;
- captions: single moments of a training world with their ground-truth caption.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vidra.agents.captioner import caption_request
from vidra.agents.reasoner import reasoner_messages
from vidra.agents.search import Clip, merge_hits, render_segments
from vidra.models.protocol import ChatRequest, SamplingParams
from vidra.pipelines.oracle import answer_json, evidence_times, ground_caption, search_query
from vidra.storage.index import match_rank
from vidra.video.synthetic import Question, World

__all__ = [
    "Example",
    "caption_accuracy",
    "caption_examples",
    "drill_times",
    "ground_hits",
    "index_drills",
    "reasoner_drills",
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


def ground_hits(world: World, query: str, stride: float) -> list[Clip]:
    """The clips a search for ``query`` finds in an index of ground-truth captions."""
    hits = []
    n = int(world.spec.duration // stride)
    for k in range(n):
        t0, t1 = k * stride, (k + 1) * stride
        cap = ground_caption(world, (t0 + t1) / 2)
        phrases, words = match_rank(query, cap)
        score = 10.0 * phrases + words
        if score and cap != "nothing":
            hits.append(Clip(k, t0, t1, cap, score))
    return sorted(hits, key=lambda c: -c.score)[:48]


def index_drills(
    worlds: Sequence[tuple[Path, World, Sequence[Question]]], reader: Any, size: int,
    n_frames: int, stride: float, tokenizer: Any, eos: int,
) -> list[Example]:  # fmt: skip
    """Each question answered from the moments a ground-truth search surfaced, shown with
    the captions that led to them (as the ``search`` strategy shows them)."""
    out: list[Example] = []
    for video, world, questions in worlds:
        for q in questions:
            query = search_query(q)
            if query is None:
                continue
            segments = merge_hits(ground_hits(world, query, stride))
            times = [s.at for s in segments[:n_frames]] or [world.spec.duration / 2]
            frames, shown = show(reader, video, world.spec.fps, times, size)
            captions = render_segments(segments, limit=8)
            msgs = reasoner_messages(q.text, q.options, frames, shown, captions=captions)
            ids = _ids(tokenizer, answer_json(q, q.answer_index, shown), eos)
            out.append(((str(video), "~index", q.id), "reasoner",
                        ChatRequest(msgs, sampling=GREEDY), ids))  # fmt: skip
    return out


def caption_examples(
    worlds: Sequence[tuple[Path, World, Sequence[Question]]], reader: Any, size: int,
    every_s: float, tokenizer: Any, eos: int,
) -> list[Example]:  # fmt: skip
    """Moments every ``every_s`` seconds (clip middles) with their ground-truth caption."""
    out: list[Example] = []
    for video, world, _ in worlds:
        fps = world.spec.fps
        times = [(k + 0.5) * every_s for k in range(int(world.spec.duration // every_s))]
        frames, shown = show(reader, video, fps, times, size)
        for frame, t in zip(frames, shown, strict=True):
            req = caption_request(frame, t, GREEDY)
            ids = _ids(tokenizer, ground_caption(world, t), eos)
            out.append(((str(video), "~caption", round(t, 2)), "captioner", req, ids))
    return out


def caption_accuracy(model: Any, worlds: Sequence[tuple[Path, World, Sequence[Question]]],
                     reader: Any, size: int, every_s: float) -> dict[str, float]:  # fmt: skip
    """Held-out captions: exact match rate and object-level precision and recall."""
    from vidra.agents.captioner import caption_frames

    exact = tp = fp = fn = 0
    total = 0
    for video, world, _ in worlds:
        times = [(k + 0.5) * every_s for k in range(int(world.spec.duration // every_s))]
        frames, shown = show(reader, video, world.spec.fps, times, size)
        captions = caption_frames(model, frames, shown, SamplingParams(max_tokens=32))
        for cap, t in zip(captions, shown, strict=True):
            truth = ground_caption(world, t)
            got = {p.strip() for p in cap.split(";") if p.strip() and p.strip() != "nothing"}
            want = {p.strip() for p in truth.split(";") if p.strip() and p.strip() != "nothing"}
            exact += int(got == want)
            tp, fp, fn = tp + len(got & want), fp + len(got - want), fn + len(want - got)
            total += 1
    return {
        "moments": total,
        "exact": round(exact / max(1, total), 4),
        "object_precision": round(tp / max(1, tp + fp), 4),
        "object_recall": round(tp / max(1, tp + fn), 4),
    }
