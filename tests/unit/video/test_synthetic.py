from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from vidra.errors import InvalidInput
from vidra.video import get_decoder, probe
from vidra.video.synthetic import (
    COLOURS,
    KINDS,
    WorldSpec,
    draw_frame,
    generate_questions,
    make_world,
    read_questions,
    render_world,
    write_questions,
)


def _dominant_colour(patch: np.ndarray) -> str:
    mean = patch.reshape(-1, 3).mean(axis=0)
    return min(COLOURS, key=lambda c: float(np.abs(np.array(COLOURS[c]) - mean).sum()))


def test_world_is_deterministic_by_seed() -> None:
    a = make_world(WorldSpec(duration=600, seed=5))
    b = make_world(WorldSpec(duration=600, seed=5))
    c = make_world(WorldSpec(duration=600, seed=6))
    assert a.objects == b.objects and a.events == b.events
    assert a.objects != c.objects


def test_world_invariants() -> None:
    w = make_world(WorldSpec(duration=3 * 3600, fps=2, seed=1, needles=3))
    needles = [o for o in w.objects if o.needle]
    assert len(needles) == 3
    for n in needles:
        assert 2.0 - 0.5 <= n.end - n.start <= 4.0 + 0.5
        assert w.count(n.name) == 1  # a needle's look occurs nowhere else
    for q in ("top-left", "top-right", "bottom-left", "bottom-right"):
        spans = sorted((o.start, o.end) for o in w.objects if o.quadrant == q)
        assert all(b0 >= a1 for (_, a1), (b0, _) in itertools.pairwise(spans))
    assert w.scenes[0].start == 0 and w.scenes[-1].end == w.spec.duration
    with pytest.raises(InvalidInput):
        make_world(WorldSpec(duration=-1))


def test_rendered_frames_show_the_ground_truth(tmp_path: Path) -> None:
    w = make_world(WorldSpec(duration=180, fps=4, width=160, height=96, seed=2))
    path = render_world(w, tmp_path / "w.mp4")
    info = probe(path)
    assert info.frame_count == 180 * 4 and info.duration == pytest.approx(180)
    obj = max(w.objects, key=lambda o: o.end - o.start)
    t = (obj.start + obj.end) / 2
    frame = get_decoder("pyav").frames_at(path, [t])[0]
    h, w_ = frame.shape[:2]
    col = 0 if obj.quadrant.endswith("left") else 1
    row = 0 if obj.quadrant.startswith("top") else 1
    cy, cx = int((row + 0.5) * h / 2), int((col + 0.5) * w_ / 2)
    assert _dominant_colour(frame[cy - 2 : cy + 3, cx - 2 : cx + 3]) == obj.colour
    error = np.abs(frame.astype(float) - draw_frame(w, t).astype(float))
    assert error.mean() < 3.0 and np.percentile(error, 99) < 40  # only shape edges differ


def test_questions_of_every_kind_with_consistent_answers(tmp_path: Path) -> None:
    w = make_world(WorldSpec(duration=1800, seed=4, needles=2))
    qs = generate_questions(w, per_kind=3)
    assert {q.kind for q in qs} == set(KINDS)
    for q in qs:
        assert q.options[q.answer_index] == q.answer
        assert len(set(q.options)) == len(q.options) >= 2
    by_kind = {k: [q for q in qs if q.kind == k] for k in KINDS}
    for q in by_kind["needle"]:
        needle = next(o for o in w.objects if o.name == q.answer)
        assert needle.needle and q.answer_span == (needle.start, needle.end)
        assert all(w.count(opt) == 0 for opt in q.options if opt != q.answer)
    for q in by_kind["counting"]:
        colour = q.text.split(" object")[0].split()[-1]
        assert int(q.answer) == sum(o.colour == colour for o in w.objects)
    for q in by_kind["ordering"]:
        a, b = (next(o for o in w.objects if o.name == name) for name in q.options)
        assert q.answer == (a.name if a.start < b.start else b.name)
    for q in by_kind["state"]:
        quadrant = q.text.split("in the ")[1].split(" part")[0]
        on = [o.name for o in w.visible_at(q.evidence[0]) if o.quadrant == quadrant]
        assert q.answer == (on[0] if on else "nothing")
    for q in by_kind["grounding"]:
        assert q.answer_span is not None and q.answer_span[0] < q.answer_span[1]
    path = write_questions(qs, tmp_path / "q.jsonl")
    assert read_questions(path) == qs
    assert generate_questions(w, per_kind=3) == qs  # deterministic
    with pytest.raises(InvalidInput):
        generate_questions(w, kinds=["nope"])


def test_counting_options_do_not_give_the_answer_away() -> None:
    """A model that answers from the options alone (e.g. "the second smallest") must do no
    better than chance: counts far from 0 take every rank among the four options (distractors
    drawn from n-2..n+3 never let n be the largest)."""
    ranks, places = [], []
    for seed in range(60):
        w = make_world(WorldSpec(duration=600, seed=seed, objects_per_minute=4))
        for q in generate_questions(w, per_kind=4, kinds=["counting"]):
            counts = sorted(int(o) for o in q.options)
            assert counts == list(range(counts[0], counts[0] + 4))  # consecutive
            places.append(q.answer_index)  # where it is listed: any place alike
            if int(q.answer) >= 3:
                ranks.append(counts.index(int(q.answer)))  # its rank among the counts
    for seen in (ranks, places):
        assert len(seen) >= 60
        shares = [seen.count(k) / len(seen) for k in range(4)]
        assert max(shares) < 0.4 and min(shares) > 0.1, shares


def test_event_log_export(tmp_path: Path) -> None:
    import json

    w = make_world(WorldSpec(duration=300, seed=7))
    lines = w.to_jsonl(tmp_path / "events.jsonl").read_text().splitlines()
    assert json.loads(lines[0])["spec"]["seed"] == 7
    events = [json.loads(x)["event"] for x in lines if "event" in json.loads(x)]
    assert len(events) == len(w.scenes) + 2 * len(w.objects)
    assert [e["time"] for e in events] == sorted(e["time"] for e in events)


def test_long_video_renders_and_probes(tmp_path: Path) -> None:
    w = make_world(WorldSpec(duration=3900, fps=1, width=64, height=36, seed=9))
    path = render_world(w, tmp_path / "long.mp4")
    info = probe(path)
    assert info.duration == pytest.approx(3900) and info.frame_count == 3900


def test_one_needle_question_per_needle() -> None:
    from vidra.video.synthetic.questions import needle_questions

    spec = WorldSpec(duration=1800, fps=4, width=160, height=90, seed=3, needles=6,
                     objects_per_minute=0.4)  # fmt: skip
    world = make_world(spec)
    qs = needle_questions(world)
    needles = {o.name: o for o in world.objects if o.needle}
    assert len(qs) == 6 and len({q.id for q in qs}) == 6
    present = {o.name for o in world.objects}
    for q in qs:
        assert q.answer in needles and q.options[q.answer_index] == q.answer
        assert not (set(q.options) - {q.answer}) & present  # distractors never appear
        o = needles[q.answer]
        assert o.start <= q.evidence[0] < o.end
