"""Rebuild the exact request behind a recorded step: its prompt layout (``step.messages``)
with the frames it referred to, decoded again by ``(video, index)`` through the cache.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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

__all__ = ["batch_step_frames", "replay_request", "step_frames"]


def step_frames(
    refs: Sequence[tuple[str, int]], reader: Any, paths: Mapping[str, str], size: int
) -> np.ndarray:
    """Frames ``[n, h, w, 3]`` uint8 for ``(video id, index)`` refs, in ref order (decoded
    with one call per video)."""
    if not refs:
        return np.zeros((0, 1, 1, 3), np.uint8)
    out: list[np.ndarray | None] = [None] * len(refs)
    by_video: dict[str, list[int]] = {}
    for k, (video, _) in enumerate(refs):
        by_video.setdefault(video, []).append(k)
    for video, slots in by_video.items():
        if video not in paths:
            raise InvalidInput(f"a step refers to video {video!r}, which has no path")
        decoded = reader.frames(paths[video], [refs[k][1] for k in slots], size=size)
        for k, frame in zip(slots, decoded, strict=True):
            out[k] = frame
    return np.stack([f for f in out if f is not None])


def batch_step_frames(
    ref_lists: Sequence[Sequence[tuple[str, int]]],
    reader: Any,
    paths: Mapping[str, str],
    size: int,
) -> list[np.ndarray]:
    """`step_frames` for many steps at once: each distinct frame decoded once (the G rollouts
    of a group share theirs), one sparse decode call per video."""
    distinct = list(dict.fromkeys(r for refs in ref_lists for r in refs))
    if not distinct:
        return [step_frames([], reader, paths, size) for _ in ref_lists]
    decoded = step_frames(distinct, reader, paths, size)
    at = {r: k for k, r in enumerate(distinct)}
    return [
        decoded[[at[r] for r in refs]] if refs else step_frames([], reader, paths, size)
        for refs in ref_lists
    ]


def replay_request(
    layout: Sequence[dict[str, Any]] | None,
    frames: np.ndarray,
    adapter: str | None,
    sampling: SamplingParams,
) -> ChatRequest:
    """The `ChatRequest` a step was sampled from: its prompt layout (``step.messages``) with
    ``frames`` from `step_frames` in its frame slots."""
    if not layout:
        raise InvalidInput(
            "the step has no prompt layout (recorded before replay support); "
            "it cannot be used for training"
        )
    messages = []
    for msg in layout:
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
