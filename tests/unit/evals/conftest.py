"""Tiny videos for the benchmark loaders: one 2-second 160x90 4 fps clip, copied under names."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from vidra.video.synthetic import VideoWriter


@pytest.fixture(scope="session")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2 s, 160x90, 4 fps grey ramp (8 frames)."""
    path = tmp_path_factory.mktemp("clip") / "clip.mp4"
    with VideoWriter(path, fps=4, width=160, height=90) as w:
        for k in range(8):
            w.write(np.full((90, 160, 3), 40 + 20 * k, np.uint8))
    return path


class Videos:
    """Place copies of the clip at relative paths under a root."""

    def __init__(self, root: Path, clip: Path) -> None:
        self.root, self.clip = root, clip

    def add(self, *names: str) -> Path:
        for name in names:
            target = self.root / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(self.clip, target)
        return self.root


@pytest.fixture
def videos(tmp_path: Path, clip: Path) -> Videos:
    root = tmp_path / "videos"
    root.mkdir()
    return Videos(root, clip)
