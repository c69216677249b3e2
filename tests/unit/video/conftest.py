"""Videos generated once per session with PyAV (and ffmpeg where PyAV cannot)."""

from __future__ import annotations

from pathlib import Path

import pytest

from vidra.video.synthetic import write_counter_video


class Counter:
    """A counter video and the bits needed to read it back."""

    def __init__(self, path: Path, n: int, bits: int, fps: float) -> None:
        self.path, self.n, self.bits, self.fps = path, n, bits, fps


@pytest.fixture(scope="session")
def vdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("videos")


@pytest.fixture(scope="session")
def counter_gop(vdir: Path) -> Counter:
    """300 frames at 30 fps, a keyframe every 25 frames."""
    path = vdir / "counter_gop25.mp4"
    bits = write_counter_video(path, 300, fps=30, width=128, height=72, gop=25)
    return Counter(path, 300, bits, 30.0)


@pytest.fixture(scope="session")
def counter_onekey(vdir: Path) -> Counter:
    """240 frames with a single keyframe."""
    path = vdir / "counter_onekey.mp4"
    bits = write_counter_video(path, 240, fps=24, width=96, height=64, gop=0)
    return Counter(path, 240, bits, 24.0)
