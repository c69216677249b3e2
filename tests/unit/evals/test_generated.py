"""Generated tasks: synthetic worlds rendered once, with evidence times and spans."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vidra.evals import load_task


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
