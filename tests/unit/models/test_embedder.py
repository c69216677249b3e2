"""The index's optional image-text encoder, loaded with transformers' ``from_pretrained`` from
a tiny CLIP checkpoint built here: unit vectors, deterministic, frames told apart, and a
one-line error for a checkpoint that cannot be loaded."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from tests.tiny_clip import build_tiny_clip
from vidra.errors import ConfigError
from vidra.models.embedder import ImageTextEmbedder, embedder_id

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_clip(tmp_path_factory.mktemp("clip") / "tiny-clip")


def test_images_and_texts_become_unit_vectors_in_one_space(clip_dir: Path) -> None:
    emb = ImageTextEmbedder(str(clip_dir), batch=2)
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, size=(5, 90, 160, 3), dtype=np.uint8)
    frames[3] = frames[0]
    v = emb.embed_images(frames)  # 3 batches of at most 2
    assert v.shape == (5, 16) and v.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(v[3], v[0], atol=1e-6)  # same frame, same vector
    assert float(v[1] @ v[2]) < 0.9999  # different frames, different vectors
    np.testing.assert_allclose(emb.embed_images(frames[:1])[0], v[0], atol=1e-5)
    t = emb.embed_texts(["red circle", "blue square top left", "red circle"])
    assert t.shape == (3, 16)
    np.testing.assert_allclose(np.linalg.norm(t, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(t[2], t[0], atol=1e-6)
    assert float(t[0] @ t[1]) < 0.9999
    assert emb.embed_texts([]).shape[0] == 0


def test_the_store_id_changes_with_the_weights(tmp_path: Path) -> None:
    ckpt = build_tiny_clip(tmp_path / "tiny-clip")
    a = embedder_id(str(ckpt))
    assert a == embedder_id(str(ckpt)) and len(a) <= 64 and a.startswith("tiny-clip-")
    (ckpt / "pytorch_model.bin").write_bytes(b"x")  # replaced in place: other weight files
    assert embedder_id(str(ckpt)) != a
    assert embedder_id("org/some-clip") != embedder_id("org/other-clip")  # hub ids


def test_a_checkpoint_that_cannot_load_is_a_one_line_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"index.embedder .*could not be loaded.*CLIP or SigLIP"):
        ImageTextEmbedder(str(tmp_path / "missing"))
