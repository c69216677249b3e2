"""Learning shown, not assumed: a tiny Qwen2.5-VL briefly SFT'd on a synthetic-world colour
task (`tests.toy`), then
- one GRPO cycle (G=8 sampled rollouts per prompt, LoRA on the reasoner role) raises the
  held-out reward (sampled at T=1) by far more than its sampling noise;
- one DPO cycle raises the chosen-minus-rejected log-ratio margin on held-out pairs."""

from __future__ import annotations

import math
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.toy import ColourItem, cold_start_sft, colour_items
from vidra.models import SamplingParams
from vidra.models.adapters import LoraSpec
from vidra.models.hf import HFChatModel
from vidra.models.tiny import build_tiny
from vidra.rl.datasets import Sample
from vidra.rl.losses import grpo_advantages
from vidra.rl.trainer import TrainConfig, train_role


def _held_out_reward(hf: HFChatModel, items: list[ColourItem], adapter: str | None) -> np.ndarray:
    """Each held-out item's mean reward over 8 replies sampled at T=1."""
    comps = hf.generate(
        [
            it.request(adapter, SamplingParams(temperature=1.0, max_tokens=10, n=8, seed=100 + k))
            for k, it in enumerate(items)
        ]
    )
    per = np.zeros(len(items))
    for c in comps:
        per[c.request_index] += items[c.request_index].reward(c.text) / 8
    return per


def _sample(item: ColourItem, j: int, ids: list[int], **kw: object) -> Sample:
    base = dict(
        role="reasoner",
        episode_id="episode",
        step_id=j,
        question_key="q",
        prompt="",
        frames=[("video", 0)],
        token_ids=ids,
        old_logprobs=[],
        adapter_version=None,
        reward=0.0,
        messages=item.layout(),
    )
    return Sample(**{**base, **kw})  # type: ignore[arg-type]


def _model(tmp_path: Path, sft_epochs: int) -> tuple[HFChatModel, list[ColourItem]]:
    torch.manual_seed(0)
    train = colour_items(256, seed=0)
    hf = HFChatModel(build_tiny(tmp_path / "tiny", seed=0))
    cold_start_sft(hf, train, epochs=sft_epochs)
    hf.add_adapter("reasoner", LoraSpec(rank=16, alpha=32, train_norm=True))
    return hf, train


@pytest.mark.slow
def test_one_grpo_cycle_raises_held_out_reward(tmp_path: Path) -> None:
    hf, train = _model(tmp_path, sft_epochs=4)
    held = colour_items(48, seed=1)
    before = _held_out_reward(hf, held, "reasoner")
    # one GRPO cycle: G=8 sampled rollouts of 64 prompts, group-normalised advantages
    prompts = train[:64]
    comps = hf.generate(
        [
            it.request("reasoner", SamplingParams(temperature=1.0, max_tokens=10, n=8, seed=k))
            for k, it in enumerate(prompts)
        ]
    )
    rewards = [prompts[c.request_index].reward(c.text) for c in comps]
    advantages = grpo_advantages(rewards, [c.request_index for c in comps]).tolist()
    frames: dict[int, np.ndarray] = {}
    samples = []
    for j, (c, adv, r) in enumerate(zip(comps, advantages, rewards, strict=True)):
        if abs(adv) < 1e-6:
            continue
        item = prompts[c.request_index]
        frames[j] = item.frame[None]
        samples.append(
            _sample(item, j, c.token_ids, old_logprobs=c.logprobs, reward=r, advantage=adv)
        )
    assert len(samples) > 100, "the SFT'd model must leave reward variance for GRPO"
    train_role(
        hf,
        "reasoner",
        samples,
        lambda s: frames[s.step_id],
        TrainConfig(
            algorithm="grpo",
            lr=1e-3,
            batch_size=16,
            epochs=3,
            beta=0.0,
            temperature=1.0,
            checkpoint_every=10**6,
        ),
    )
    after = _held_out_reward(hf, held, "reasoner")
    # the noise, measured: the standard error of the per-item differences (items differ in
    # difficulty, and an item's 8 replies are not independent draws of the mean)
    diff = after - before
    noise = diff.std(ddof=1) / math.sqrt(len(held))
    print(f"held-out reward {before.mean():.3f} -> {after.mean():.3f} (noise {noise:.3f})")
    assert diff.mean() > 3 * noise, (before.mean(), after.mean(), noise)


def _pairs(hf: HFChatModel, items: list[ColourItem], seed: int) -> list[Sample]:
    """Chosen: the right answer; rejected: a wrong option drawn at random."""
    rng = random.Random(seed)
    out = []
    for j, it in enumerate(items):
        wrong = rng.choice([k for k in range(len(it.options)) if k != it.answer])
        chosen, rejected = (
            [*hf.tokenizer.encode(text, add_special_tokens=False), hf.eos_id]
            for text in (it.answer_json(), it.answer_json(wrong))
        )
        out.append(_sample(it, j, chosen, rejected_token_ids=rejected, reward=1.0))
    return out


def _margins(hf: HFChatModel, pairs: list[Sample], items: list[ColourItem]) -> np.ndarray:
    """DPO implicit-reward margins: (log pi/ref)(chosen) - (log pi/ref)(rejected)."""
    greedy = SamplingParams()
    out = []
    for s, it in zip(pairs, items, strict=True):
        rej = s.rejected_token_ids or []
        pol = hf.batch_token_logprobs([it.request("reasoner", greedy)] * 2, [s.token_ids, rej])
        ref = hf.batch_token_logprobs([it.request(None, greedy)] * 2, [s.token_ids, rej])
        out.append(float((pol[0].sum() - ref[0].sum()) - (pol[1].sum() - ref[1].sum())))
    return np.array(out)


@pytest.mark.slow
def test_one_dpo_cycle_raises_held_out_margin(tmp_path: Path) -> None:
    hf, train = _model(tmp_path, sft_epochs=4)
    held = colour_items(48, seed=1)
    train_pairs, held_pairs = _pairs(hf, train, seed=0), _pairs(hf, held, seed=1)
    before = _margins(hf, held_pairs, held)
    assert np.abs(before).max() < 1e-4  # a fresh adapter is the reference
    frames = {s.step_id: train[s.step_id].frame[None] for s in train_pairs}
    metrics = train_role(
        hf,
        "reasoner",
        train_pairs,
        lambda s: frames[s.step_id],
        TrainConfig(algorithm="dpo", lr=1e-3, batch_size=16, epochs=2, checkpoint_every=10**6),
    )
    after = _margins(hf, held_pairs, held)
    sem = after.std(ddof=1) / math.sqrt(len(after))
    won = float((after > 0).mean())
    print(
        f"held-out margin {before.mean():.3f} -> {after.mean():.3f} (sem {sem:.3f}), "
        f"chosen preferred on {won:.0%} of held-out pairs, last train margin {metrics['margin']}"
    )
    assert after.mean() > 3 * sem, (after.mean(), sem)
    assert won > 0.75
