"""Decoders return exactly the frames asked for, in the caller's order, on every backend."""

from __future__ import annotations

import numpy as np
import pytest

from vidra.errors import BackendUnavailable, ConfigError, InvalidInput
from vidra.video import get_decoder, probe
from vidra.video.synthetic import read_counter, write_counter_video

from .conftest import Counter

BACKENDS = ["pyav", "decord", "torchcodec"]


def _reader(name: str):  # type: ignore[no-untyped-def]
    try:
        return get_decoder(name)
    except BackendUnavailable as exc:  # pragma: no cover - the dev extra installs all three
        pytest.skip(str(exc))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("video", ["counter_gop", "counter_onekey"])
def test_backends_return_the_frame_asked_for(
    backend: str, video: str, request: pytest.FixtureRequest
) -> None:
    v: Counter = request.getfixturevalue(video)
    reader = _reader(backend)
    indices = [v.n - 1, 0, 77, 78, 3, 77, v.n // 2, 26, 25, 24]
    frames = reader.frames(v.path, indices)
    assert frames.dtype == np.uint8 and frames.shape[0] == len(indices)
    assert [read_counter(f, v.bits) for f in frames] == indices


@pytest.mark.parametrize("backend", BACKENDS)
def test_backends_agree_pixelwise(backend: str, counter_gop: Counter) -> None:
    indices = [5, 50, 150, 299]
    ref = get_decoder("pyav").frames(counter_gop.path, indices)
    got = _reader(backend).frames(counter_gop.path, indices)
    assert got.shape == ref.shape
    assert np.abs(got.astype(int) - ref.astype(int)).mean() < 3.0


@pytest.mark.parametrize("backend", BACKENDS)
def test_downscale_and_frames_at(backend: str, counter_gop: Counter) -> None:
    reader = _reader(backend)
    small = reader.frames(counter_gop.path, [10, 200], size=64)
    assert small.shape == (2, 36, 64, 3)
    exact = reader.frames(counter_gop.path, [10], size=(40, 30))
    assert exact.shape == (1, 30, 40, 3)
    at = reader.frames_at(counter_gop.path, [0.0, 1.0, 9.95], size=64)
    assert [read_counter(f, counter_gop.bits) for f in at] == [0, 30, 298]


def test_pyav_decodes_each_gop_at_most_once_and_never_backwards(counter_gop: Counter) -> None:
    reader = get_decoder("pyav")
    indices = [290, 10, 12, 60, 61, 62, 149, 151]  # GOPs 0, 2, 5, 6, 11
    reader.frames(counter_gop.path, indices)
    gops = {i // 25 for i in indices}
    # each visited GOP is decoded up to its last wanted frame (+2 for decoder look-ahead)
    assert reader.stats.frames_decoded <= len(gops) * 25
    assert reader.stats.seeks <= len(gops)


def test_one_keyframe_file_is_one_forward_pass(counter_onekey: Counter) -> None:
    reader = get_decoder("pyav")
    reader.frames(counter_onekey.path, [200, 10, 100])
    assert reader.stats.seeks == 0
    assert reader.stats.frames_decoded <= 203


def test_keyframe_positions(counter_gop: Counter) -> None:
    info = probe(counter_gop.path)
    keys = info.keyframe_times()
    assert keys == pytest.approx([k * 25 / 30 for k in range(12)], abs=1e-3)


def test_probe_facts(counter_gop: Counter) -> None:
    info = probe(counter_gop.path)
    assert (info.width, info.height, info.frame_count, info.frame_count_exact) == (
        128,
        72,
        300,
        True,
    )
    assert info.fps == pytest.approx(30.0) and info.duration == pytest.approx(10.0)
    assert (info.codec, info.pix_fmt, info.has_audio, info.rotation) == (
        "h264",
        "yuv420p",
        False,
        0,
    )


def test_bad_requests(counter_gop: Counter) -> None:
    reader = get_decoder("pyav")
    with pytest.raises(InvalidInput, match="out of range"):
        reader.frames(counter_gop.path, [300])
    with pytest.raises(InvalidInput, match="not an integer"):
        reader.frames(counter_gop.path, [1.5])  # type: ignore[list-item]
    with pytest.raises(InvalidInput, match="outside the video"):
        reader.frames_at(counter_gop.path, [60.0])
    with pytest.raises(InvalidInput):
        reader.frames(counter_gop.path, [1], size=0)
    assert reader.frames(counter_gop.path, []).shape == (0, 72, 128, 3)
    with pytest.raises(ConfigError, match="unknown video backend"):
        get_decoder("nope")
    with pytest.raises(ConfigError, match="CPU only"):
        get_decoder("pyav", device="cuda")


def test_rotated_video_is_turned_upright(vdir) -> None:  # type: ignore[no-untyped-def]
    path = vdir / "rotated.mp4"
    bits = write_counter_video(path, 30, width=96, height=48, rotation=90)
    info = probe(path)
    assert (info.rotation, info.width, info.height) == (90, 48, 96)
    for backend in BACKENDS:
        frames = _reader(backend).frames(path, [7, 21])
        assert frames.shape == (2, 96, 48, 3), backend
        upright = [np.rot90(f, k=-1) for f in frames]  # undo the display rotation
        assert [read_counter(f, bits) for f in upright] == [7, 21], backend


def test_pixel_cap_downscales(vdir) -> None:  # type: ignore[no-untyped-def]
    path = vdir / "large.mp4"
    bits = write_counter_video(path, 4, width=3840, height=2160)
    reader = get_decoder("pyav", max_pixels=640 * 360)
    frames = reader.frames(path, [0, 3])
    assert frames.shape[1] * frames.shape[2] <= 640 * 360
    assert frames.shape[2] / frames.shape[1] == pytest.approx(16 / 9, rel=0.02)
    assert [read_counter(f, bits) for f in frames] == [0, 3]


def test_parallel_gop_runs_equal_sequential(counter_gop: Counter) -> None:
    indices = [290, 3, 77, 150, 151, 220, 26, 199, 100, 260, 5]
    seq = get_decoder("pyav", workers=1)
    par = get_decoder("pyav", workers=3)
    a, b = seq.frames(counter_gop.path, indices), par.frames(counter_gop.path, indices)
    np.testing.assert_array_equal(a, b)
    assert [read_counter(f, counter_gop.bits) for f in b] == indices
    assert par.stats.frames_decoded == seq.stats.frames_decoded  # same GOPs, none twice
