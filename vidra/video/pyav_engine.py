"""The default engine: PyAV with keyframe-aware forward decoding.

Targets are grouped by the keyframe a seek would land on; each group costs at most one
seek, groups are visited in order, and a group inside the GOP already being decoded
continues forward instead of seeking, so no GOP is decoded twice in one call. Requests
spanning many GOPs are split into runs of whole GOPs decoded in parallel (``workers``).
Remote sources are read the same way, through a file object per container.
"""

from __future__ import annotations

import bisect
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from vidra.errors import VideoUnreadable
from vidra.video.decoders import Deadline, DecodeStats, require_cpu
from vidra.video.info import VideoInfo, open_media

__all__ = ["PyAVEngine"]


class PyAVEngine:
    """Decode with PyAV (FFmpeg) on the CPU."""

    name = "pyav"
    applies_rotation = False

    def __init__(self, device: str = "cpu", threads: int = 1, workers: int = 2) -> None:
        require_cpu(self.name, device)
        self.threads = threads
        self.workers = workers

    def decode(
        self,
        info: VideoInfo,
        times: Sequence[float],
        size: tuple[int, int],
        deadline: Deadline,
        stats: DecodeStats,
    ) -> list[np.ndarray]:
        chunks = _split_by_gop(info, times, self.workers)
        if len(chunks) == 1:
            return self._decode_chunk(info, times, size, deadline, stats)
        # GOPs are independent: decode disjoint runs of them on separate containers at once
        # (FFmpeg releases the GIL while decoding), then merge in time order
        parts: list[DecodeStats] = [DecodeStats() for _ in chunks]
        with ThreadPoolExecutor(max_workers=len(chunks)) as pool:
            results = list(
                pool.map(
                    lambda k: self._decode_chunk(info, chunks[k], size, deadline, parts[k]),
                    range(len(chunks)),
                )
            )
        for p in parts:
            stats.frames_decoded += p.frames_decoded
            stats.seeks += p.seeks
            stats.corrupt_packets += p.corrupt_packets
        return [frame for chunk in results for frame in chunk]

    def _decode_chunk(
        self,
        info: VideoInfo,
        times: Sequence[float],
        size: tuple[int, int],
        deadline: Deadline,
        stats: DecodeStats,
    ) -> list[np.ndarray]:
        import av

        with open_media(info.location, info.identity) as (container, source):
            stream = container.streams[info.stream_index]
            stream.thread_type = "AUTO" if self.threads != 1 else "NONE"
            stream.codec_context.thread_count = self.threads
            run = _Run(container, stream, info, size, deadline, stats)
            if source is not None:
                run.prefetch = _Prefetch(info, stream, source)
            try:
                return run.fetch(times)
            except av.error.FFmpegError as exc:
                raise VideoUnreadable(info.path, f"decoding failed ({exc})") from exc


class _Prefetch:
    """Tells a remote source which bytes the next group needs, from the container's index.

    The span runs from the keyframe before the first target to a few packets past the last
    one (decoder delay); anything else FFmpeg reads still arrives through read-ahead.
    """

    _SLACK = 4  # packets past the last target
    _READ_PAST = 32 << 10  # FFmpeg reads its I/O buffer (32 KiB) past the last packet it uses

    def __init__(self, info: VideoInfo, stream: Any, source: Any) -> None:
        try:
            self.entries = list(stream.index_entries)
        except (AttributeError, TypeError):  # PyAV < 15 has no index access
            self.entries = []
        self.stamps = [e.timestamp for e in self.entries]  # decode order
        self.keys = [k for k, e in enumerate(self.entries) if e.is_keyframe]
        self.tb = float(stream.time_base)
        self.start = info.start_time
        self.source = source

    def __call__(self, first: float, last: float) -> None:
        if not self.keys:
            return
        lo = self._entry(first)
        key = self.keys[max(0, bisect.bisect_right(self.keys, lo) - 1)]
        end = min(len(self.entries) - 1, self._entry(last) + self._SLACK)
        a, b = self.entries[key], self.entries[end]
        self.source.prefetch(a.pos, b.pos + b.size + self._READ_PAST)

    def _entry(self, t: float) -> int:
        """The last packet (decode order) stamped at or before ``t``: the target or later."""
        return max(0, bisect.bisect_right(self.stamps, (t + self.start) / self.tb + 0.5) - 1)


def _split_by_gop(info: VideoInfo, times: Sequence[float], workers: int) -> list[list[float]]:
    """Sorted ``times`` cut into at most ``workers`` runs that never share a GOP."""
    keys = info.keyframe_times() if info.indexed else []
    if workers <= 1 or len(keys) <= 1 or len(times) < 2 * workers:
        return [list(times)]
    gop_of = [bisect.bisect_right(keys, t + 1e-6) for t in times]
    if gop_of[0] == gop_of[-1]:
        return [list(times)]
    chunks: list[list[float]] = [[]]
    per = len(times) / workers
    for k, t in enumerate(times):
        if len(chunks[-1]) >= per and gop_of[k] != gop_of[k - 1] and len(chunks) < workers:
            chunks.append([])
        chunks[-1].append(t)
    return chunks


class _Run:
    """One decode call: seek plan, forward decode, conversion of the wanted frames."""

    def __init__(
        self,
        container: Any,
        stream: Any,
        info: VideoInfo,
        size: tuple[int, int],
        deadline: Deadline,
        stats: DecodeStats,
    ) -> None:
        self.container = container
        self.stream = stream
        self.info = info
        self.size = size
        self.deadline = deadline
        self.stats = stats
        self.tb = float(stream.time_base)
        # timestamps within eps of a target count as "on screen at" it (pts rounding)
        self.eps = min(1e-3, 0.25 / max(info.fps, info.nominal_fps))
        self.period = 1.0 / info.fps if info.constant_rate else 0.0
        self.prev: Any = None
        self.last_time = -float("inf")
        self.frames: Iterator[Any] | None = None
        # keyframe times in seconds from the first frame (cached per video by VideoInfo)
        self.keys = info.keyframe_times() if info.indexed else []
        self.prefetch: _Prefetch | None = None  # remote sources: fetch a group's bytes at once

    def fetch(self, times: Sequence[float]) -> list[np.ndarray]:
        out: dict[float, np.ndarray] = {}
        for key_time, group in self._groups(times):
            if self.prefetch is not None:
                self.prefetch(group[0], group[-1])
            if self.frames is None or (key_time is not None and key_time > self.last_time):
                self._seek(key_time)
            self._decode_group(deque(group), out)
        return [out[t] for t in times]

    def _groups(self, times: Sequence[float]) -> list[tuple[float | None, list[float]]]:
        if len(self.keys) <= 1:
            return [(None, list(times))]
        groups: dict[int, list[float]] = {}
        for t in times:
            k = max(0, bisect.bisect_right(self.keys, t + self.eps) - 1)
            groups.setdefault(k, []).append(t)
        return [(self.keys[k], g) for k, g in sorted(groups.items())]

    def _seek(self, key_time: float | None) -> None:
        if key_time is not None and key_time > 0:
            target = round((key_time + self.info.start_time) / self.tb)
            self.container.seek(target, stream=self.stream, backward=True, any_frame=False)
            self.stats.seeks += 1
        elif self.frames is not None:
            return  # already decoding forward from the start
        self.prev = None
        self.frames = self._frame_iter()

    def _frame_iter(self) -> Iterator[Any]:
        """Frames in decode order; a corrupt packet is counted and skipped, not fatal."""
        import av

        while True:
            try:
                yield from self.container.decode(self.stream)
                return
            except av.error.InvalidDataError:
                self.stats.corrupt_packets += 1  # demuxing resumes after the bad packet

    def _decode_group(self, pending: deque[float], out: dict[float, np.ndarray]) -> None:
        """Decode forward until every pending time is answered by the frame on screen then.

        Comparisons run on integer pts: a target ``T`` is answered by the previous frame once
        a frame after ``T + eps`` appears, or (constant rate) by the first frame after
        ``T + eps - period``, so no frame past the target is decoded.
        """
        if self.frames is None:
            raise RuntimeError("_seek must run before _decode_group")
        base = self.info.start_time
        after = lambda t: (t + self.eps + base) / self.tb  # noqa: E731 - pts just after t
        stats, deadline = self.stats, self.deadline
        for frame in self.frames:
            stats.frames_decoded += 1
            if not stats.frames_decoded & 15:
                deadline.check()
            pts = frame.pts
            if pts is None:
                continue
            while pending and pts > after(pending[0]):  # shown before this frame: previous one
                out[pending.popleft()] = self._convert(
                    self.prev if self.prev is not None else frame
                )
            while pending and pts > after(pending[0] - self.period):  # CFR: this one is on screen
                out[pending.popleft()] = self._convert(frame)
            self.prev = frame
            self.last_time = pts * self.tb - base
            if not pending:
                return
        self._end_of_stream(pending, out)

    def _end_of_stream(self, pending: deque[float], out: dict[float, np.ndarray]) -> None:
        if not pending:
            return
        # an estimated frame count may overshoot by a little: the last frame stays on screen
        slack = 2.0 / self.info.fps if self.info.frame_count_exact else 1.0
        if self.prev is None or pending[-1] > max(self.last_time, self.info.duration) + slack:
            raise VideoUnreadable(
                self.info.path,
                f"the stream ends at {self.last_time:.3f} s but {pending[-1]:.3f} s was asked "
                "for (truncated or corrupt file); ask for earlier frames or repair the file",
            )
        while pending:
            out[pending.popleft()] = self._convert(self.prev)

    def _convert(self, frame: Any) -> np.ndarray:
        return to_rgb(frame, self.size)


def to_rgb(frame: Any, size: tuple[int, int]) -> np.ndarray:
    """A decoded frame as RGB at ``size`` (w, h), by a single-threaded scaler. PyAV's default
    scaler runs slice threads, and a frame keeps its scaler: when such a frame is reachable
    only from another thread's state, a process forked with a ``preexec_fn`` (as Ray starts
    its local cluster) frees it in the child, which then waits forever for threads it does
    not have, and the parent waits forever for the child."""
    w, h = size
    return np.asarray(frame.to_ndarray(format="rgb24", width=w, height=h, threads=1))
