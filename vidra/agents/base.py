"""One agent call: build the request, generate, parse tolerantly, repair once, else fall back.

Every model call (the first try and the repair) yields an `AgentStep` dict ready for the
store; ``parse_ok`` is False for a step whose output was unusable.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from vidra.models.protocol import (
    ChatModel,
    ChatRequest,
    Completion,
    ImagePart,
    Message,
    SamplingParams,
    TextPart,
    VideoPart,
)

__all__ = ["AgentResult", "call_agent", "prompt_layout", "render_prompt"]

log = logging.getLogger(__name__)
T = TypeVar("T", bound=BaseModel)


@dataclass(frozen=True)
class AgentResult(Generic[T]):
    """What an agent decided, the steps that led there, and whether it fell back."""

    value: T
    steps: list[dict[str, Any]] = field(default_factory=list)
    fallback: bool = False
    samples: list[T] = field(default_factory=list)  # every parsed sample (self-consistency)


def render_prompt(messages: Sequence[Message]) -> str:
    """The prompt as text for the record: frames appear as ``<image t=12.5s>`` placeholders."""
    lines = []
    for msg in messages:
        if isinstance(msg.content, str):
            body = msg.content
        else:
            chunks = []
            for part in msg.content:
                if isinstance(part, TextPart):
                    chunks.append(part.text)
                elif isinstance(part, ImagePart):
                    chunks.append(
                        f"<image t={part.time:.2f}s>" if part.time is not None else "<image>"
                    )
                elif isinstance(part, VideoPart):
                    chunks.append(f"<video {len(part.times)} frames>")
            body = "".join(chunks)
        lines.append(f"[{msg.role}] {body}")
    return "\n".join(lines)


def prompt_layout(messages: Sequence[Message]) -> list[dict[str, Any]]:
    """The prompt's structure with frames as slots into the step's frame list (in order)."""
    out: list[dict[str, Any]] = []
    slot = 0
    for msg in messages:
        if isinstance(msg.content, str):
            out.append({"role": msg.role, "content": msg.content})
            continue
        parts: list[dict[str, Any]] = []
        for part in msg.content:
            if isinstance(part, TextPart):
                parts.append({"type": "text", "text": part.text})
            elif isinstance(part, ImagePart):
                parts.append({"type": "image", "frame": slot, "time": part.time})
                slot += 1
            elif isinstance(part, VideoPart):
                n = len(part.times)
                parts.append(
                    {
                        "type": "video",
                        "frames": list(range(slot, slot + n)),
                        "times": [float(t) for t in part.times],
                        "fps": part.fps,
                    }
                )
                slot += n
        out.append({"role": msg.role, "content": parts})
    return out


def _step(
    role: str,
    messages: Sequence[Message],
    comp: Completion,
    frames: Sequence[tuple[str, int]],
    parsed: BaseModel | None,
) -> dict[str, Any]:
    return {
        "role": role,
        "adapter_version": comp.adapter_version,
        "prompt": render_prompt(messages),
        "frames": [list(f) for f in frames],
        "messages": prompt_layout(messages),
        "completion": comp.text,
        "token_ids": list(comp.token_ids),
        "logprobs": list(comp.logprobs),
        "parsed": parsed.model_dump(mode="json") if parsed is not None else None,
        "parse_ok": parsed is not None,
        "latency_s": comp.latency_s,
        "prompt_tokens": comp.prompt_tokens,
        "completion_tokens": comp.completion_tokens,
    }


def _adapter(model: ChatModel, role: str) -> str | None:
    return role if role in (getattr(model, "adapters", None) or []) else None


def call_agent(
    model: ChatModel,
    role: str,
    messages: list[Message],
    parse: Callable[[str], T],
    fallback: Callable[[], T],
    sampling: SamplingParams,
    frames: Sequence[tuple[str, int]] = (),
    hint: str = "Reply with one JSON object only.",
) -> AgentResult[T]:
    """Ask ``model`` as ``role``; parse each of the ``n`` samples; repair once; else fall back.

    ``parse`` raises ``ValueError`` (message shown to the model in the repair turn) when the
    text is unusable. With ``sampling.n > 1`` the first parsed sample is the value and all
    parsed samples are returned for voting.
    """
    adapter = _adapter(model, role)
    comps = model.generate([ChatRequest(messages, adapter=adapter, sampling=sampling)])
    steps, parsed, error = [], [], ""
    for comp in comps:
        try:
            value = parse(comp.text)
        except ValueError as exc:
            error = str(exc)
            steps.append(_step(role, messages, comp, frames, None))
            continue
        parsed.append(value)
        steps.append(_step(role, messages, comp, frames, value))
    if parsed:
        return AgentResult(parsed[0], steps, False, parsed)
    repair = [
        *messages,
        Message("assistant", comps[0].text[:2000]),
        Message("user", f"That reply could not be used ({error[:200]}). {hint}"),
    ]
    comp = model.generate(
        [ChatRequest(repair, adapter=adapter, sampling=sampling.model_copy(update={"n": 1}))]
    )[0]
    try:
        value = parse(comp.text)
    except ValueError as exc:
        log.info("%s: output unusable after repair (%s); falling back", role, exc)
        steps.append(_step(role, repair, comp, frames, None))
        value = fallback()
        return AgentResult(value, steps, True, [])
    steps.append(_step(role, repair, comp, frames, value))
    return AgentResult(value, steps, False, [value])
