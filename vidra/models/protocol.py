"""The `ChatModel` protocol every agent talks to, and its request/completion records.

A request is chat messages mixing text with frames (images, or a video with its real fps
and timestamps), an adapter name (one LoRA adapter per agent role) and sampling
parameters. A completion carries token ids and the logprob of each sampled token under
the sampling distribution actually used. Nothing here knows what a role means.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from vidra.errors import InvalidInput

__all__ = [
    "ChatInput",
    "ChatModel",
    "ChatRequest",
    "Completion",
    "ImagePart",
    "Message",
    "SamplingParams",
    "TextPart",
    "VideoPart",
    "chat_input",
    "sampling_params",
]


def _check_frames(frames: np.ndarray, what: str) -> np.ndarray:
    if not isinstance(frames, np.ndarray):
        raise InvalidInput(f"{what} must be a numpy array, got {type(frames).__name__}")
    if frames.dtype != np.uint8:
        raise InvalidInput(f"{what} must be uint8 RGB, got dtype {frames.dtype}")
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise InvalidInput(f"{what} must have shape [n, h, w, 3], got {frames.shape}")
    if frames.shape[0] == 0:
        raise InvalidInput(f"{what} holds no frames; select at least one frame")
    if min(frames.shape[1:3]) < 2:
        raise InvalidInput(f"{what} frames of {frames.shape[2]}x{frames.shape[1]} are too small")
    return frames


@dataclass(frozen=True)
class TextPart:
    text: str


@dataclass(frozen=True)
class ImagePart:
    """One frame shown as an image: ``[h, w, 3]`` uint8, with its timestamp if known."""

    image: np.ndarray
    time: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.image, np.ndarray):
            raise InvalidInput(f"image must be a numpy array, got {type(self.image).__name__}")
        _check_frames(self.image[None], "image")


@dataclass(frozen=True)
class VideoPart:
    """Frames shown as one video: ``[n, h, w, 3]`` uint8, their times (s), the source fps."""

    frames: np.ndarray
    times: Sequence[float]
    fps: float

    def __post_init__(self) -> None:
        _check_frames(self.frames, "video frames")
        if len(self.times) != self.frames.shape[0]:
            raise InvalidInput(f"{len(self.times)} times for {self.frames.shape[0]} video frames")
        if not self.fps > 0:
            raise InvalidInput(f"video fps must be positive, got {self.fps}")

    @property
    def sampled_fps(self) -> float:
        """Frames per second of the sampled frames (what the model's time axis uses)."""
        if len(self.times) < 2:
            return self.fps
        span = float(self.times[-1]) - float(self.times[0])
        return (len(self.times) - 1) / span if span > 0 else self.fps


Part = TextPart | ImagePart | VideoPart


@dataclass(frozen=True)
class Message:
    role: Literal["system", "user", "assistant"]
    content: str | Sequence[Part]


class SamplingParams(BaseModel):
    """How to sample. ``temperature=0`` is greedy."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    temperature: float = Field(0.0, ge=0.0, le=10.0, allow_inf_nan=False)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    max_tokens: int = Field(256, ge=1, le=32768)
    n: int = Field(1, ge=1, le=64)
    seed: int | None = Field(None, ge=0)
    stop: list[str] = Field(default_factory=list, max_length=16)
    # The completion begins with one of these (e.g. '{"answer": "red circle'), chosen by the
    # model's likelihood of the whole prefix (argmax when greedy, sampled at ``temperature``
    # otherwise) and continued freely. Multiple-choice answers without format failures.
    prefixes: list[str] = Field(default_factory=list, max_length=64)
    # When sampling, the prefixes' total logprobs are divided by this before their softmax:
    # > 1 tries rarely chosen prefixes more often (exploration in rollouts), 1 samples them
    # as the model would; greedy picks are unaffected. The hf backend's prefix pick only.
    prefix_temperature: float = Field(1.0, gt=0.0, le=100.0, allow_inf_nan=False)


def sampling_params(**kwargs: object) -> SamplingParams:
    """`SamplingParams` with a `VidraError` naming the bad field instead of pydantic's error."""
    try:
        return SamplingParams.model_validate(kwargs)
    except ValidationError as exc:
        bad = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise InvalidInput(f"invalid sampling parameters: {bad}") from exc


@dataclass(frozen=True)
class ChatRequest:
    messages: Sequence[Message]
    adapter: str | None = None  # a role's LoRA adapter; None: the base model
    sampling: SamplingParams = field(default_factory=SamplingParams)


@dataclass(frozen=True)
class Completion:
    """One sampled completion of one request."""

    text: str
    token_ids: list[int]
    logprobs: list[float]  # of each sampled token under the sampling distribution used
    finish_reason: Literal["stop", "length"]
    prompt_tokens: int
    completion_tokens: int
    latency_s: float
    adapter: str | None
    adapter_version: str | None
    request_index: int = 0
    sample_index: int = 0


@dataclass
class ChatInput:
    """A request's messages split the way chat templates want them: text-only chat turns
    with image/video placeholders, plus the images and videos in placeholder order."""

    chat: list[dict[str, object]]
    images: list[np.ndarray]
    videos: list[VideoPart]
    frames: int


def chat_input(messages: Sequence[Message], max_frames: int) -> ChatInput:
    """Split ``messages`` for a chat template; `InvalidInput` over ``max_frames`` frames."""
    out = ChatInput([], [], [], 0)
    for msg in messages:
        if isinstance(msg.content, str):
            out.chat.append({"role": msg.role, "content": msg.content})
            continue
        parts: list[dict[str, str]] = []
        for part in msg.content:
            if isinstance(part, TextPart):
                parts.append({"type": "text", "text": part.text})
            elif isinstance(part, ImagePart):
                parts.append({"type": "image"})
                out.images.append(part.image)
                out.frames += 1
            elif isinstance(part, VideoPart):
                parts.append({"type": "video"})
                out.videos.append(part)
                out.frames += len(part.times)
            else:
                raise InvalidInput(f"unknown message part {type(part).__name__}")
        out.chat.append({"role": msg.role, "content": parts})
    if out.frames > max_frames:
        raise InvalidInput(
            f"a request carries {out.frames} frames, over max_frames={max_frames}; "
            "select fewer frames or raise max_frames"
        )
    return out


class ChatModel(Protocol):
    """A vision-language chat model with per-role adapters."""

    name: str

    @property
    def adapters(self) -> list[str]:
        """Names of the loaded adapters (requests name one, or None for the base model)."""
        ...

    def generate(self, requests: Sequence[ChatRequest]) -> list[Completion]:
        """``n`` completions per request, request by request (flat, in order)."""
        ...

    def score(
        self, requests: Sequence[ChatRequest], completions: Sequence[Completion]
    ) -> list[list[float]]:
        """Teacher-forced logprobs of each completion's tokens given its request."""
        ...
