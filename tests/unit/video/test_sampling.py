import pytest

from vidra.errors import InvalidInput
from vidra.video.sampling import (
    fixed_fps_indices,
    keyframe_thumbnail_times,
    time_to_index,
    uniform_indices,
    uniform_segment_indices,
)


def test_uniform_indices_are_slot_centres() -> None:
    assert uniform_indices(100, 4) == [12, 37, 62, 87]
    assert uniform_indices(3, 10) == [0, 1, 2]
    assert uniform_indices(10, 0) == []


def test_uniform_segment_stays_inside() -> None:
    idx = uniform_segment_indices(1000, 1100, 5)
    assert idx == [1010, 1030, 1050, 1070, 1090]
    assert all(1000 <= i < 1100 for i in idx)


def test_segment_validation() -> None:
    with pytest.raises(InvalidInput):
        uniform_segment_indices(10, 5, 2)
    with pytest.raises(InvalidInput):
        uniform_indices(10, -1)


def test_fixed_fps_and_cap() -> None:
    assert fixed_fps_indices(300, 30.0, 1.0) == [0, 30, 60, 90, 120, 150, 180, 210, 240, 270]
    capped = fixed_fps_indices(108000, 30.0, 2.0, max_frames=16)
    assert len(capped) == 16 and capped == uniform_indices(108000, 16)
    with pytest.raises(InvalidInput):
        fixed_fps_indices(10, 0.0, 1.0)


def test_keyframe_thumbnails_pick_distinct_nearest_keyframes() -> None:
    keys = [0.0, 8.0, 16.0, 24.0, 32.0]
    assert keyframe_thumbnail_times(40.0, 4, keys) == [8.0, 16.0, 24.0, 32.0]
    assert keyframe_thumbnail_times(40.0, 4, [0.0]) == [0.0]
    assert keyframe_thumbnail_times(40.0, 4) == [5.0, 15.0, 25.0, 35.0]


def test_time_to_index_clamps() -> None:
    assert time_to_index(1.0, 30.0, 100) == 30
    assert time_to_index(100.0, 30.0, 100) == 99
    with pytest.raises(InvalidInput):
        time_to_index(-1.0, 30.0, 100)
