"""The hf backend on a real (tiny) Qwen2.5-VL: generation, logprobs, batching, adapters."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from vidra.errors import ConfigError, InvalidInput, NotFound
from vidra.models import (
    ChatRequest,
    ImagePart,
    Message,
    SamplingParams,
    TextPart,
    VideoPart,
    load_chat_model,
    sampling_params,
)
from vidra.models.adapters import LoraSpec
from vidra.models.hf import HFChatModel

RNG = np.random.default_rng(0)
IMG = RNG.integers(0, 255, (90, 160, 3), dtype=np.uint8)
VID = RNG.integers(0, 255, (4, 72, 128, 3), dtype=np.uint8)


def image_request(text: str = "What colour is it?", **sampling: object) -> ChatRequest:
    parts = [ImagePart(IMG, 12.5), TextPart(text)]
    return ChatRequest([Message("user", parts)], sampling=SamplingParams(**sampling))


def video_request(
    text: str = "When does it appear?", adapter: str | None = None, **sampling: object
) -> ChatRequest:
    parts = [VideoPart(VID, [0.0, 2.0, 4.0, 6.0], fps=30.0), TextPart(text)]
    return ChatRequest(
        [Message("user", parts)], adapter=adapter, sampling=SamplingParams(**sampling)
    )


@pytest.fixture(scope="module")
def model(tiny_model_path: Path) -> HFChatModel:
    return HFChatModel(tiny_model_path)


def test_reloads_offline_from_disk(tiny_model_path: Path) -> None:
    code = (
        "from transformers import AutoModelForImageTextToText, AutoProcessor\n"
        f"p = AutoProcessor.from_pretrained({str(tiny_model_path)!r})\n"
        f"m = AutoModelForImageTextToText.from_pretrained({str(tiny_model_path)!r})\n"
        "theta = m.config.text_config.rope_parameters['rope_theta']\n"
        "print(type(m).__name__, type(p).__name__, theta)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
        env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"},
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [
        "Qwen2_5_VLForConditionalGeneration",
        "Qwen2_5_VLProcessor",
        "100.0",
    ]
    total = sum(f.stat().st_size for f in tiny_model_path.iterdir())
    assert total < 10e6


def test_generates_from_images_and_video(model: HFChatModel) -> None:
    comps = model.generate([image_request(max_tokens=10), video_request(max_tokens=10)])
    assert len(comps) == 2
    for k, c in enumerate(comps):
        assert c.request_index == k and 1 <= c.completion_tokens == len(c.token_ids) <= 10
        assert len(c.logprobs) == len(c.token_ids) and all(lp <= 0 for lp in c.logprobs)
        assert c.prompt_tokens > 10 and c.adapter is None and c.adapter_version == "base"
        assert c.finish_reason in ("stop", "length")
    # the video's 4 frames and the image take different numbers of vision tokens
    assert comps[0].prompt_tokens != comps[1].prompt_tokens


@pytest.mark.parametrize(
    "sampling",
    [
        {"temperature": 0.0},
        {"temperature": 1.0},
        {"temperature": 0.7, "top_p": 0.9},
    ],
)
def test_generate_logprobs_equal_score(model: HFChatModel, sampling: dict) -> None:
    reqs = [
        image_request(max_tokens=12, seed=5, **sampling),
        video_request(max_tokens=12, seed=6, **sampling),
    ]
    comps = model.generate(reqs)
    scored = model.score(reqs, comps)
    for c, s in zip(comps, scored, strict=True):
        assert len(s) == len(c.logprobs)
        assert np.max(np.abs(np.array(s) - np.array(c.logprobs))) < 1e-4


def test_batch_token_logprobs_equal_one_at_a_time(model: HFChatModel) -> None:
    """Training scores batches (left-padded prompts, right-padded completions of unequal
    lengths); each row must equal the pair scored alone."""
    reqs = [
        image_request("a?", temperature=1.0, seed=1),
        video_request("where is the red circle?", temperature=1.0, seed=1),
        image_request("which shape is in the top-left part?", temperature=1.0, seed=1),
    ]
    comps = model.generate(reqs)
    ids = [c.token_ids for c in comps]
    ids[1] = ids[1][:1]  # unequal lengths
    batched = model.batch_token_logprobs(reqs, ids)
    for req, toks, row in zip(reqs, ids, batched, strict=True):
        alone = model.token_logprobs(req, toks)
        assert row.shape == (len(toks),)
        assert torch.max(torch.abs(row - alone)) < 1e-4
    with pytest.raises(InvalidInput, match="one adapter and sampling"):
        model.batch_token_logprobs([reqs[0], image_request(temperature=0.5)], [ids[0], ids[0]])


def test_batched_equals_single_at_temperature_zero(model: HFChatModel) -> None:
    reqs = [
        image_request("a?", max_tokens=8),
        video_request("where is the red circle?", max_tokens=8),
        image_request("which shape is in the top-left part?", max_tokens=8),
    ]
    batched = model.generate(reqs)
    single = [model.generate([r])[0] for r in reqs]
    for b, s in zip(batched, single, strict=True):
        assert b.token_ids == s.token_ids
        assert np.allclose(b.logprobs, s.logprobs, atol=1e-4)


def test_sampling_is_seeded_and_n_samples(model: HFChatModel) -> None:
    a = model.generate([image_request(temperature=1.0, seed=11, max_tokens=8)])[0]
    b = model.generate([image_request(temperature=1.0, seed=11, max_tokens=8)])[0]
    assert a.token_ids == b.token_ids
    many = model.generate([image_request(temperature=1.0, n=3, max_tokens=8)])
    assert [c.sample_index for c in many] == [0, 1, 2]
    assert len({tuple(c.token_ids) for c in many}) > 1


def test_no_vision_placeholders_are_ever_sampled(model: HFChatModel) -> None:
    comps = model.generate([image_request(temperature=2.0, n=4, max_tokens=48, seed=1)])
    vision = set(model.suppress)
    assert len(vision) == 5
    assert all(not vision & set(c.token_ids) for c in comps)


def test_adapter_switching_changes_only_the_targeted_role(
    tiny_model_path: Path, tmp_path: Path
) -> None:
    m = HFChatModel(tiny_model_path)
    req = video_request(max_tokens=10)
    base = m.generate([req])[0]
    v_planner = m.add_adapter("planner")
    v_reasoner = m.add_adapter("reasoner", LoraSpec(rank=4, train_norm=True))
    torch.manual_seed(0)
    with torch.no_grad():
        for name, p in m.model.named_parameters():
            if "lora_B" in name and ".reasoner" in name:
                p.normal_(0, 0.5)
    assert m.adapter_versions()["reasoner"] != v_reasoner  # version follows the weights
    assert m.adapter_versions()["planner"] == v_planner
    out = {
        a: m.generate([video_request(max_tokens=10, adapter=a)])[0] for a in ("planner", "reasoner")
    }
    again_base = m.generate([req])[0]
    assert out["planner"].token_ids == base.token_ids
    assert out["reasoner"].token_ids != base.token_ids
    assert again_base.token_ids == base.token_ids
    assert out["reasoner"].adapter == "reasoner"
    assert out["reasoner"].adapter_version == m.adapter_versions()["reasoner"]
    # mixed adapters in one call are grouped and each request keeps its own adapter
    mixed = m.generate([video_request(max_tokens=10, adapter="reasoner"), req])
    assert mixed[0].token_ids == out["reasoner"].token_ids and mixed[1].token_ids == base.token_ids
    # save and load into a fresh model: same version, same outputs
    from vidra.models.adapters import save_adapter

    path = save_adapter(m.model, "reasoner", tmp_path / "reasoner")
    assert (path / "adapter_config.json").is_file()
    fresh = HFChatModel(tiny_model_path, adapters={"reasoner": path})
    assert fresh.adapter_versions()["reasoner"] == m.adapter_versions()["reasoner"]
    assert (
        fresh.generate([video_request(max_tokens=10, adapter="reasoner")])[0].token_ids
        == out["reasoner"].token_ids
    )
    trainable_norm = [
        n
        for n, _ in m.model.named_parameters()
        if "language_model.norm.modules_to_save.reasoner" in n
    ]
    assert trainable_norm, "train_norm=True must give the adapter its own final norm"


def test_bad_inputs_fail_clearly(model: HFChatModel) -> None:
    with pytest.raises(InvalidInput, match="no frames"):
        VideoPart(np.zeros((0, 10, 10, 3), np.uint8), [], 30.0)
    with pytest.raises(InvalidInput, match="uint8"):
        ImagePart(np.zeros((10, 10, 3), np.float32))
    with pytest.raises(InvalidInput, match="shape"):
        ImagePart(np.zeros((10, 10), np.uint8))
    with pytest.raises(InvalidInput, match="2 times for 4"):
        VideoPart(VID, [0.0, 1.0], 30.0)
    with pytest.raises(NotFound, match="unknown adapter 'critic'"):
        model.generate([video_request(adapter="critic")])
    with pytest.raises(InvalidInput, match="temperature"):
        sampling_params(temperature=-1)
    with pytest.raises(InvalidInput, match="max_tokens"):
        sampling_params(max_tokens=0)
    with pytest.raises(InvalidInput, match="exceeds the model's context"):
        model.generate([image_request(max_tokens=8190)])
    many = ChatRequest([Message("user", [ImagePart(IMG)] * 65 + [TextPart("?")])])
    with pytest.raises(InvalidInput, match="max_frames"):
        model.generate([many])
    with pytest.raises(NotFound, match="cannot load model"):
        HFChatModel("/nonexistent/checkpoint")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA is not available"):
            HFChatModel("/nonexistent", device="cuda")


def test_pixel_cap_sets_tokens_per_frame(tiny_model_path: Path) -> None:
    small = HFChatModel(tiny_model_path, max_pixels=56 * 56)
    big = HFChatModel(tiny_model_path, max_pixels=224 * 224)
    big_img = np.random.default_rng(1).integers(0, 255, (360, 640, 3), dtype=np.uint8)
    req = ChatRequest(
        [Message("user", [ImagePart(big_img), TextPart("?")])],
        sampling=SamplingParams(max_tokens=1),
    )
    n_small = small.generate([req])[0].prompt_tokens
    n_big = big.generate([req])[0].prompt_tokens
    assert n_big > n_small + 20


def test_loading_from_settings(tiny_model_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from vidra.config import Settings

    monkeypatch.setenv("VIDRA_MODEL__PATH", str(tiny_model_path))
    m = load_chat_model(Settings())
    assert isinstance(m, HFChatModel) and m.source == str(tiny_model_path)
    monkeypatch.setenv("VIDRA_MODEL__PATH", "vidra-tiny")
    if not (Path(__import__("vidra").__file__).parent / "models/weights/vidra-tiny").exists():
        with pytest.raises(NotFound, match="build-tiny"):
            load_chat_model(Settings())
    with pytest.raises(ConfigError, match="scripted"):
        load_chat_model(Settings(), backend="scripted")


PREFIXES = ['{"answer": "red circle', '{"answer": "blue circle', '{"answer": "green circle']


def _prefix_totals(
    model: HFChatModel, req: ChatRequest, prefixes: list[str] = PREFIXES
) -> list[float]:
    plain = ChatRequest(req.messages, sampling=req.sampling.model_copy(update={"prefixes": []}))
    ids = [model.tokenizer.encode(p, add_special_tokens=False) for p in prefixes]
    return [float(model.token_logprobs(plain, i).sum()) for i in ids]


def test_greedy_prefixed_generation_picks_the_likeliest_prefix(model: HFChatModel) -> None:
    req = image_request(max_tokens=24, prefixes=PREFIXES)
    totals = _prefix_totals(model, req)
    (comp,) = model.generate([req])
    best = PREFIXES[int(np.argmax(totals))]
    assert comp.text.startswith(best), (comp.text, totals)
    # the recorded logprobs are those of teacher forcing the whole completion, prefix included
    plain = ChatRequest(req.messages, sampling=req.sampling.model_copy(update={"prefixes": []}))
    (scored,) = model.score([plain], [comp])
    assert np.allclose(comp.logprobs, scored, atol=1e-4)
    assert comp.completion_tokens == len(comp.token_ids) <= 24


@pytest.mark.parametrize(
    "prefixes,temperature,flatter",
    [(PREFIXES, 4.0, 1.0), (['{"answer": "red', '{"answer": "red circle'], 1.0, 12.0)],
)
def test_sampled_prefixes_follow_their_renormalised_likelihood(
    model: HFChatModel, prefixes: list[str], temperature: float, flatter: float
) -> None:
    """Sampled prefix picks follow the softmax of their totals, divided by the request's
    ``prefix_temperature``: the selector's exploration in rollouts, where the longer prefix
    (below 1e-3 untempered) is tried more than a tenth of the time."""
    req = image_request(max_tokens=12, prefixes=prefixes, temperature=temperature, n=64,
                        seed=3, prefix_temperature=flatter)  # fmt: skip
    totals = np.array(_prefix_totals(model, req, prefixes)) / flatter
    probs = np.exp(totals - totals.max())
    probs /= probs.sum()
    if flatter > 1:  # as sampled without the flattening, the longer prefix would not show
        assert probs.min() > 0.1 and np.exp(flatter * (totals.min() - totals.max())) < 1e-3, totals
    comps = model.generate([req])
    assert len(comps) == 64 and [c.sample_index for c in comps] == list(range(64))
    picked = [max((k for k, p in enumerate(prefixes) if c.text.startswith(p)),
                  key=lambda k: len(prefixes[k])) for c in comps]  # fmt: skip
    freq = np.bincount(picked, minlength=len(prefixes)) / 64
    # 64 draws: each frequency within 4 standard errors of its probability
    se = np.sqrt(probs * (1 - probs) / 64)
    assert np.all(np.abs(freq - probs) <= 4 * se + 1e-9), (freq, probs)
    assert model.generate([req])[0].text == comps[0].text  # seeded
