"""A small H.264 (or other codec) writer on PyAV for generated videos.

Used by the synthetic world, calibration patterns and benchmarks; it writes files,
it never reads them.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import Any, cast

import numpy as np

__all__ = ["VideoWriter"]


class VideoWriter:
    """Encode RGB frames to a video file.

    Args:
        path: output file; the container follows the suffix (``.mp4``, ``.mkv``, ...).
        fps: frame rate (frames without explicit ``pts`` are spaced ``1/fps`` apart).
        width, height: frame size in pixels.
        codec: FFmpeg encoder name.
        gop: keyframe interval in frames (``None``: the encoder's default; ``0``: one keyframe).
        pix_fmt: encoder pixel format.
        rotation: display rotation in degrees counter-clockwise stored in the container.
        container_options: muxer options (e.g. ``{"live": "1"}`` for Matroska without cues).
        time_base: stream time base (for variable-frame-rate files with explicit ``pts``).
    """

    def __init__(
        self,
        path: str | Path,
        *,
        fps: float,
        width: int,
        height: int,
        codec: str = "libx264",
        gop: int | None = None,
        pix_fmt: str = "yuv420p",
        rotation: int = 0,
        crf: int = 23,
        preset: str = "ultrafast",
        container_options: dict[str, str] | None = None,
        time_base: Fraction | None = None,
    ) -> None:
        import av

        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.container: Any = av.open(str(self.path), mode="w", options=container_options or {})
        rate = Fraction(fps).limit_denominator(1001)
        options: dict[str, str] = {}
        if codec.startswith("libx264"):
            options = {"preset": preset, "crf": str(crf), "tune": "zerolatency"}
            if gop is not None:
                key = 10**7 if gop == 0 else gop
                options["x264-params"] = f"keyint={key}:min-keyint={key}:scenecut=0"
        self.stream: Any = cast(Any, self.container.add_stream(codec, rate=rate, options=options))
        self.stream.width, self.stream.height = width, height
        self.stream.pix_fmt = pix_fmt
        if gop is not None and not codec.startswith("libx264"):
            self.stream.codec_context.gop_size = max(1, gop or 10**7)
        if time_base is not None:
            self.stream.codec_context.time_base = time_base
            self.stream.time_base = time_base
        if rotation:
            self.stream.set_display_rotation(rotation)
        self.frames_written = 0

    def frame(self, rgb: np.ndarray) -> Any:
        """Turn an ``[h, w, 3]`` uint8 image into an encoder-ready frame (reusable)."""
        import av

        return av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24").reformat(
            format=self.stream.pix_fmt
        )

    def write(self, image: np.ndarray | Any, pts: int | None = None) -> None:
        """Encode one frame: an ``[h, w, 3]`` uint8 array or a frame from `frame`."""
        frame = self.frame(image) if isinstance(image, np.ndarray) else image
        frame.pts = self.frames_written if pts is None else pts
        if pts is not None:
            frame.time_base = self.stream.codec_context.time_base
        for packet in self.stream.encode(frame):
            self.container.mux(packet)
        self.frames_written += 1

    def close(self) -> None:
        for packet in self.stream.encode():
            self.container.mux(packet)
        self.container.close()

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
