"""Every kind of bad or odd file either decodes correctly or raises a VidraError naming it."""

from __future__ import annotations

import os
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from vidra.errors import (
    DecodeTimeout,
    InvalidInput,
    NoVideoStream,
    VideoNotFound,
    VideoUnreadable,
    VidraError,
)
from vidra.video import get_decoder, probe
from vidra.video.synthetic import counter_image, read_counter, write_counter_video

from .conftest import Counter


def _add_audio(container, seconds: float = 1.0):  # type: ignore[no-untyped-def]
    """Add an AAC stream now (before any muxing); call the result to encode the tone."""
    import av

    stream = container.add_stream("aac", rate=44100)
    stream.layout = "mono"

    def write() -> None:
        samples = int(44100 * seconds)
        tone = (0.1 * np.sin(np.arange(samples) * 2 * np.pi * 440 / 44100)).astype(np.float32)
        for start in range(0, samples, 1024):
            chunk = tone[None, start : start + 1024]
            frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="mono")
            frame.sample_rate = 44100
            frame.pts = start
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)

    return write


def test_nonexistent_path(tmp_path: Path) -> None:
    with pytest.raises(VideoNotFound, match="no such file") as err:
        probe(tmp_path / "missing.mp4")
    assert "missing.mp4" in str(err.value)


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(VideoNotFound, match="is a directory"):
        probe(tmp_path)


def test_fifo_does_not_hang(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.mp4"
    os.mkfifo(fifo)
    with pytest.raises(VideoNotFound, match="not a regular file"):
        probe(fifo)


def test_unreadable_file(tmp_path: Path, counter_gop: Counter) -> None:
    path = tmp_path / "secret.mp4"
    path.write_bytes(counter_gop.path.read_bytes())
    path.chmod(0)
    code = (
        "import os, av\nfrom vidra.errors import VideoNotFound\nfrom vidra.video import probe\n"
        "if os.geteuid() == 0: os.setgid(65534); os.setuid(65534)\n"
        f"try:\n    probe({str(path)!r})\nexcept VideoNotFound as e:\n    print('OK', e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.startswith("OK") and "permission denied" in out.stdout, out.stderr


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.mp4"
    path.touch()
    with pytest.raises(VideoUnreadable, match="empty file"):
        probe(path)


def test_random_bytes(tmp_path: Path) -> None:
    path = tmp_path / "noise.mp4"
    path.write_bytes(np.random.default_rng(0).bytes(50_000))
    with pytest.raises(VideoUnreadable, match=r"noise\.mp4"):
        probe(path)


def test_truncated_without_index(tmp_path: Path, counter_gop: Counter) -> None:
    data = counter_gop.path.read_bytes()  # moov at the end: cutting it loses the index
    path = tmp_path / "cut.mp4"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(VideoUnreadable, match="truncated MP4"):
        probe(path)


def test_half_of_a_faststart_file(tmp_path: Path) -> None:
    full = tmp_path / "fast.mp4"
    bits = write_counter_video(
        full, 300, width=128, height=72, gop=25, container_options={"movflags": "faststart"}
    )
    half = tmp_path / "half.mp4"
    data = full.read_bytes()
    half.write_bytes(data[: len(data) // 2])
    info = probe(half)
    assert info.truncated and 0 < info.frame_count < 300
    reader = get_decoder("pyav")
    last = info.frame_count - 1
    frames = reader.frames(half, [0, last // 2, last])
    assert [read_counter(f, bits) for f in frames] == [0, last // 2, last]
    with pytest.raises(InvalidInput, match="out of range"):
        reader.frames(half, [299])


def test_corrupted_gops_still_decode(tmp_path: Path, counter_gop: Counter) -> None:
    data = bytearray(counter_gop.path.read_bytes())
    rng = np.random.default_rng(1)
    start = len(data) // 3
    data[start : start + 600] = rng.bytes(600)
    path = tmp_path / "corrupt.mp4"
    path.write_bytes(bytes(data))
    reader = get_decoder("pyav")
    indices = list(range(0, 300, 7))
    frames = reader.frames(path, indices)
    assert frames.shape == (len(indices), 72, 128, 3)
    # the first GOP lies before the damage and must be exact
    assert [read_counter(f, counter_gop.bits) for f in frames[:4]] == indices[:4]


def test_audio_only(tmp_path: Path) -> None:
    import av

    path = tmp_path / "audio.mp4"
    with av.open(str(path), "w") as container:
        _add_audio(container)()
    with pytest.raises(NoVideoStream, match="no video stream"):
        probe(path)


def test_undecodable_codec(tmp_path: Path, counter_gop: Counter) -> None:
    path = tmp_path / "alien.mp4"
    path.write_bytes(counter_gop.path.read_bytes().replace(b"avc1", b"zzz1"))
    with pytest.raises(NoVideoStream, match="codec is not supported"):
        probe(path)


def test_single_frame(tmp_path: Path) -> None:
    path = tmp_path / "one.mp4"
    bits = write_counter_video(path, 1)
    info = probe(path)
    assert info.frame_count == 1
    frame = get_decoder("pyav").frames(path, [0])
    assert read_counter(frame[0], bits) == 0


def test_variable_frame_rate(tmp_path: Path) -> None:
    path = tmp_path / "vfr.mp4"
    gaps = [0.04, 0.2, 0.04, 0.5, 0.1] * 8
    times = np.concatenate([[0.0], np.cumsum(gaps)])[:40]
    bits = write_counter_video(path, 40, times=list(times))
    info = probe(path)
    assert info.frame_count == 40
    reader = get_decoder("pyav")
    probes = [0.0, 0.05, 0.25, 0.3, 0.79, 0.8, 2.0, 4.0]
    frames = reader.frames_at(path, probes)
    expected = [int(np.searchsorted(times, t + 1e-6, side="right") - 1) for t in probes]
    assert [read_counter(f, bits) for f in frames] == expected


def test_matroska_without_cues(tmp_path: Path) -> None:
    path = tmp_path / "live.mkv"
    bits = write_counter_video(path, 90, gop=30, container_options={"live": "1"})
    info = probe(path)
    assert info.frame_count == 90
    frames = get_decoder("pyav").frames(path, [89, 0, 45])
    assert [read_counter(f, bits) for f in frames] == [89, 0, 45]


def test_several_video_and_audio_streams(tmp_path: Path) -> None:
    import av

    path = tmp_path / "multi.mkv"
    with av.open(str(path), "w") as container:
        a = container.add_stream("libx264", rate=10, options={"preset": "ultrafast"})
        b = container.add_stream("libx264", rate=10, options={"preset": "ultrafast"})
        for s in (a, b):
            s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        write_audio = _add_audio(container, 2.0)
        for i in range(20):
            for s, value in ((a, i), (b, 19 - i)):
                frame = av.VideoFrame.from_ndarray(counter_image(value, 64, 48, 5), format="rgb24")
                frame.pts = i
                frame.time_base = Fraction(1, 10)
                for packet in s.encode(frame):
                    container.mux(packet)
        for s in (a, b):
            for packet in s.encode():
                container.mux(packet)
        write_audio()
    info = probe(path)
    assert info.has_audio and info.stream_index == 0
    frames = get_decoder("pyav").frames(path, [3, 15])
    assert [read_counter(f, 5) for f in frames] == [3, 15]


@pytest.mark.parametrize(
    ("width", "height", "codec", "pix_fmt"),
    [
        (33, 17, "libx264", "yuv444p"),
        (16, 16, "libx264", "yuv420p"),
        (2, 2, "ffv1", "yuv444p"),
    ],
)
def test_odd_and_tiny_resolutions(
    tmp_path: Path, width: int, height: int, codec: str, pix_fmt: str
) -> None:
    path = tmp_path / f"tiny_{width}x{height}.mkv"
    bits = write_counter_video(path, 16, width=width, height=height, codec=codec, pix_fmt=pix_fmt)
    info = probe(path)
    assert (info.width, info.height) == (width, height)
    frames = get_decoder("pyav").frames(path, [2, 9])
    assert frames.shape == (2, height, width, 3)
    if min(width, height) >= 16:
        assert [read_counter(f, bits) for f in frames] == [2, 9]


def test_deadline(counter_onekey: Counter) -> None:
    reader = get_decoder("pyav", timeout_s=1e-6)
    with pytest.raises(DecodeTimeout, match="deadline") as err:
        reader.frames(counter_onekey.path, [239])
    assert str(counter_onekey.path.name) in str(err.value)


@pytest.mark.parametrize("backend", ["decord", "torchcodec"])
def test_other_backends_refuse_bad_files_cleanly(backend: str, tmp_path: Path) -> None:
    path = tmp_path / "noise.mp4"
    path.write_bytes(np.random.default_rng(2).bytes(10_000))
    with pytest.raises(VidraError):
        get_decoder(backend).frames(path, [0])
