from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vidra.errors import InvalidInput
from vidra.video import detect_shots, get_decoder, make_storyboard, render_grid, shot_boundaries
from vidra.video.storyboard import format_timestamp
from vidra.video.synthetic import WorldSpec, make_world, render_world


@pytest.fixture(scope="module")
def world_video(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    spec = WorldSpec(
        duration=240,
        fps=4,
        width=160,
        height=90,
        seed=3,
        min_scene_s=20,
        max_scene_s=60,
        objects_per_minute=1.0,
    )
    world = make_world(spec)
    path = render_world(world, tmp_path_factory.mktemp("world") / "w.mp4", gop_s=4)
    return world, path


def test_timestamps() -> None:
    assert format_timestamp(5.25) == "0:05.2"
    assert format_timestamp(754) == "12:34"
    assert format_timestamp(3723) == "1:02:03"


def test_grid_layout_and_labels() -> None:
    frames = np.zeros((5, 20, 40, 3), np.uint8)
    img = render_grid(frames, [0, 1, 2, 3, 4], columns=3)
    assert img.size == (120, 40)
    arr = np.asarray(img)
    assert arr[:8, :30].max() > 0  # a label was drawn on the first tile
    assert arr[25:, 90:].max() == 0  # the sixth slot stays empty
    with pytest.raises(InvalidInput):
        render_grid(frames, [0, 1])


def test_storyboard_of_a_video(world_video, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _, path = world_video
    board = make_storyboard(get_decoder("pyav"), path, n=9, tile=80)
    assert len(board.times) == 9 and board.columns == 3
    assert board.times == sorted(board.times)
    assert all(abs(t / 4.0 - round(t / 4.0)) < 1e-6 for t in board.times)  # at keyframes (4 s GOP)
    assert board.image.size == (3 * 80, 3 * 45)
    assert board.save(tmp_path / "sb.png").stat().st_size > 0


def test_pure_boundaries_find_a_cut() -> None:
    frames = np.zeros((10, 8, 8, 3), np.uint8)
    frames[6:] = 200
    segs = shot_boundaries(frames, list(range(0, 100, 10)), fps=10.0, frame_count=100)
    assert [(s.start_index, s.end_index) for s in segs] == [(0, 60), (60, 100)]
    assert segs[1].start == 6.0


def test_detected_shots_match_the_scenes(world_video) -> None:  # type: ignore[no-untyped-def]
    world, path = world_video
    shots = detect_shots(get_decoder("pyav"), path, sample_fps=1.0, size=32, threshold=0.3)
    cuts = {round(s.start) for s in shots[1:]}
    truth = {round(s.start) for s in world.scenes[1:]}
    # every scene cut is found within a second; object changes are small in the histogram
    assert all(any(abs(c - t) <= 1 for c in cuts) for t in truth)
    assert len(cuts) <= len(truth) + 2
