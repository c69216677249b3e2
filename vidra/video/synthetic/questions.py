"""Questions about a `World` with multiple-choice options and exact answers.

Kinds: ``needle`` (find a brief object), ``counting``, ``ordering`` (which came first),
``grounding`` (answer is a time span), ``state`` (what is where at a time). Every answer
follows from single-frame perception (colour, shape, quadrant) plus timestamps.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from vidra.errors import InvalidInput
from vidra.video.storyboard import format_timestamp
from vidra.video.synthetic.world import COLOURS, QUADRANTS, SHAPES, World, WorldObject

__all__ = ["KINDS", "Question", "evidence_times", "generate_questions", "needle_questions",
           "read_questions", "write_questions"]  # fmt: skip

KINDS = ("needle", "counting", "ordering", "grounding", "state")
NOTHING = "nothing"


@dataclass(frozen=True)
class Question:
    """A question with its options and ground truth.

    ``evidence`` holds times (seconds) at which a single frame shows what the answer
    needs; ``answer_span`` is the true ``[start, end)`` for grounding questions.
    """

    id: str
    kind: str
    text: str
    options: list[str]
    answer: str
    answer_index: int
    evidence: list[float] = field(default_factory=list)
    answer_span: tuple[float, float] | None = None
    video: str | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, line: str) -> Question:
        data = json.loads(line)
        span = data.get("answer_span")
        data["answer_span"] = tuple(span) if span is not None else None
        return cls(**data)


def evidence_times(q: Question) -> list[float]:
    """Times (s) where a frame shows what the answer needs (inside the span when there is one)."""
    if q.answer_span is not None:
        a, b = q.answer_span
        return [round(a + (b - a) / 4, 1), round(a + 3 * (b - a) / 4, 1)]
    return [round(t, 1) for t in q.evidence]


def _span_text(a: float, b: float) -> str:
    return f"{format_timestamp(a)}-{format_timestamp(b)}"


def _mc(
    rng: random.Random, answer: str, distractors: Sequence[str], k: int = 4
) -> tuple[list[str], int]:
    pool = [d for d in dict.fromkeys(distractors) if d != answer]
    options = [answer, *rng.sample(pool, min(k - 1, len(pool)))]
    rng.shuffle(options)
    return options, options.index(answer)


def _unique_objects(world: World) -> list[WorldObject]:
    return [o for o in world.objects if world.count(o.name) == 1]


def _needle(world: World, rng: random.Random, qid: str) -> Question | None:
    needles = [o for o in world.objects if o.needle]
    if not needles:
        return None
    o = rng.choice(needles)
    present = {x.name for x in world.objects}
    absent = [f"{c} {s}" for s in SHAPES for c in COLOURS if f"{c} {s}" not in present]
    if len(absent) < 3:
        return None
    options, idx = _mc(rng, o.name, absent)
    text = "One of these objects appears briefly somewhere in the video. Which one?"
    mid = (o.start + o.end) / 2
    return Question(qid, "needle", text, options, o.name, idx, [mid], (o.start, o.end))


def needle_questions(world: World, seed: int | None = None) -> list[Question]:
    """One needle question per needle of ``world`` (`generate_questions` asks one per world:
    the question text is the same for every needle, only the options differ)."""
    rng = random.Random(world.spec.seed if seed is None else seed)
    needles = [o for o in world.objects if o.needle]
    present = {x.name for x in world.objects}
    absent = [f"{c} {s}" for s in SHAPES for c in COLOURS if f"{c} {s}" not in present]
    if len(absent) < 3:
        return []
    text = "One of these objects appears briefly somewhere in the video. Which one?"
    out = []
    for k, o in enumerate(needles):
        options, idx = _mc(rng, o.name, absent)
        qid = f"s{world.spec.seed}-needle-{k}"
        out.append(
            Question(qid, "needle", text, options, o.name, idx, [(o.start + o.end) / 2],
                     (o.start, o.end))
        )  # fmt: skip
    return out


def _counting(world: World, rng: random.Random, qid: str) -> Question | None:
    colour = rng.choice(sorted(COLOURS))
    hits = [o for o in world.objects if o.colour == colour]
    n = len(hits)
    # four consecutive counts holding the answer at a random rank (clamped at 0), shuffled:
    # distractors drawn around n left it in the middle, a shortcut learnt from the options
    low = max(0, n - rng.randrange(4))
    options = [str(low + k) for k in range(4)]
    rng.shuffle(options)
    idx = options.index(str(n))
    article = "an" if colour[0] in "aeiou" else "a"
    text = f"How many times does {article} {colour} object appear in the video?"
    return Question(
        qid, "counting", text, options, str(n), idx, [(o.start + o.end) / 2 for o in hits]
    )


def _ordering(world: World, rng: random.Random, qid: str) -> Question | None:
    unique = _unique_objects(world)
    pairs = [(a, b) for a in unique for b in unique if a.start + 5 <= b.start]
    if not pairs:
        return None
    first, second = rng.choice(pairs)
    asked = (first, second) if rng.random() < 0.5 else (second, first)
    text = f"Which appears first in the video: the {asked[0].name} or the {asked[1].name}?"
    options = [asked[0].name, asked[1].name]
    evidence = [(first.start + first.end) / 2, (second.start + second.end) / 2]
    return Question(qid, "ordering", text, options, first.name, options.index(first.name), evidence)


def _grounding(world: World, rng: random.Random, qid: str) -> Question | None:
    unique = _unique_objects(world)
    if not unique:
        return None
    o = rng.choice(unique)
    answer = _span_text(o.start, o.end)
    others = [
        _span_text(x.start, x.end) for x in world.objects if x.end <= o.start or x.start >= o.end
    ]
    if len(set(others)) < 3:
        return None
    options, idx = _mc(rng, answer, others)
    text = f"During which time span is the {o.name} visible?"
    mid = (o.start + o.end) / 2
    return Question(qid, "grounding", text, options, answer, idx, [o.start, mid], (o.start, o.end))


def _state(world: World, rng: random.Random, qid: str) -> Question | None:
    quadrant = rng.choice(QUADRANTS)
    here = [o for o in world.objects if o.quadrant == quadrant]
    if here and rng.random() < 0.8:
        o = rng.choice(here)
        t = round(rng.uniform(o.start, o.end - 1.0 / world.spec.fps), 1)
        if not o.visible(t):
            t = o.start
        answer = o.name
    else:
        t = round(rng.uniform(0, world.spec.duration - 1), 1)
        on = [x for x in world.visible_at(t) if x.quadrant == quadrant]
        answer = on[0].name if on else NOTHING
    names = [x.name for x in world.objects] + [f"{c} {s}" for s in SHAPES for c in COLOURS]
    options, idx = _mc(rng, answer, [NOTHING, *names])
    text = f"At {format_timestamp(t)}, what is in the {quadrant} part of the picture?"
    return Question(qid, "state", text, options, answer, idx, [t])


_MAKERS = {
    "needle": _needle,
    "counting": _counting,
    "ordering": _ordering,
    "grounding": _grounding,
    "state": _state,
}


def generate_questions(
    world: World,
    per_kind: int = 2,
    kinds: Iterable[str] = KINDS,
    seed: int | None = None,
    video: str | None = None,
) -> list[Question]:
    """Up to ``per_kind`` distinct questions of each kind (fewer when the world lacks material).

    Deterministic for a given world and ``seed`` (default: the world's seed).
    """
    kinds = list(kinds)
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown:
        raise InvalidInput(f"unknown question kinds {unknown}; choose from {list(KINDS)}")
    rng = random.Random(world.spec.seed if seed is None else seed)
    out: list[Question] = []
    for kind in kinds:
        seen: set[str] = set()
        for _ in range(per_kind * 8):  # bounded: a world may lack material
            if len(seen) >= per_kind:
                break
            qid = f"s{world.spec.seed}-{kind}-{len(seen)}"
            q = _MAKERS[kind](world, rng, qid)
            if q is None or q.text in seen:
                continue
            seen.add(q.text)
            out.append(q if video is None else Question(**{**asdict(q), "video": video}))
    return out


def write_questions(questions: Iterable[Question], path: str | Path) -> Path:
    """Write questions as JSON Lines."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    with open(p, "w") as fh:
        for q in questions:
            fh.write(q.to_json() + "\n")
    return p


def read_questions(path: str | Path) -> list[Question]:
    """Read questions written by `write_questions`."""
    with open(path) as fh:
        return [Question.from_json(line) for line in fh if line.strip()]
