"""What every agent call needs to know about the video, without holding its frames."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["VideoFacts"]


@dataclass(frozen=True)
class VideoFacts:
    """A video as agents see it; frames are fetched by index through the reader."""

    video_id: str
    path: str
    duration: float
    fps: float
    frame_count: int

    def time_of(self, index: int) -> float:
        return index / self.fps

    def index_at(self, seconds: float) -> int:
        return max(0, min(self.frame_count - 1, int(seconds * self.fps + 1e-6)))
