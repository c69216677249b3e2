"""Pure frame-index sampling: which frames to look at, computed from counts and rates only.

No decoding and no I/O here; decoders turn these indices into pixels. Indices are
0-based positions on the video's nominal timeline (index ``i`` is shown at ``i / fps``).
"""

from __future__ import annotations

from collections.abc import Sequence

from vidra.errors import InvalidInput

__all__ = [
    "fixed_fps_indices",
    "index_to_time",
    "keyframe_thumbnail_times",
    "time_to_index",
    "uniform_indices",
    "uniform_segment_indices",
]


def _check_count(n: int, name: str = "n") -> None:
    if n < 0:
        raise InvalidInput(f"{name}={n} is negative; ask for 0 or more frames")


def uniform_indices(frame_count: int, n: int) -> list[int]:
    """Pick ``n`` frame indices spread evenly over a video, each at the centre of its slot.

    Args:
        frame_count: frames in the video (> 0).
        n: how many to pick; capped at ``frame_count`` (no index is repeated).

    Returns:
        Sorted, distinct indices in ``[0, frame_count)``.
    """
    return uniform_segment_indices(0, frame_count, n)


def uniform_segment_indices(start: int, stop: int, n: int) -> list[int]:
    """Pick ``n`` indices spread evenly over the half-open segment ``[start, stop)``.

    Each index sits at the centre of one of ``n`` equal slots, so a segment's edges
    (often shot cuts or transitions) are avoided. Returns fewer than ``n`` when the
    segment is shorter than ``n`` frames.
    """
    _check_count(n)
    if start < 0 or stop < start:
        raise InvalidInput(f"segment [{start}, {stop}) is invalid; need 0 <= start <= stop")
    length = stop - start
    n = min(n, length)
    if n == 0:
        return []
    step = length / n
    return [start + min(length - 1, int(step * (k + 0.5))) for k in range(n)]


def fixed_fps_indices(
    frame_count: int, video_fps: float, sample_fps: float, max_frames: int | None = None
) -> list[int]:
    """Indices at a fixed sampling rate (``sample_fps`` frames per second of video).

    When ``max_frames`` is given and the rate would exceed it, the samples are spread
    uniformly instead, so long videos stay within budget.
    """
    if video_fps <= 0 or sample_fps <= 0:
        raise InvalidInput(f"fps must be positive (video_fps={video_fps}, sample_fps={sample_fps})")
    duration = frame_count / video_fps
    n = max(1, int(duration * sample_fps)) if frame_count else 0
    if max_frames is not None and n > max_frames:
        return uniform_indices(frame_count, max_frames)
    step = video_fps / sample_fps
    out = sorted({min(frame_count - 1, int(k * step)) for k in range(n)})
    return out


def keyframe_thumbnail_times(
    duration: float, n: int, keyframe_times: Sequence[float] | None = None
) -> list[float]:
    """Times for ``n`` overview thumbnails that are cheap to decode.

    Without keyframe positions the times are uniform slot centres; a decoder then
    returns the keyframe at or before each time. With positions, the nearest distinct
    keyframe to each slot centre is chosen, so each thumbnail costs one keyframe decode.
    """
    _check_count(n)
    if duration <= 0 or n == 0:
        return []
    centres = [duration * (k + 0.5) / n for k in range(n)]
    if not keyframe_times:
        return centres
    keys = sorted(keyframe_times)
    chosen: list[float] = []
    for c in centres:
        best = min(keys, key=lambda t: abs(t - c))
        if not chosen or best > chosen[-1]:
            chosen.append(best)
    return chosen


def index_to_time(index: int, fps: float, start_time: float = 0.0) -> float:
    """Presentation time in seconds of frame ``index`` on the nominal timeline."""
    return start_time + index / fps


def time_to_index(seconds: float, fps: float, frame_count: int) -> int:
    """Index of the frame on screen at ``seconds`` (clamped to the video)."""
    if seconds < 0:
        raise InvalidInput(f"time {seconds}s is negative; times start at 0")
    return max(0, min(frame_count - 1, int(seconds * fps + 1e-6)))
