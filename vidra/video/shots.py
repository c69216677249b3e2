"""Shot boundaries from low-resolution frames: colour-histogram distance between samples.

`shot_boundaries` is a pure function over frames and times; `detect_shots` decodes a
video sparsely (fixed rate, tiny size) and returns its shots as `Segment`s.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vidra.errors import InvalidInput
from vidra.video.sampling import fixed_fps_indices

__all__ = ["Segment", "detect_shots", "histogram_distance", "shot_boundaries"]

_BINS = 8


@dataclass(frozen=True)
class Segment:
    """A time span ``[start, end)`` in seconds, with the frame index range it covers."""

    start: float
    end: float
    start_index: int
    end_index: int  # exclusive

    @property
    def duration(self) -> float:
        return self.end - self.start


def _histograms(frames: np.ndarray) -> np.ndarray:
    """Joint RGB histograms, ``[n, bins**3]``, each summing to 1."""
    q = (frames.astype(np.int32) * _BINS) // 256
    codes = (q[..., 0] * _BINS + q[..., 1]) * _BINS + q[..., 2]
    n = frames.shape[0]
    flat = codes.reshape(n, -1)
    hist = np.zeros((n, _BINS**3), np.float64)
    for k in range(n):
        hist[k] = np.bincount(flat[k], minlength=_BINS**3)
    return hist / flat.shape[1]


def histogram_distance(frames: np.ndarray) -> np.ndarray:
    """Total-variation distance in [0, 1] between consecutive frames' histograms: ``[n - 1]``."""
    h = _histograms(frames)
    return 0.5 * np.abs(np.diff(h, axis=0)).sum(axis=1)


def shot_boundaries(
    frames: np.ndarray,
    indices: Sequence[int],
    fps: float,
    frame_count: int,
    threshold: float = 0.3,
    min_shot_s: float = 1.0,
) -> list[Segment]:
    """Split a video into shots from sampled frames.

    Args:
        frames: ``[n, h, w, 3]`` uint8 samples in time order (low resolution is enough).
        indices: the frame index of each sample.
        fps: the video's frame rate (to turn indices into seconds).
        frame_count: frames in the video (the last shot ends there).
        threshold: histogram distance above which a cut is declared.
        min_shot_s: cuts closer than this to the previous one are ignored.

    Returns:
        Contiguous segments covering ``[0, frame_count)``; a cut sits at the first sample
        of the new shot.
    """
    if len(frames) != len(indices):
        raise InvalidInput(f"{len(frames)} frames but {len(indices)} indices")
    if frame_count <= 0 or fps <= 0:
        raise InvalidInput("frame_count and fps must be positive")
    cuts = [0]
    if len(frames) > 1:
        for k, d in enumerate(histogram_distance(frames), start=1):
            if d > threshold and (indices[k] - cuts[-1]) / fps >= min_shot_s:
                cuts.append(int(indices[k]))
    edges = [*cuts, frame_count]
    return [Segment(a / fps, b / fps, a, b) for a, b in itertools.pairwise(edges) if b > a]


def detect_shots(
    reader: Any,
    path: str | Path,
    sample_fps: float = 1.0,
    size: int = 48,
    threshold: float = 0.3,
    min_shot_s: float = 1.0,
    max_samples: int = 4096,
) -> list[Segment]:
    """Shots of the video at ``path``, from samples at ``sample_fps`` decoded at ``size`` px."""
    info = reader.probe(path)
    indices = fixed_fps_indices(info.frame_count, info.fps, sample_fps, max_frames=max_samples)
    frames = reader.frames(path, indices, size=size)
    return shot_boundaries(frames, indices, info.fps, info.frame_count, threshold, min_shot_s)
