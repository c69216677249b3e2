"""Per-role LoRA adapters on one shared base model (peft): create, save, load, switch.

Each role gets its own adapter; ``train_norm`` also makes the final norm trainable per
adapter (``modules_to_save``), which a randomly initialised model needs to learn at all.
An adapter's version is a short hash of its weights, recorded on every completion.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vidra.errors import BackendUnavailable, ConfigError, NotFound

__all__ = [
    "LORA_TARGETS",
    "LoraSpec",
    "adapter_file_version",
    "adapter_version",
    "attach_adapter",
    "load_adapter",
    "save_adapter",
    "touches_vision",
]

log = logging.getLogger(__name__)

# the language model's projections only; the vision tower stays shared and frozen
TEXT_TARGETS = r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)"
# the vision tower's projections (Qwen2.5-VL: each block's attention and MLP) and the merger
# that maps patches into the language model: what a role sees, not only what it makes of it
VISION_TARGETS = (
    r".*visual\.blocks\.\d+\.(attn\.qkv|attn\.proj|mlp\.gate_proj|mlp\.up_proj|mlp\.down_proj)"
    r"|.*visual\.merger\.mlp\.(0|2)"  # the merger's two linears (1 is its GELU)
)
# `train.lora_targets`: which modules a new adapter adapts
LORA_TARGETS = {"text": TEXT_TARGETS, "text+vision": f"{TEXT_TARGETS}|{VISION_TARGETS}"}


@dataclass(frozen=True)
class LoraSpec:
    """A LoRA adapter's shape."""

    rank: int = 8
    alpha: int = 16
    dropout: float = 0.0
    target_modules: str | list[str] = TEXT_TARGETS
    train_norm: bool = False
    extra_modules: list[str] = field(default_factory=list)

    def to_peft(self) -> Any:
        try:
            from peft import LoraConfig
        except ImportError as exc:  # pragma: no cover - peft is a core dependency
            raise BackendUnavailable("peft", "train", str(exc)) from exc
        if self.rank <= 0:
            raise ConfigError(f"LoRA rank must be positive, got {self.rank}")
        save = [*self.extra_modules, *(["language_model.norm"] if self.train_norm else [])]
        return LoraConfig(
            r=self.rank,
            lora_alpha=self.alpha,
            lora_dropout=self.dropout,
            target_modules=self.target_modules,
            modules_to_save=save or None,
            bias="none",
        )


def touches_vision(config: Any) -> bool:
    """Whether an adapter (its peft config, or a saved ``adapter_config.json`` as a dict)
    adapts the vision tower: its rows cannot share a batch with other adapters' (the tower
    runs over all frames' patches at once), and vLLM serves it only with tower LoRA on."""
    targets = config.get("target_modules") if isinstance(config, dict) else getattr(
        config, "target_modules", None
    )  # fmt: skip
    if isinstance(targets, str):
        return "visual" in targets
    return any("visual" in str(t) for t in targets or ())


def attach_adapter(model: Any, name: str, spec: LoraSpec | None = None) -> Any:
    """Add a fresh adapter ``name`` to ``model`` (wrapping it in a PeftModel the first time)."""
    from peft import PeftModel, get_peft_model

    config = (spec or LoraSpec()).to_peft()
    if isinstance(model, PeftModel):
        if name in model.peft_config:
            raise ConfigError(f"adapter {name!r} already exists; load or replace it explicitly")
        model.add_adapter(name, config)
        return model
    return get_peft_model(model, config, adapter_name=name)


def load_adapter(model: Any, name: str, path: str | Path) -> Any:
    """Load the adapter saved at ``path`` under ``name``.

    Raises:
        NotFound: ``path`` holds no adapter (no ``adapter_config.json``).
    """
    from peft import PeftModel

    p = Path(path)
    if not (p / "adapter_config.json").is_file():
        raise NotFound(f"no LoRA adapter at {p} (adapter_config.json missing); check the path")
    if isinstance(model, PeftModel):
        model.load_adapter(str(p), adapter_name=name)
        return model
    return PeftModel.from_pretrained(model, str(p), adapter_name=name, is_trainable=False)


def save_adapter(model: Any, name: str, path: str | Path) -> Path:
    """Save adapter ``name`` alone to ``path`` (safetensors)."""
    p = Path(path)
    p.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(p), selected_adapters=[name], safe_serialization=True)
    # peft writes non-default adapters into a sub-folder; flatten so `load_adapter(path)` works
    nested = p / name
    if nested.is_dir():
        for f in nested.iterdir():
            f.replace(p / f.name)
        nested.rmdir()
    return p


def adapter_version(model: Any, name: str) -> str:
    """``name@<12 hex>``: a hash of the adapter's current weights (changes when it trains)."""
    from peft import get_peft_model_state_dict

    state = get_peft_model_state_dict(model, adapter_name=name)
    h = hashlib.sha1()
    for key in sorted(state):
        h.update(key.encode())
        h.update(state[key].detach().float().cpu().numpy().tobytes())
    return f"{name}@{h.hexdigest()[:12]}"


def adapter_file_version(path: str | Path, name: str) -> str:
    """The `adapter_version` a saved adapter directory will have once loaded as ``name``
    (the same hash over the same tensors, read from ``adapter_model.safetensors``)."""
    from safetensors.torch import load_file

    state = load_file(str(Path(path) / "adapter_model.safetensors"))
    h = hashlib.sha1()
    for key in sorted(state):
        h.update(key.encode())
        h.update(state[key].detach().float().cpu().numpy().tobytes())
    return f"{name}@{h.hexdigest()[:12]}"
