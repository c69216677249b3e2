"""The captioner: one moment of a video -> a short caption of what is in it, for the index.

Captions list each object as colour, shape and place (``red triangle top-left; blue square
bottom-right``), or ``nothing``; a reply that is not such a list is kept as cleaned text (the
index searches words, so a half-right caption still helps). Batched: one ``generate`` call
per batch of moments. Holds frames only for the call.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from vidra.agents.prompts import Prompt
from vidra.models.protocol import (
    ChatModel,
    ChatRequest,
    ImagePart,
    Message,
    SamplingParams,
    TextPart,
)
from vidra.video.storyboard import format_timestamp

__all__ = ["CAPTIONER", "caption_frames", "caption_request", "clean_caption"]

CAPTIONER = Prompt(
    "captioner/v2",
    (
        "You are the captioner. Below is the video at {time}. List every object you see as "
        "colour, shape and place (top-left, top-right, bottom-left, bottom-right), separated "
        "by ';', or say nothing."
    ),
)
_SPACE = re.compile(r"\s+")
_JUNK = re.compile(r"[^a-z0-9;:\- ]+")


def caption_request(
    frame: np.ndarray, t: float, sampling: SamplingParams, adapter: str | None = None
) -> ChatRequest:
    """The captioner's request for one moment: the frame ``[h, w, 3]`` uint8 at ``t`` s."""
    text = CAPTIONER.render(time=format_timestamp(t))
    # the frame last, right before the reply: its distance to the reply does not vary with
    # the time's length (vidra-tiny captioned late times, written longer, as "nothing")
    parts: list[TextPart | ImagePart] = [
        TextPart(f"{text}\nt={t:.1f}s "),
        ImagePart(frame, float(t)),
    ]
    return ChatRequest([Message("user", parts)], adapter=adapter, sampling=sampling)


def clean_caption(text: str, limit: int = 240) -> str:
    """Lower-case, one line, only words, ``;`` and ``-``; at most ``limit`` characters."""
    low = _JUNK.sub(" ", text.lower().replace("\n", "; "))
    parts = [_SPACE.sub(" ", p).strip(" -:") for p in low.split(";")]
    return "; ".join(p for p in parts if p)[:limit] or "nothing"


def caption_frames(
    model: ChatModel,
    frames: np.ndarray,
    times: Sequence[float],
    sampling: SamplingParams,
    adapter: str | None = "captioner",
) -> list[str]:
    """One caption per frame (``frames``: ``[n, h, w, 3]`` uint8, shown at ``times`` s), in
    one batched call, with the ``captioner`` adapter when the model has it."""
    use = adapter if adapter in (model.adapters or []) else None
    requests = [caption_request(f, t, sampling, use) for f, t in zip(frames, times, strict=True)]
    if not requests:
        return []
    return [clean_caption(c.text) for c in model.generate(requests)]
