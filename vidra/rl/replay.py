"""Rebuild the exact request behind a recorded step: its prompt layout (``step.messages``)
with the frames it referred to, decoded again by ``(video, index)`` through the cache.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from vidra.errors import InvalidInput
from vidra.models.protocol import (
    ChatRequest,
    ImagePart,
    Message,
    SamplingParams,
    TextPart,
    VideoPart,
)
from vidra.storage import StepRecord

__all__ = ["replay_request", "step_frames"]


def step_frames(step: StepRecord, reader: Any, paths: Mapping[str, str], size: int) -> np.ndarray:
    """The step's frames ``[n, h, w, 3]`` uint8 in reference order (decoded once per video)."""
    if not step.frames:
        return np.zeros((0, 1, 1, 3), np.uint8)
    out: list[np.ndarray | None] = [None] * len(step.frames)
    by_video: dict[str, list[int]] = {}
    for k, (video, _) in enumerate(step.frames):
        by_video.setdefault(video, []).append(k)
    for video, slots in by_video.items():
        if video not in paths:
            raise InvalidInput(f"step {step.id} refers to video {video!r}, which has no path")
        decoded = reader.frames(paths[video], [step.frames[k][1] for k in slots], size=size)
        for k, frame in zip(slots, decoded, strict=True):
            out[k] = frame
    return np.stack([f for f in out if f is not None])


def replay_request(
    step: StepRecord, frames: np.ndarray, adapter: str | None, sampling: SamplingParams
) -> ChatRequest:
    """The `ChatRequest` the step was sampled from (``frames`` from `step_frames`)."""
    if not step.messages:
        raise InvalidInput(
            f"step {step.id} has no prompt layout (recorded before replay "
            "support); it cannot be used for training"
        )
    messages = []
    for msg in step.messages:
        content = msg["content"]
        if isinstance(content, str):
            messages.append(Message(msg["role"], content))
            continue
        parts: list[Any] = []
        for part in content:
            if part["type"] == "text":
                parts.append(TextPart(part["text"]))
            elif part["type"] == "image":
                parts.append(ImagePart(frames[part["frame"]], part.get("time")))
            elif part["type"] == "video":
                parts.append(VideoPart(frames[part["frames"]], part["times"], part["fps"]))
        messages.append(Message(msg["role"], parts))
    return ChatRequest(messages, adapter=adapter, sampling=sampling)
