"""Algorithm math as pure functions on tensors (shapes in the docstrings), tested on CPU
against hand-computed numbers: GRPO advantages and loss, DPO loss, SFT loss.

Conventions: ``logprobs``/``old_logprobs``/``ref_logprobs``: ``[batch, T]`` per-token log
probabilities of the completion tokens; ``mask``: ``[batch, T]`` 1.0 for real tokens, 0.0
for padding. Losses are scalars; "token-level mean" averages over all real tokens of the
batch (as in DAPO/Dr. GRPO), not per sequence first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

__all__ = ["GRPOStats", "dpo_loss", "grpo_advantages", "grpo_loss", "sft_loss"]


def grpo_advantages(
    rewards: Sequence[float] | torch.Tensor,
    group_ids: Sequence[object],
    normalise_std: bool = True,
    eps: float = 1e-6,
) -> torch.Tensor:
    """Group-normalised advantages: ``(r - mean_group) / (std_group + eps)``.

    Args:
        rewards: ``[n]`` one scalar reward per episode.
        group_ids: ``[n]`` the group (question) of each episode.
        normalise_std: False drops the division by the group's std (Dr. GRPO).

    Returns:
        ``[n]`` advantages; 0 for every member of a zero-variance group. The std is the
        population std (ddof=0), so a group ``[1, 0]`` gives ``[+1, -1]``.
    """
    r = torch.as_tensor(rewards, dtype=torch.float64)
    out = torch.zeros_like(r)
    groups: dict[object, list[int]] = {}
    for k, g in enumerate(group_ids):
        groups.setdefault(g, []).append(k)
    for idx in groups.values():
        x = r[idx]
        centred = x - x.mean()
        if normalise_std:
            std = x.std(unbiased=False)
            centred = centred / (std + eps) if std > 0 else torch.zeros_like(x)
        out[idx] = centred
    return out.float()


@dataclass(frozen=True)
class GRPOStats:
    loss: float
    kl: float
    clip_fraction: float
    ratio_mean: float


def _masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return (x * mask).sum() / mask.sum().clamp(min=1.0)


def grpo_loss(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    ref_logprobs: torch.Tensor | None,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    clip_eps: float = 0.2,
    beta: float = 0.04,
) -> tuple[torch.Tensor, GRPOStats]:
    """PPO-clipped GRPO objective with a k3 KL penalty to the reference, token-level mean.

    Args:
        logprobs: ``[batch, T]`` under the policy being trained (requires grad).
        old_logprobs: ``[batch, T]`` stored at sampling time (the behaviour policy).
        ref_logprobs: ``[batch, T]`` under the reference (base model, adapter off), or None
            when ``beta == 0``.
        advantages: ``[batch]`` one advantage per sequence, broadcast over its tokens.
        mask: ``[batch, T]``.

    Returns:
        The loss to minimise and its statistics.
        ``ratio = exp(logprobs - old)``; ``surrogate = min(ratio * A, clip(ratio) * A)``;
        ``k3 = exp(ref - logprobs) - (ref - logprobs) - 1``;
        ``loss = -mean(surrogate - beta * k3)``.
    """
    adv = advantages[:, None].to(logprobs.dtype)
    ratio = torch.exp(logprobs - old_logprobs)
    clipped = torch.clamp(ratio, 1.0 - clip_eps, 1.0 + clip_eps)
    surrogate = torch.minimum(ratio * adv, clipped * adv)
    per_token = -surrogate
    kl = torch.zeros_like(logprobs)
    if beta and ref_logprobs is not None:
        diff = ref_logprobs - logprobs
        kl = torch.exp(diff) - diff - 1.0
        per_token = per_token + beta * kl
    loss = _masked_mean(per_token, mask)
    with torch.no_grad():
        clip_frac = _masked_mean(((ratio - clipped).abs() > 0).to(logprobs.dtype), mask)
        stats = GRPOStats(
            float(loss),
            float(_masked_mean(kl, mask)),
            float(clip_frac),
            float(_masked_mean(ratio, mask)),
        )
    return loss, stats


def dpo_loss(
    policy_chosen: torch.Tensor,
    policy_rejected: torch.Tensor,
    ref_chosen: torch.Tensor,
    ref_rejected: torch.Tensor,
    beta: float = 0.1,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sigmoid DPO loss.

    Args:
        policy_chosen, policy_rejected, ref_chosen, ref_rejected: ``[batch]`` summed
            completion logprobs of each sequence.

    Returns:
        ``(loss, margin)``: ``loss = -mean(logsigmoid(beta * margin))`` where
        ``margin = (pc - rc) - (pr - rr)``, and the per-pair margin ``[batch]``.
    """
    margin = (policy_chosen - ref_chosen) - (policy_rejected - ref_rejected)
    loss = -torch.nn.functional.logsigmoid(beta * margin).mean()
    return loss, margin.detach()


def sft_loss(logprobs: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Negative log-likelihood of the completion tokens, token-level mean.

    Args:
        logprobs: ``[batch, T]`` of the target tokens; mask: ``[batch, T]``.
    """
    return -_masked_mean(logprobs, mask)
