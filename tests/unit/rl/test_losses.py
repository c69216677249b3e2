"""Algorithm math against hand-computed numbers."""

from __future__ import annotations

import math

import pytest
import torch

from vidra.rl.losses import dpo_loss, grpo_advantages, grpo_loss, sft_loss
from vidra.rl.rewards import accuracy, format_reward, frame_cost, parse_span, temporal_iou


def test_grpo_advantages_by_hand() -> None:
    adv = grpo_advantages([1.0, 0.0, 1.0, 0.0, 0.5, 0.5], ["a", "a", "b", "b", "c", "c"])
    # group a: mean 0.5, population std 0.5 -> +1, -1; group c has zero variance -> 0
    assert adv.tolist() == pytest.approx([1.0, -1.0, 1.0, -1.0, 0.0, 0.0], abs=1e-5)
    adv3 = grpo_advantages([3.0, 0.0, 0.0], [1, 1, 1])
    # mean 1, std sqrt(2) -> 2/sqrt(2), -1/sqrt(2), -1/sqrt(2)
    assert adv3.tolist() == pytest.approx(
        [math.sqrt(2), -1 / math.sqrt(2), -1 / math.sqrt(2)], abs=1e-5
    )
    dr = grpo_advantages([3.0, 0.0, 0.0], [1, 1, 1], normalise_std=False)
    assert dr.tolist() == pytest.approx([2.0, -1.0, -1.0])


def test_grpo_loss_by_hand() -> None:
    old = torch.log(torch.tensor([[0.5, 0.5], [0.5, 0.5]]))
    new = torch.log(torch.tensor([[0.75, 0.5], [0.25, 0.5]])).requires_grad_()
    mask = torch.tensor([[1.0, 1.0], [1.0, 0.0]])
    adv = torch.tensor([1.0, -1.0])
    loss, stats = grpo_loss(new, old, None, adv, mask, clip_eps=0.2, beta=0.0)
    # ratios: 1.5 (clipped to 1.2 for A=+1 -> min(1.5, 1.2) = 1.2), 1.0; 0.5 for A=-1:
    # min(0.5 * -1, 0.8 * -1) = -0.8. Masked tokens: 1.2, 1.0, -0.8 -> mean 0.4667
    assert float(loss) == pytest.approx(-(1.2 + 1.0 - 0.8) / 3, abs=1e-5)
    assert stats.clip_fraction == pytest.approx(2 / 3, abs=1e-5)
    loss.backward()
    assert new.grad is not None and float(new.grad[0, 0]) == 0.0  # clipped: no gradient
    assert float(new.grad[0, 1]) != 0.0


def test_grpo_k3_kl_by_hand() -> None:
    lp = torch.log(torch.tensor([[0.5]]))
    ref = torch.log(torch.tensor([[0.25]]))
    loss, stats = grpo_loss(lp, lp.clone(), ref, torch.tensor([0.0]), torch.ones(1, 1), beta=0.5)
    diff = math.log(0.25) - math.log(0.5)
    k3 = math.exp(diff) - diff - 1
    assert stats.kl == pytest.approx(k3, abs=1e-6)
    assert float(loss) == pytest.approx(0.5 * k3, abs=1e-6)


def test_dpo_and_sft_by_hand() -> None:
    loss, margin = dpo_loss(
        torch.tensor([-1.0]),
        torch.tensor([-3.0]),
        torch.tensor([-2.0]),
        torch.tensor([-2.0]),
        beta=0.5,
    )
    # margin = (-1 + 2) - (-3 + 2) = 2; loss = -log(sigmoid(1)) = log(1 + e^-1)
    assert float(margin[0]) == 2.0 and float(loss) == pytest.approx(math.log1p(math.exp(-1)))
    nll = sft_loss(
        torch.tensor([[-1.0, -2.0], [-3.0, -9.0]]), torch.tensor([[1.0, 1.0], [1.0, 0.0]])
    )
    assert float(nll) == pytest.approx(2.0)


def test_rewards() -> None:
    assert accuracy("B", "blue square", ["red circle", "blue square"], 1) == 1.0
    assert accuracy("The Blue square.", "blue square") == 1.0
    assert accuracy(None, "x") == 0.0
    assert format_reward([True, True]) == 1.0 and format_reward([True, False]) == 0.0
    assert frame_cost(8, 32) == -0.25 and frame_cost(64, 32) == -1.0
    assert temporal_iou((0, 10), (5, 15)) == pytest.approx(5 / 15)
    assert temporal_iou(None, (1, 2)) == 0.0
    assert parse_span("1:02.5-1:10.0") == (62.5, 70.0)
