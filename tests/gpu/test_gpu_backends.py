"""On a GPU: the hf backend on CUDA, vLLM with the tiny model and two adapters, NVDEC decoding.

vLLM and torchcodec are optional extras: their tests are skipped where they are not installed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from vidra.models import ChatRequest, ImagePart, Message, SamplingParams, TextPart
from vidra.models.adapters import LoraSpec, save_adapter
from vidra.models.hf import HFChatModel

IMG = np.random.default_rng(0).integers(0, 255, (90, 160, 3), dtype=np.uint8)


def _req(adapter: str | None = None, **s: object) -> ChatRequest:
    return ChatRequest(
        [Message("user", [ImagePart(IMG), TextPart("What colour?")])],
        adapter=adapter,
        sampling=SamplingParams(max_tokens=12, **s),
    )


@pytest.fixture(scope="module")
def adapters(tiny_model_path: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    pytest.importorskip("vllm")  # only the vLLM test needs them
    m = HFChatModel(tiny_model_path)
    out = {}
    for k, role in enumerate(("planner", "reasoner")):
        m.add_adapter(role, LoraSpec(rank=8))
        torch.manual_seed(k)
        with torch.no_grad():
            for name, p in m.model.named_parameters():
                if "lora_B" in name and f".{role}" in name:
                    p.normal_(0, 0.5)
        out[role] = save_adapter(m.model, role, tmp_path_factory.mktemp("adapters") / role)
    return out


def test_hf_on_cuda_generate_matches_score(tiny_model_path: Path) -> None:
    m = HFChatModel(tiny_model_path, device="cuda")
    reqs = [_req(temperature=1.0, seed=3), _req()]
    comps = m.generate(reqs)
    for c, s in zip(comps, m.score(reqs, comps), strict=True):
        assert np.max(np.abs(np.array(c.logprobs) - np.array(s))) < 1e-3


def test_vllm_serves_two_adapters(tiny_model_path: Path, adapters: dict[str, Path]) -> None:
    pytest.importorskip("vllm")
    from vidra.models.vllm_backend import VLLMChatModel

    m = VLLMChatModel(
        tiny_model_path,
        adapters={k: str(v) for k, v in adapters.items()},
        max_lora_rank=8,
        gpu_memory_utilization=0.3,
        max_model_len=4096,
    )
    outs = m.generate([_req(), _req("planner"), _req("reasoner")])
    assert len(outs) == 3 and all(o.token_ids for o in outs)
    assert outs[1].token_ids != outs[2].token_ids
    hf = HFChatModel(tiny_model_path, device="cuda", adapters=adapters)
    ref = hf.generate([_req("reasoner")])[0]
    assert outs[2].token_ids[:4] == ref.token_ids[:4]  # greedy: the same model says the same
    scored = m.score([_req("reasoner")], [outs[2]])[0]
    assert np.allclose(scored, outs[2].logprobs, atol=5e-2)


def test_vllm_serves_an_adapter_on_the_vision_tower(tiny_model_path: Path, tmp_path: Path) -> None:
    """An adapter trained with ``lora_targets=text+vision`` is served with vLLM's tower LoRA
    and says what the hf backend says with it (or, where this vLLM has no tower LoRA, the
    backend refuses it in one line)."""
    pytest.importorskip("vllm")
    from vidra.errors import BackendUnavailable
    from vidra.models.adapters import LORA_TARGETS
    from vidra.models.vllm_backend import VLLMChatModel

    m = HFChatModel(tiny_model_path)
    m.add_adapter("reasoner", LoraSpec(rank=8, target_modules=LORA_TARGETS["text+vision"]))
    torch.manual_seed(2)
    with torch.no_grad():
        for name, p in m.model.named_parameters():
            if "lora_B" in name and "visual" in name:
                p.normal_(0, 0.5)
    path = save_adapter(m.model, "reasoner", tmp_path / "reasoner")
    try:
        v = VLLMChatModel(tiny_model_path, adapters={"reasoner": str(path)}, max_lora_rank=8,
                          gpu_memory_utilization=0.3, max_model_len=4096)  # fmt: skip
    except BackendUnavailable as exc:
        assert "tower" in str(exc) and "\n" not in str(exc)
        pytest.skip(f"this vLLM has no tower LoRA: {exc}")
    out = v.generate([_req("reasoner")])[0]
    ref = HFChatModel(tiny_model_path, device="cuda", adapters={"reasoner": path})
    assert out.token_ids[:4] == ref.generate([_req("reasoner")])[0].token_ids[:4]


def test_vllm_prefixes_constrain_the_reply(tiny_model_path: Path) -> None:
    """Guided decoding: every sampled reply of the untrained model begins with a prefix."""
    pytest.importorskip("vllm")
    from vidra.models.vllm_backend import VLLMChatModel

    m = VLLMChatModel(tiny_model_path, gpu_memory_utilization=0.3, max_model_len=4096)
    prefixes = ['{"answer": "red circle', '{"answer": "blue square']
    outs = m.generate([_req(prefixes=prefixes, temperature=1.0, n=8, seed=1)])
    assert len(outs) == 8 and all(any(o.text.startswith(p) for p in prefixes) for o in outs)


def test_cuda_decoding_matches_cpu(tmp_path: Path) -> None:
    pytest.importorskip("torchcodec")
    from vidra.video import get_decoder
    from vidra.video.synthetic import read_counter, write_counter_video

    path = tmp_path / "c.mp4"
    bits = write_counter_video(path, 120, width=256, height=144, gop=30)
    gpu = get_decoder("torchcodec", device="cuda")
    frames = gpu.frames(path, [5, 60, 119])
    assert [read_counter(f, bits) for f in frames] == [5, 60, 119]
