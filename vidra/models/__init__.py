"""Models: the `ChatModel` protocol and its backends by short name (``hf``, ``vllm``,
``scripted``), per-role LoRA adapters, and the offline tiny Qwen2.5-VL builder.

Knows nothing about prompts or what roles mean. Backends import lazily: vLLM is imported
only when ``backend="vllm"`` is asked for.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from vidra.errors import BackendUnavailable, ConfigError, NotFound
from vidra.models.protocol import (
    ChatModel,
    ChatRequest,
    Completion,
    ImagePart,
    Message,
    SamplingParams,
    TextPart,
    VideoPart,
    sampling_params,
)

__all__ = [
    "PACKAGED_MODELS",
    "ChatModel",
    "ChatRequest",
    "Completion",
    "ImagePart",
    "Message",
    "SamplingParams",
    "TextPart",
    "VideoPart",
    "load_chat_model",
    "resolve_model_path",
    "sampling_params",
]

_BACKENDS = {
    "hf": ("vidra.models.hf:HFChatModel", "transformers", "hf"),
    "vllm": ("vidra.models.vllm_backend:VLLMChatModel", "vllm", "gpu"),
}
PACKAGED_MODELS = Path(__file__).parent / "weights"  # built-in models, by name


def resolve_model_path(name: str) -> str:
    """A packaged model's directory for a built-in name (``vidra-tiny``), else ``name`` itself."""
    if name == "vidra-tiny":
        path = PACKAGED_MODELS / name
        if not (path / "config.json").is_file():
            raise NotFound(
                "the built-in model 'vidra-tiny' is not in this installation; build a tiny "
                "model with `vidra model build-tiny PATH` and set VIDRA_MODEL__PATH=PATH"
            )
        return str(path)
    return name


def load_chat_model(settings: Any = None, **overrides: Any) -> ChatModel:
    """The chat model described by ``settings.model`` (defaults from the environment).

    Raises:
        ConfigError: an unknown backend (``scripted`` is built in code, not from settings).
        BackendUnavailable: the backend's package is not installed.
    """
    from vidra.config import load_settings

    s = (settings or load_settings()).model
    backend = overrides.pop("backend", s.backend)
    if backend not in _BACKENDS:
        raise ConfigError(
            f"model backend {backend!r} cannot be loaded from settings; use one of "
            f"{sorted(_BACKENDS)} (the scripted backend is constructed directly in tests)"
        )
    target, package, extra = _BACKENDS[backend]
    try:
        importlib.import_module(package)
    except ImportError as exc:
        raise BackendUnavailable(backend, extra, str(exc)) from exc
    module, cls = target.split(":")
    model_cls = getattr(importlib.import_module(module), cls)
    kwargs: dict[str, Any] = {
        "adapters": dict(overrides.pop("adapters", None) or s.adapters),
        "max_frames": s.max_frames,
        "trust_remote_code": s.trust_remote_code,
    }
    if backend == "hf":
        kwargs.update(device=s.device, dtype=s.dtype, max_pixels=s.max_pixels)
    path = resolve_model_path(overrides.pop("path", s.path))
    kwargs.update(overrides)
    model: ChatModel = model_cls(path, **kwargs)
    return model
