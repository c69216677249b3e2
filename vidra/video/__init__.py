"""Video: probing, sparse decoding by short-named backends, sampling, storyboards, shots, cache.

Knows nothing about agents, models or SQL. Frames are ``[n, h, w, 3]`` uint8 arrays.
Wherever a path is accepted, an ``http(s)://`` or fsspec URL (``s3://``, ``memory://``) is too.
"""

from vidra.video.cache import CachedReader, FrameCache
from vidra.video.decoders import (
    DecodeStats,
    FrameDecoder,
    FrameReader,
    FrameSource,
    Size,
    get_decoder,
)
from vidra.video.identity import VideoIdentity, content_hash, identify
from vidra.video.info import VideoInfo, probe
from vidra.video.sampling import (
    fixed_fps_indices,
    keyframe_thumbnail_times,
    uniform_indices,
    uniform_segment_indices,
)
from vidra.video.shots import Segment, detect_shots, shot_boundaries
from vidra.video.sources import (
    RemoteOptions,
    configure_remote,
    is_remote,
    open_source,
    redact,
)
from vidra.video.storyboard import Storyboard, format_timestamp, make_storyboard, render_grid

__all__ = [
    "CachedReader",
    "DecodeStats",
    "FrameCache",
    "FrameDecoder",
    "FrameReader",
    "FrameSource",
    "RemoteOptions",
    "Segment",
    "Size",
    "Storyboard",
    "VideoIdentity",
    "VideoInfo",
    "configure_remote",
    "content_hash",
    "detect_shots",
    "fixed_fps_indices",
    "format_timestamp",
    "get_decoder",
    "identify",
    "is_remote",
    "keyframe_thumbnail_times",
    "make_storyboard",
    "open_reader",
    "open_source",
    "probe",
    "redact",
    "render_grid",
    "shot_boundaries",
    "uniform_indices",
    "uniform_segment_indices",
]


def open_reader(settings: object | None = None) -> CachedReader:
    """A cached frame reader configured from `vidra.config.Settings` (defaults if ``None``).

    Also applies the ``remote_*`` settings to remote sources (process-wide).
    """
    from vidra.config import Settings, load_settings

    s = settings if isinstance(settings, Settings) else load_settings()
    v = s.video
    configure_remote(v)
    reader = get_decoder(
        v.backend,
        device=v.device,
        max_pixels=v.max_pixels,
        timeout_s=v.decode_timeout_s,
        threads=v.threads,
        workers=v.workers,
    )
    return CachedReader(reader, FrameCache(v.cache_bytes, v.cache_dir))
