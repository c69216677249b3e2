"""Generated tasks: synthetic worlds and needles. The needle's pixels really are in the
re-encoded video at the stated time (and nowhere else), and reruns reuse cached files."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from vidra.evals import load_task
from vidra.evals import needle as needle_mod
from vidra.evals.needle import Needle, choose_needle, draw_needle, with_needle
from vidra.evals.tasks.needle import haystack_world, synthetic_haystacks, synthetic_video
from vidra.video.synthetic import COLOURS, read_counter, write_counter_video


def _decode(path: str | Path) -> list[tuple[float, np.ndarray]]:
    import av

    with av.open(str(path)) as c:
        return [(float(f.time), f.to_ndarray(format="rgb24")) for f in c.decode(video=0)]


def _centre(frame: np.ndarray, quadrant: str) -> np.ndarray:
    h, w = frame.shape[:2]
    x = w // 4 if quadrant.endswith("left") else 3 * w // 4
    y = h // 4 if quadrant.startswith("top") else 3 * h // 4
    return frame[y - 1 : y + 2, x - 1 : x + 2].reshape(-1, 3).mean(axis=0)


def _close(pixel: np.ndarray, rgb: tuple[int, int, int], tol: float = 40.0) -> bool:
    return bool(np.abs(pixel - np.asarray(rgb, float)).max() < tol)


def test_synthetic_worlds_render_once_with_evidence(tmp_path: Path) -> None:
    res = load_task("synthetic", None, tmp_path, worlds=2, duration=90, per_kind=1, needles=2)
    kinds = {i.categories["kind"] for i in res.items}
    assert kinds == {"needle", "counting", "ordering", "grounding", "state"}
    assert {Path(i.path or "").name for i in res.items} == {
        "world-0-90s-4fps-2n.mp4",
        "world-1-90s-4fps-2n.mp4",
    }
    needles = [i for i in res.items if i.categories["kind"] == "needle"]
    assert len(needles) >= 3  # the world's own needle question, plus needle_questions' extra
    for item in res.items:
        assert item.answer == (item.options or [])[item.answer_index or 0]
        assert item.evidence or (item.categories["kind"], item.answer) == ("counting", "0")
        if item.categories["kind"] in ("needle", "grounding"):
            assert item.span is not None
            assert all(item.span[0] <= t <= item.span[1] for t in item.evidence)
    stamp = {p: p.stat().st_mtime_ns for p in tmp_path.glob("*.mp4")}
    again = load_task("synthetic", None, tmp_path, worlds=2, duration=90, per_kind=1, needles=2)
    assert [i.qid for i in again.items] == [i.qid for i in res.items]
    assert {p: p.stat().st_mtime_ns for p in tmp_path.glob("*.mp4")} == stamp
    assert len(load_task("synthetic", None, tmp_path, worlds=50, duration=40, limit=3).items) == 3


def test_draw_needle_draws_the_worlds_look() -> None:
    n = Needle("square", "red", "bottom-right", 1.0, 3.0)
    out = draw_needle(np.zeros((90, 160, 3), np.uint8), n)
    assert _close(_centre(out, "bottom-right"), COLOURS["red"], 1)
    assert _centre(out, "top-left").max() == 0


def test_choose_needle_avoids_busy_quadrants_and_present_looks() -> None:
    world = haystack_world(2.0, seed=3)
    present = {o.name for o in world.objects}
    for k in range(20):
        n = choose_needle(random.Random(k), 120.0, 4.0, sorted(present), busy=world.objects)
        assert n.name not in present and 2.0 <= n.end - n.start <= 4.0 + 1e-9
        assert abs(n.start * 4 - round(n.start * 4)) < 1e-9  # on a frame boundary
        for o in world.objects:
            if o.quadrant == n.quadrant:
                assert o.end + 2 <= n.start or n.end + 2 <= o.start


def test_needle_on_synthetic_haystacks(tmp_path: Path) -> None:
    res = load_task("needle", None, tmp_path, minutes="0.5", count=2, seed=4)
    assert [i.qid for i in res.items] == ["needle-s4-0.5min-0", "needle-s4-0.5min-1"]
    item = res.items[0]
    assert item.span is not None and item.options is not None and len(item.options) == 4
    assert len(set(item.options)) == 4 and item.answer == item.options[item.answer_index or 0]
    assert item.categories["length"] == "0.5min" and item.evidence
    colour = COLOURS[(item.answer or "").split(" ")[0]]
    quadrant = item.categories["quadrant"]
    frames = _decode(item.path or "")
    inside = [f for t, f in frames if item.span[0] <= t < item.span[1]]
    outside = [f for t, f in frames if t < item.span[0] - 2 or t > item.span[1] + 2]
    assert inside and all(_close(_centre(f, quadrant), colour) for f in inside)
    assert not any(_close(_centre(f, quadrant), colour) for f in outside)


def test_synthetic_haystacks_are_the_ground_truth_of_the_needle_task(tmp_path: Path) -> None:
    items = load_task("needle", None, tmp_path, minutes="0.5", count=2, seed=4).items
    hays = list(synthetic_haystacks(4, [0.5], 2))
    assert [h.tag for h in hays] == ["0.5min-0", "0.5min-1"]
    for item, h in zip(items, hays, strict=True):
        assert item.path == str(synthetic_video(tmp_path, h))
        assert item.span == (h.needle.start, h.needle.end) and item.options == h.options
        assert item.answer_index == h.answer and item.answer == h.needle.name
        full = with_needle(h.world, h.needle)
        mid = (h.needle.start + h.needle.end) / 2
        assert h.needle.name in {o.name for o in full.visible_at(mid)}
        assert h.needle.name not in {o.name for o in h.world.objects}  # absent from the haystack
        assert not (set(h.options) - {h.needle.name}) & {o.name for o in full.objects}


@pytest.fixture
def haystacks(tmp_path: Path) -> Path:
    """Two counter videos (each frame shows its index): constant and variable frame rate;
    and two files that are not haystacks (a text file, a broken .mp4)."""
    root = tmp_path / "hay"
    root.mkdir()
    write_counter_video(root / "cfr.mp4", 48, fps=4, width=160, height=96, gop=8)
    times = np.cumsum([0.0] + [0.2 if k % 3 else 0.35 for k in range(47)])
    write_counter_video(root / "vfr.mkv", 48, fps=4, width=160, height=96, times=list(times))
    (root / "notes.txt").write_text("not a video")
    (root / "broken.mp4").write_bytes(b"\x00junk" * 100)
    return root


def test_needle_on_real_haystacks_is_in_the_pixels_at_the_stated_time(
    tmp_path: Path, haystacks: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    res = load_task("needle", None, haystacks, source="videos", cache=cache, seed=7)
    assert [i.video_id for i in res.items] == ["cfr", "vfr"]
    assert len(res.skipped) == 1 and "broken.mp4 unreadable" in res.skipped[0]["reason"]
    for item in res.items:
        assert item.span is not None and Path(item.path or "").parent == cache
        src = _decode(haystacks / f"{item.video_id}{'.mp4' if item.video_id == 'cfr' else '.mkv'}")
        out = _decode(item.path or "")
        assert [round(t, 3) for t, _ in out] == [round(t, 3) for t, _ in src]  # times kept
        colour = COLOURS[(item.answer or "").split(" ")[0]]
        quadrant = item.categories["quadrant"]
        hits = 0
        for (t, frame), (_, before) in zip(out, src, strict=True):
            if item.span[0] <= t < item.span[1]:
                hits += 1
                assert _close(_centre(frame, quadrant), colour), (item.qid, t)
            else:
                assert read_counter(frame, 6) == read_counter(before, 6)
                assert not _close(_centre(frame, quadrant), colour)
        assert hits >= 2
    # a rerun reuses the cached files: no decoding or encoding happens
    stamps = {p: p.stat().st_mtime_ns for p in cache.iterdir()}

    def refuse(*args: object) -> None:
        raise AssertionError("re-encoded although cached")

    monkeypatch.setattr(needle_mod, "_reencode", refuse)
    again = load_task("needle", None, haystacks, source="videos", cache=cache, seed=7)
    assert [i.path for i in again.items] == [i.path for i in res.items]
    assert {p: p.stat().st_mtime_ns for p in cache.iterdir()} == stamps
    # a changed haystack is a new cache entry
    monkeypatch.undo()
    write_counter_video(haystacks / "cfr.mp4", 40, fps=4, width=160, height=96, gop=8)
    changed = load_task("needle", None, haystacks, source="videos", cache=cache, seed=7, limit=1)
    assert changed.items[0].path != res.items[0].path


def test_needle_real_source_needs_a_folder(tmp_path: Path) -> None:
    from vidra.errors import ConfigError

    with pytest.raises(ConfigError, match="source=videos reads haystacks"):
        load_task("needle", None, tmp_path / "absent", source="videos", cache=tmp_path / "c")
