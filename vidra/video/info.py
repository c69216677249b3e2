"""`probe(path) -> VideoInfo`: what a video is, read from its container with PyAV.

Reads headers and the container's index, and decodes only the first frame (to learn
rotation and prove the stream decodes). Keyframe positions are computed lazily. URLs are
read through `vidra.video.sources` (only the byte ranges FFmpeg asks for).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vidra.errors import NoVideoStream, VideoUnreadable
from vidra.video.identity import VideoIdentity, identify, is_remote

__all__ = ["VideoInfo", "open_container", "open_media", "probe", "select_video_stream"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VideoInfo:
    """Facts about one video stream of one file.

    ``path`` is the resolved local path, or a URL without its credentials (safe to print
    and store); ``location`` is what decoders open (a remote URL as given).

    Frame indices live on a uniform timeline: index ``i`` means the frame on screen at
    ``i / fps`` seconds after ``start_time``; for constant-frame-rate files that is
    exactly the ``i``-th frame. Times passed to ``frames_at`` are exact for any file.
    """

    path: str
    identity: VideoIdentity
    duration: float  # seconds
    fps: float  # average frame rate: frame_count / duration; the index timeline
    nominal_fps: float  # the stream's declared (base) rate
    frame_count: int
    frame_count_exact: bool  # False when estimated from duration x fps
    constant_rate: bool  # False for variable-frame-rate files (average differs from nominal)
    width: int  # display width, after rotation
    height: int  # display height, after rotation
    rotation: int  # degrees counter-clockwise applied for display (0, 90, 180, 270)
    codec: str
    pix_fmt: str
    has_audio: bool
    stream_index: int
    start_time: float  # seconds of the first frame's presentation time
    truncated: bool  # the index promises more bytes than the file holds
    indexed: bool  # the container has a seek index (MP4 sample table, MKV cues)
    _keyframes: list[float] = field(default_factory=list, repr=False, compare=False)
    uri: str = field(default="", repr=False, compare=False)  # a remote URL as given

    @property
    def location(self) -> str:
        """What to open: the local path, or the remote URL with its credentials."""
        return self.uri or self.path

    def keyframe_times(self) -> list[float]:
        """Seconds (from ``start_time``) of every keyframe; computed on first call."""
        if not self._keyframes:
            self._keyframes.extend(_scan_keyframes(self.location, self.identity, self.stream_index))
        return list(self._keyframes)

    def index_at(self, seconds: float) -> int:
        """Index of the frame shown at ``seconds`` (clamped to the video)."""
        return max(0, min(self.frame_count - 1, int(seconds * self.fps + 1e-6)))

    def time_of(self, index: int) -> float:
        """Seconds (from ``start_time``) at which frame ``index`` is shown."""
        return index / self.fps


def open_container(path: str | Path, identity: VideoIdentity | None = None) -> Any:
    """Open ``path`` with PyAV (use it in ``with``), turning its errors into `VideoUnreadable`.

    A URL is read through `vidra.video.sources.opened`, pinned to ``identity`` when given:
    a source that changes or vanishes meanwhile raises `VideoUnreadable` on leaving.
    """
    import av

    av.logging.set_level(av.logging.PANIC)
    if is_remote(path):
        return _container_of(open_media(path, identity))
    try:
        return av.open(str(path), mode="r", metadata_errors="ignore")
    except av.error.FFmpegError as exc:
        raise VideoUnreadable(path, _describe_open_error(exc, _file_head(path))) from exc


@contextmanager
def open_media(path: str | Path, identity: VideoIdentity | None = None) -> Iterator[Any]:
    """Like `open_container`, yielding ``(container, source)``: the remote file, or ``None``.

    Engines pass hints (`vidra.video.sources.RemoteFile.prefetch`) to the source.
    """
    if not is_remote(path):
        with open_container(path) as container:
            yield container, None
        return
    import av

    from vidra.video.sources import opened

    with opened(str(path), identity) as source:
        try:
            container = av.open(source, mode="r", metadata_errors="ignore")
        except av.error.FFmpegError as exc:
            raise VideoUnreadable(
                source.identity.path, _describe_open_error(exc, _head(source))
            ) from exc
        with container:
            yield container, source


@contextmanager
def _container_of(media: Any) -> Iterator[Any]:
    with media as (container, _):
        yield container


_MP4_BOXES = {b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"pnot", b"uuid"}


def _file_head(path: str | Path) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read(16)
    except OSError:
        return b""


def _head(source: Any) -> bytes:
    """The first bytes of a source (empty when they cannot be read)."""
    try:
        if hasattr(source, "pread"):
            return bytes(source.pread(0, 16))
        source.seek(0)
        return bytes(source.read(16))
    except Exception:
        return b""


def _describe_open_error(exc: Exception, head: bytes = b"") -> str:
    text = str(exc)
    if "moov atom not found" in text:
        if head and head[4:8] not in _MP4_BOXES:
            kind = "text" if head.isascii() and head.strip() else "data"
            return (
                f"not a video file: it is named like one, but its first bytes are {kind}, "
                "not a media container; check that you passed the video"
            )
        return "truncated MP4: its index (moov atom) is missing; re-download or re-mux the file"
    if "Invalid data" in text:
        return "not a recognisable media file (invalid data); check that it is a video"
    return f"cannot be opened as media ({text})"


def select_video_stream(container: Any, path: str | Path) -> Any:
    """The stream vidra decodes: the first video stream marked default, else the first one."""
    streams = [s for s in container.streams.video if s.codec_context is not None]
    if not container.streams.video:
        kinds = sorted({s.type for s in container.streams}) or ["none"]
        raise NoVideoStream(path, f"no video stream (streams: {', '.join(kinds)})")
    if not streams:
        raise NoVideoStream(path, "the video stream's codec is not supported by this FFmpeg")
    default = [s for s in streams if int(s.disposition) & 1]
    return (default or streams)[0]


def probe(path: str | Path) -> VideoInfo:
    """Describe the video at ``path`` (a local path or a URL).

    For a URL, ``info.path`` is the URL without credentials (for messages and records);
    decoders open ``info.location``, the URL as given.

    Raises:
        VideoNotFound: missing path, directory, unreadable file; a URL that 404s, refuses
            access or cannot be reached.
        VideoUnreadable: empty, random bytes, truncated beyond use.
        NoVideoStream: audio-only, or the video codec cannot be decoded.
    """
    if is_remote(path):
        return _probe(identify(path), str(path))
    return _probe(identify(path))


@functools.lru_cache(maxsize=512)
def _probe(ident: VideoIdentity, uri: str = "") -> VideoInfo:
    with open_container(uri or ident.path, ident) as container:
        stream = select_video_stream(container, ident.path)
        first = _first_frame(container, stream, ident.path)
        tb = float(stream.time_base)
        start = float(first.pts * tb) if first.pts is not None else 0.0
        nominal = float(stream.base_rate or stream.guessed_rate or stream.average_rate or 0)
        entries = _index_entries(stream)
        present = [e for e in entries if e.pos + e.size <= ident.size]
        truncated = len(present) < len(entries)
        duration = _duration(container, stream)
        count, exact = _frame_count(stream, present, truncated, duration, nominal, ident, uri)
        if truncated and present and nominal:
            duration = min(duration or float("inf"), count / nominal)
        if not duration:
            duration = count / (nominal or 1.0)
        fps = count / duration if duration > 0 else nominal
        constant = bool(nominal) and abs(fps - nominal) / nominal < 0.01
        if constant:
            fps = nominal
        rotation = int(getattr(first, "rotation", 0) or 0) % 360
        width, height = first.width, first.height
        if rotation in (90, 270):
            width, height = height, width
        return VideoInfo(
            path=ident.path,
            identity=ident,
            duration=float(duration),
            fps=float(fps),
            nominal_fps=nominal or float(fps),
            frame_count=count,
            frame_count_exact=exact,
            constant_rate=constant,
            width=width,
            height=height,
            rotation=rotation,
            codec=stream.codec_context.name,
            pix_fmt=str(stream.codec_context.pix_fmt or first.format.name),
            has_audio=bool(container.streams.audio),
            stream_index=stream.index,
            start_time=start,
            truncated=truncated,
            indexed=bool(entries),
            uri=uri,
        )


def _first_frame(container: Any, stream: Any, path: str | Path) -> Any:
    import av

    try:
        for packet in container.demux(stream):
            try:
                for frame in packet.decode():
                    return frame
            except av.error.InvalidDataError:
                continue
    except av.error.FFmpegError as exc:
        raise VideoUnreadable(path, f"the video stream cannot be read ({exc})") from exc
    raise NoVideoStream(path, "the video stream holds no decodable frame")


def _index_entries(stream: Any) -> list[Any]:
    try:
        return list(stream.index_entries)
    except (AttributeError, TypeError):  # PyAV < 15 has no index access
        return []


def _duration(container: Any, stream: Any) -> float:
    if stream.duration:
        return float(stream.duration * stream.time_base)
    if container.duration:
        return float(container.duration / 1_000_000)
    return 0.0


def _frame_count(
    stream: Any,
    present: list[Any],
    truncated: bool,
    duration: float,
    nominal: float,
    ident: VideoIdentity,
    uri: str,
) -> tuple[int, bool]:
    if truncated:
        log.warning("%s: truncated file, %d frames are present", ident.path, len(present))
        return max(1, len(present)), True
    if stream.frames:
        return int(stream.frames), True
    if duration and nominal:
        return max(1, round(duration * nominal)), False
    count = _count_packets(uri or ident.path, ident, stream.index)
    return max(1, count), True


def _count_packets(location: str, ident: VideoIdentity, stream_index: int) -> int:
    with open_container(location, ident) as container:
        stream = container.streams[stream_index]
        return sum(1 for p in container.demux(stream) if p.size)


def _scan_keyframes(location: str, ident: VideoIdentity, stream_index: int) -> list[float]:
    """Keyframe times from the index when there is one, else by demuxing (no decode)."""
    with open_container(location, ident) as container:
        stream = container.streams[stream_index]
        tb = float(stream.time_base)
        entries = _index_entries(stream)
        if entries:
            first = entries[0].timestamp
            return [(e.timestamp - first) * tb for e in entries if e.is_keyframe]
        times = [
            float(p.pts * tb)
            for p in container.demux(stream)
            if p.size and p.is_keyframe and p.pts is not None
        ]
    base = min(times) if times else 0.0
    return sorted(t - base for t in times)
