"""Learning shown, not assumed: a tiny Qwen2.5-VL briefly SFT'd on a synthetic-world colour
task, then one GRPO cycle (G=8 sampled rollouts per prompt, LoRA on the reasoner role) raises
the held-out reward (sampled at T=1) by far more than its sampling noise."""

from __future__ import annotations

import math
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from vidra.agents.schemas import parse_answer
from vidra.models import ChatRequest, ImagePart, Message, SamplingParams, TextPart
from vidra.models.adapters import LoraSpec
from vidra.models.hf import HFChatModel
from vidra.models.tiny import build_tiny
from vidra.rl.datasets import Sample
from vidra.rl.losses import grpo_advantages
from vidra.rl.trainer import TrainConfig, train_role
from vidra.video.synthetic.world import COLOURS

COLS = ["red", "green", "blue", "yellow"]
Item = tuple[np.ndarray, list[str], int]


def _item(rng: random.Random) -> Item:
    colour = rng.choice(COLS)
    options = COLS[:]
    rng.shuffle(options)
    img = Image.new("RGB", (112, 112), (28, 28, 28))
    cx, cy = rng.choice([28, 84]), rng.choice([28, 84])
    ImageDraw.Draw(img).ellipse([cx - 18, cy - 18, cx + 18, cy + 18], fill=COLOURS[colour])
    return np.array(img), options, options.index(colour)


def _text(options: list[str]) -> str:
    lines = "".join(f"{chr(65 + k)}. {o}\n" for k, o in enumerate(options))
    return f'What colour is the object?\nOptions:\n{lines}Reply with JSON: {{"answer": "<colour>"}}'


def _request(item: Item, adapter: str | None, sampling: SamplingParams) -> ChatRequest:
    img, options, _ = item
    return ChatRequest(
        [Message("user", [ImagePart(img, 0.0), TextPart(_text(options))])],
        adapter=adapter,
        sampling=sampling,
    )


def _reward(text: str, item: Item) -> float:
    try:
        return float(parse_answer(text, item[1]).choice == item[2])
    except ValueError:
        return 0.0


def _held_out_reward(hf: HFChatModel, items: list[Item], adapter: str | None) -> float:
    comps = hf.generate(
        [
            _request(it, adapter, SamplingParams(temperature=1.0, max_tokens=10, n=8, seed=100 + k))
            for k, it in enumerate(items)
        ]
    )
    return float(np.mean([_reward(c.text, items[c.request_index]) for c in comps]))


def _brief_sft(hf: HFChatModel, items: list[Item], epochs: int) -> None:
    """Cold start: SFT of the language model and the vision merger (tower frozen)."""
    for name, p in hf.model.named_parameters():
        p.requires_grad_("visual" not in name or "merger" in name)
    params = [p for p in hf.model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-3)
    tok, rng = hf.tokenizer, random.Random(0)
    for _ in range(epochs):
        order = list(items)
        rng.shuffle(order)
        for b in range(0, len(order), 16):
            for it in order[b : b + 16]:
                ids = tok.encode(f'{{"answer": "{it[1][it[2]]}"}}', add_special_tokens=False)
                lp = hf.token_logprobs(
                    _request(it, None, SamplingParams()), [*ids, hf.eos_id], grad=True
                )
                (-lp.mean() / 16).backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            opt.zero_grad()
    for p in hf.model.parameters():
        p.requires_grad_(False)


@pytest.mark.slow
def test_one_grpo_cycle_raises_held_out_reward(tmp_path: Path) -> None:
    torch.manual_seed(0)
    rng, held_rng = random.Random(0), random.Random(1)
    train = [_item(rng) for _ in range(256)]
    held = [_item(held_rng) for _ in range(48)]
    hf = HFChatModel(build_tiny(tmp_path / "tiny", seed=0))
    _brief_sft(hf, train, epochs=4)
    hf.add_adapter("reasoner", LoraSpec(rank=16, alpha=32, train_norm=True))
    before = _held_out_reward(hf, held, "reasoner")
    # one GRPO cycle: G=8 sampled rollouts of 64 prompts, group-normalised advantages
    prompts = train[:64]
    comps = hf.generate(
        [
            _request(it, "reasoner", SamplingParams(temperature=1.0, max_tokens=10, n=8, seed=k))
            for k, it in enumerate(prompts)
        ]
    )
    rewards = [_reward(c.text, prompts[c.request_index]) for c in comps]
    advantages = grpo_advantages(rewards, [c.request_index for c in comps]).tolist()
    frames: dict[int, np.ndarray] = {}
    samples = []
    for j, (c, adv, r) in enumerate(zip(comps, advantages, rewards, strict=True)):
        if abs(adv) < 1e-6:
            continue
        img, options, _ = prompts[c.request_index]
        frames[j] = img[None]
        layout = [
            {
                "role": "user",
                "content": [
                    {"type": "image", "frame": 0, "time": 0.0},
                    {"type": "text", "text": _text(options)},
                ],
            }
        ]
        samples.append(
            Sample(
                "reasoner",
                "episode",
                j,
                "q",
                "",
                [("video", 0)],
                c.token_ids,
                c.logprobs,
                None,
                r,
                adv,
                messages=layout,
            )
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
    noise = math.sqrt(before * (1 - before) / (len(held) * 8))  # std of the held-out mean
    print(f"held-out reward {before:.3f} -> {after:.3f} (noise std {noise:.3f})")
    assert after - before > 3 * noise, (before, after, noise)
