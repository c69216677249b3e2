"""The ``torchcodec`` engine: torchcodec's VideoDecoder on the CPU or CUDA (NVDEC).

torchcodec applies rotation itself and batches sorted indices; resizing is done with
an antialiased interpolation on the decoded tensor (on the same device). Remote sources
are handed to it as a file object (`vidra.video.sources.opened`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from vidra.errors import BackendUnavailable, ConfigError, VideoUnreadable
from vidra.video.decoders import Deadline, DecodeStats
from vidra.video.identity import is_remote
from vidra.video.info import VideoInfo

__all__ = ["TorchCodecEngine", "require_ffmpeg"]

_CHUNK = 16


def require_ffmpeg() -> None:
    """`BackendUnavailable` unless torchcodec found FFmpeg's shared libraries.

    torchcodec loads ``libavutil``/``libavcodec``/... of FFmpeg 4-9 from the system (PyAV's
    wheel bundles its own); without them ``import torchcodec`` works but every decode fails
    with a page of tracebacks, so the check is made once, when the engine is built.
    """
    import torchcodec

    if getattr(torchcodec, "ffmpeg_major_version", None) is None:
        raise BackendUnavailable(
            "torchcodec",
            "torchcodec",
            "FFmpeg's shared libraries (libavutil, libavcodec, ...) are not installed",
            fix="sudo apt-get install -y ffmpeg (or use VIDRA_VIDEO__BACKEND=pyav)",
        )


class TorchCodecEngine:
    """Decode with torchcodec; ``device='cuda'`` uses the GPU decoder."""

    name = "torchcodec"
    applies_rotation = True

    def __init__(self, device: str = "cpu", threads: int = 1, workers: int = 1) -> None:
        require_ffmpeg()
        self.threads = threads  # ``workers`` is unused: torchcodec batches internally
        if device.startswith("cuda"):
            import torch

            if not torch.cuda.is_available():
                raise ConfigError(
                    f"device={device!r} was asked for but CUDA is not available; use device='cpu'"
                )
        elif device != "cpu":
            raise ConfigError(f"unknown device {device!r}; use 'cpu' or 'cuda'")
        self.device = device

    def decode(
        self,
        info: VideoInfo,
        times: Sequence[float],
        size: tuple[int, int],
        deadline: Deadline,
        stats: DecodeStats,
    ) -> list[np.ndarray]:
        if not is_remote(info.location):
            return self._decode(info.path, info, times, size, deadline)
        from vidra.video.sources import opened

        with opened(info.location, info.identity) as source:  # a read failure wins on exit
            return self._decode(source, info, times, size, deadline)

    def _decode(
        self,
        source: Any,
        info: VideoInfo,
        times: Sequence[float],
        size: tuple[int, int],
        deadline: Deadline,
    ) -> list[np.ndarray]:
        from torchcodec.decoders import VideoDecoder

        try:
            decoder = VideoDecoder(
                source,
                stream_index=info.stream_index,
                dimension_order="NCHW",
                device=self.device,
                seek_mode="approximate",
                num_ffmpeg_threads=self.threads,
            )
            eps = min(1e-3, 0.25 / max(info.fps, info.nominal_fps))
            end = (decoder.metadata.end_stream_seconds or info.duration) - eps
            out: list[np.ndarray] = []
            for start in range(0, len(times), _CHUNK):
                deadline.check()
                chunk = [min(end, info.start_time + t + eps) for t in times[start : start + _CHUNK]]
                out.extend(_to_numpy(decoder.get_frames_played_at(chunk).data, size))
        except (RuntimeError, ValueError) as exc:
            raise VideoUnreadable(info.path, f"torchcodec failed to decode ({exc})") from exc
        return out


def _to_numpy(data: Any, size: tuple[int, int]) -> list[np.ndarray]:
    """``[n, 3, h', w']`` uint8 tensor -> ``n`` ``[h, w, 3]`` arrays resized to ``size``."""
    import torch

    w, h = size
    if tuple(data.shape[-2:]) != (h, w):
        data = (
            torch.nn.functional.interpolate(
                data.float(), size=(h, w), mode="bilinear", antialias=True
            )
            .round()
            .clamp(0, 255)
            .to(torch.uint8)
        )
    return [np.ascontiguousarray(f) for f in data.permute(0, 2, 3, 1).cpu().numpy()]
