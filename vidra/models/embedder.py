"""An aligned image-text encoder (CLIP, SigLIP, ... through transformers) for the video index's
optional vector search: each clip's captioned frame and each search phrase become unit vectors
in one space, so a clip can be found by what it looks like when its caption misses the words.

Configured by ``index.embedder`` (a local checkpoint directory or a hub id); vidra-tiny does
not need one. Loading is transformers' own ``from_pretrained`` of the model, its image
processor and its tokenizer.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vidra.errors import ConfigError

__all__ = ["ImageTextEmbedder", "embedder_id"]


def embedder_id(path: str) -> str:
    """A short, stable id of a checkpoint for the store (at most 64 characters): its name and
    a hash of its path and, for a local directory, its weight files' names and sizes, so a
    checkpoint replaced in place gets fresh embeddings."""
    p = Path(path)
    sig = [str(path)]
    if p.is_dir():
        sig += [
            f"{f.name}:{f.stat().st_size}"
            for f in sorted(p.iterdir())
            if f.suffix in {".safetensors", ".bin"}
        ]
    digest = hashlib.sha1("\n".join(sig).encode()).hexdigest()[:12]
    return f"{p.name[:40]}-{digest}"


def _features(out: Any) -> Any:
    """transformers 4 returns the projected features as a tensor, 5 as ``pooler_output``."""
    import torch

    return out if isinstance(out, torch.Tensor) else out.pooler_output


class ImageTextEmbedder:
    """Unit-length image and text embeddings from one image-text checkpoint, on the CPU or
    a GPU.

    Raises:
        ConfigError: the checkpoint cannot be loaded or is not an image-text encoder.
    """

    def __init__(self, path: str, device: str = "cpu", batch: int = 32) -> None:
        import torch
        from transformers import AutoImageProcessor, AutoModel, AutoTokenizer

        try:
            model = AutoModel.from_pretrained(path)
            self.image_processor = AutoImageProcessor.from_pretrained(path)
            self.tokenizer = AutoTokenizer.from_pretrained(path)
        except (OSError, ValueError) as exc:
            raise ConfigError(
                f"index.embedder {path!r} could not be loaded ({str(exc).splitlines()[0]}); "
                "set it to a CLIP or SigLIP checkpoint (local directory or hub id), or unset it"
            ) from exc
        if not (hasattr(model, "get_image_features") and hasattr(model, "get_text_features")):
            raise ConfigError(
                f"index.embedder {path!r} is a {type(model).__name__}, not an image-text "
                "encoder; set it to a CLIP or SigLIP checkpoint, or unset it"
            )
        self.model = model.to(device).eval()
        self.device = device
        self.batch = batch
        self.id = embedder_id(path)
        # SigLIP's text tower was trained on fixed-length, padded input
        self._padding = "max_length" if "siglip" in model.config.model_type else True
        self._torch = torch

    def embed_images(self, frames: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
        """``[n, h, w, 3]`` uint8 frames -> ``[n, d]`` float32 unit vectors."""
        out = []
        for i in range(0, len(frames), self.batch):
            chunk = [np.asarray(f) for f in frames[i : i + self.batch]]
            px = self.image_processor(images=chunk, return_tensors="pt")["pixel_values"]
            with self._torch.inference_mode():
                feats = _features(self.model.get_image_features(pixel_values=px.to(self.device)))
            out.append(feats.float().cpu().numpy())
        return _unit(np.concatenate(out) if out else np.zeros((0, 0), np.float32))

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Texts -> ``[n, d]`` float32 unit vectors."""
        if not texts:
            return np.zeros((0, 0), np.float32)
        enc = self.tokenizer(
            list(texts), padding=self._padding, truncation=True, return_tensors="pt"
        )
        keep = ("input_ids", "attention_mask")
        args = {k: v.to(self.device) for k, v in enc.items() if k in keep}
        with self._torch.inference_mode():
            feats = _features(self.model.get_text_features(**args))
        return _unit(feats.float().cpu().numpy())


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    if x.size == 0:
        return x
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
