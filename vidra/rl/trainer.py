"""One role's LoRA adapter trained with GRPO, DPO or SFT on replayed steps.

Self-contained: a config dataclass with help text, a loop with gradient accumulation,
gradient clipping, seeding, checkpoints every N steps (adapter + optimizer + step) and
resume from the last one, and a NaN guard that stops and keeps the last good checkpoint.
Under Ray Train (``torch.distributed`` initialised) each worker takes a shard of the
samples and gradients are all-reduced before each optimizer step (synchronous DDP).
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from vidra.errors import ConfigError, TrainingDiverged
from vidra.models.adapters import LORA_TARGETS, LoraSpec, save_adapter
from vidra.models.protocol import ChatRequest, SamplingParams
from vidra.rl.datasets import Sample, decision_tokens
from vidra.rl.losses import dpo_loss, grpo_loss, sft_loss
from vidra.rl.replay import replay_request

__all__ = ["TrainConfig", "TrainableModel", "TrainingDiverged", "cold_start_sft", "train_role"]

log = logging.getLogger(__name__)


class TrainableModel(Protocol):
    """What the trainer needs of a model: the peft-wrapped transformers module, adapters it
    can add, and teacher-forced logprobs with gradients (`vidra.models.hf.HFChatModel`)."""

    model: Any
    tokenizer: Any

    @property
    def adapters(self) -> list[str]: ...

    def add_adapter(self, role: str, spec: LoraSpec | None = None) -> str: ...

    def batch_token_logprobs(
        self,
        requests: Sequence[ChatRequest],
        token_ids: Sequence[Sequence[int]],
        grad: bool = False,
    ) -> list[Any]:
        """``[T_i]`` logprob tensors, one per (request, completion) pair."""
        ...


@dataclass
class TrainConfig:
    """How one training run goes (TRL-style: every field says what it does)."""

    algorithm: str = field(default="grpo", metadata={"help": "grpo | dpo | sft"})
    lr: float = field(default=2e-4, metadata={"help": "AdamW learning rate of the adapter"})
    epochs: int = field(default=1, metadata={"help": "passes over the samples"})
    batch_size: int = field(default=8, metadata={"help": "samples per optimizer step (per worker)"})
    grad_accum: int = field(default=1, metadata={"help": "batches per optimizer step"})
    max_steps: int | None = field(default=None, metadata={"help": "stop after this many steps"})
    clip_eps: float = field(default=0.2, metadata={"help": "GRPO ratio clip"})
    beta: float = field(default=0.04, metadata={"help": "GRPO k3-KL weight to the base model"})
    dpo_beta: float = field(default=0.1, metadata={"help": "DPO temperature"})
    max_grad_norm: float = field(default=1.0, metadata={"help": "gradient clipping"})
    temperature: float = field(
        default=1.0,
        metadata={"help": "sampling temperature the stored logprobs were taken at (GRPO ratio)"},
    )
    lora_rank: int = field(default=8, metadata={"help": "rank of a new adapter"})
    train_norm: bool = field(default=True, metadata={"help": "also train the final norm"})
    lora_targets: str = field(
        default="text",
        metadata={"help": "what a new adapter adapts: text (the language model's projections) "
                  "| text+vision (also the vision tower's and its merger's)"},
    )  # fmt: skip
    frame_size: int = field(default=160, metadata={"help": "frame size used at sampling time"})
    checkpoint_every: int = field(default=10, metadata={"help": "optimizer steps per checkpoint"})
    seed: int = field(default=0, metadata={"help": "seeds shuffling and initialisation"})
    loss_tokens: str = field(
        default="all",
        metadata={"help": "GRPO, SFT: the tokens the loss averages over: all | decision (the "
                  "reply's tokens up to its decision, e.g. the reasoner's answer)"},
    )  # fmt: skip

    def validate(self) -> None:
        if self.algorithm not in ("grpo", "dpo", "sft"):
            raise ConfigError(f"algorithm {self.algorithm!r}: use grpo, dpo or sft")
        if self.loss_tokens not in ("all", "decision"):
            raise ConfigError(f"loss_tokens {self.loss_tokens!r}: use all or decision")
        if self.lora_targets not in LORA_TARGETS:
            kinds = " or ".join(LORA_TARGETS)
            raise ConfigError(f"lora_targets {self.lora_targets!r}: use {kinds}")
        if self.lr <= 0 or self.batch_size <= 0 or self.grad_accum <= 0 or self.epochs <= 0:
            raise ConfigError("lr, batch_size, grad_accum and epochs must be positive")


def _distributed() -> tuple[int, int]:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _batch_losses(
    hf: TrainableModel, role: str, batch: Sequence[Sample], frames: Sequence[Any], cfg: TrainConfig
) -> list[tuple[Any, dict[str, float]]]:
    """Per-sample losses of one batch, from batched forward passes (policy, reference)."""
    import torch

    sampling = SamplingParams(temperature=cfg.temperature if cfg.algorithm == "grpo" else 0.0)
    pairs = list(zip(batch, frames, strict=True))
    reqs = [replay_request(s.messages, f, role, sampling) for s, f in pairs]
    refs = [replay_request(s.messages, f, None, sampling) for s, f in pairs]
    chosen = [s.token_ids for s in batch]
    if cfg.algorithm == "dpo":
        rejected = [s.rejected_token_ids or [] for s in batch]
        lps = hf.batch_token_logprobs(reqs + reqs, chosen + rejected, grad=True)
        with torch.no_grad():
            ref = hf.batch_token_logprobs(refs + refs, chosen + rejected)
        n = len(batch)
        out = []
        for k in range(n):
            loss, margin = dpo_loss(
                lps[k].sum()[None],
                lps[n + k].sum()[None],
                ref[k].sum()[None],
                ref[n + k].sum()[None],
                cfg.dpo_beta,
            )
            out.append((loss, {"margin": float(margin[0])}))
        return out
    lps = hf.batch_token_logprobs(reqs, chosen, grad=True)

    def tokens(s: Sample, lp: Any) -> Any:  # the reply tokens the loss applies to
        mask = torch.ones_like(lp)
        if cfg.loss_tokens == "decision":
            mask[decision_tokens(role, s.token_ids, hf.tokenizer.decode) :] = 0.0
        return mask

    if cfg.algorithm == "sft":
        pairs_lp = zip(batch, lps, strict=True)
        return [(sft_loss(lp[None], tokens(s, lp)[None]), {}) for s, lp in pairs_lp]
    ref_lps = hf.batch_token_logprobs(refs, chosen) if cfg.beta else [None] * len(batch)
    out = []
    for s, lp, ref in zip(batch, lps, ref_lps, strict=True):
        old = torch.tensor(s.old_logprobs, dtype=lp.dtype)
        mask = tokens(s, lp)
        loss, st = grpo_loss(
            lp[None],
            old[None],
            None if ref is None else ref[None],
            torch.tensor([s.advantage]),
            mask[None],
            cfg.clip_eps,
            cfg.beta,
        )
        out.append((loss, {"kl": st.kl, "clip_fraction": st.clip_fraction}))
    return out


def _trainable(hf: TrainableModel, role: str, cfg: TrainConfig) -> list[Any]:
    """The role's adapter parameters (the adapter is created when missing)."""
    if role not in hf.adapters:
        spec = LoraSpec(rank=cfg.lora_rank, train_norm=cfg.train_norm,
                        target_modules=LORA_TARGETS[cfg.lora_targets])  # fmt: skip
        hf.add_adapter(role, spec)
    hf.model.set_adapter(role)
    params = [p for n, p in hf.model.named_parameters() if p.requires_grad and f".{role}" in n]
    if not params:
        raise ConfigError(f"adapter {role!r} has no trainable parameters")
    return params


def _schedule(
    samples: Sequence[Sample], role: str, cfg: TrainConfig, rank: int, world: int
) -> tuple[list[list[Sample]], int]:
    """This worker's shard as batches over all epochs (seeded shuffles), and the number of
    optimizer steps. Shards are padded to equal length (as torch's DistributedSampler does),
    so every DDP worker takes the same number of steps and none waits forever in an
    all-reduce."""
    order = [s for s in samples if s.role == role and s.token_ids]
    if cfg.algorithm == "dpo":
        order = [s for s in order if s.rejected_token_ids]
    if order and world > 1:
        per = math.ceil(len(order) / world)
        order = (order * world)[: per * world]
    shard = order[rank::world]
    batches: list[list[Sample]] = []
    rng = random.Random(cfg.seed)
    for _ in range(cfg.epochs):
        epoch = list(shard)
        rng.shuffle(epoch)
        batches += [epoch[k : k + cfg.batch_size] for k in range(0, len(epoch), cfg.batch_size)]
    total = math.ceil(len(batches) / cfg.grad_accum)
    return batches, total if cfg.max_steps is None else min(total, cfg.max_steps)


def _backward(
    hf: TrainableModel,
    role: str,
    group: Sequence[Sequence[Sample]],
    frames: Callable[[Sequence[Sample]], list[Any]],
    cfg: TrainConfig,
    step: int,
    last_good: Path | None,
) -> tuple[list[float], list[dict[str, float]], int]:
    """Accumulate the gradients of one optimizer step; losses, extra stats, tokens."""
    import torch

    n = sum(len(b) for b in group)
    losses, extra, tokens = [], [], 0
    for batch in group:
        results = _batch_losses(hf, role, batch, frames(batch), cfg)
        total = sum(loss for loss, _ in results)
        if not torch.isfinite(total):
            raise TrainingDiverged(
                f"{role}: loss became {float(total)} at step {step}; stopped, the last "
                f"good checkpoint is {last_good or 'the starting adapter'}; "
                "lower the learning rate"
            )
        (total / n).backward()
        for (loss, info), s in zip(results, batch, strict=True):
            losses.append(float(loss.detach()))
            extra.append(info)
            tokens += len(s.token_ids) + len(s.rejected_token_ids or [])
    return losses, extra, tokens


def _all_reduce(params: Sequence[Any], world: int) -> None:
    """Average gradients over the DDP workers (synchronous)."""
    import torch
    import torch.distributed as dist

    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
        dist.all_reduce(p.grad)
        p.grad /= world


def _step_metrics(
    losses: list[float],
    extra: list[dict[str, float]],
    rewards: list[float],
    tokens: int,
    n: int,
    elapsed: float,
    grad_norm: float,
    step: int,
) -> dict[str, float]:
    import torch

    metrics = {
        "loss": sum(losses) / max(1, len(losses)),
        "grad_norm": grad_norm,
        "reward_mean": sum(rewards) / max(1, len(rewards)),
        "reward_std": float(torch.tensor(rewards).std()) if len(rewards) > 1 else 0.0,
        "tokens_per_s": tokens / max(1e-9, elapsed),
        "samples_per_s": n / max(1e-9, elapsed),
        "step": float(step),
    }
    for key in ("kl", "clip_fraction", "margin"):
        vals = [e[key] for e in extra if key in e]
        if vals:
            metrics[key] = sum(vals) / len(vals)
    return metrics


def _save(
    hf: TrainableModel, role: str, params: Sequence[Any], opt: Any, step: int, cfg: TrainConfig,
    ckpt: Path,
) -> Path:  # fmt: skip
    import torch

    save_adapter(hf.model, role, ckpt / "adapter")
    state = {"params": [p.detach().clone() for p in params], "optimizer": opt.state_dict(),
             "step": step}  # fmt: skip
    torch.save(state, ckpt / "trainer.pt")
    (ckpt / "config.json").write_text(json.dumps(asdict(cfg)))
    return ckpt


def _resume(resume_from: Path, params: Sequence[Any], opt: Any) -> int:
    import torch

    state = torch.load(resume_from / "trainer.pt", weights_only=False)
    for p, saved in zip(params, state["params"], strict=True):
        p.data.copy_(saved)
    opt.load_state_dict(state["optimizer"])
    return int(state["step"])


def train_role(
    hf: TrainableModel,
    role: str,
    samples: Sequence[Sample],
    frames_of: Callable[[Sample], Any],
    cfg: TrainConfig,
    checkpoint_dir: Path | None = None,
    resume_from: Path | None = None,
    report: Callable[[dict[str, float], Path | None], None] | None = None,
    batch_frames: Callable[[Sequence[Sample]], list[Any]] | None = None,
) -> dict[str, float]:
    """Train ``role``'s adapter on ``samples``; returns the last step's metrics.

    Args:
        hf: the model (its ``model`` gets the adapter if missing).
        frames_of: decodes a sample's frames (``[n, h, w, 3]`` uint8).
        checkpoint_dir: where checkpoints go (every ``cfg.checkpoint_every`` steps).
        resume_from: a checkpoint to continue from (adapter, optimizer, step).
        report: called after each optimizer step with metrics and the checkpoint (or None).
        batch_frames: decodes a whole batch's frames at once (used instead of ``frames_of``
            when given: shared frames decoded once, one call per video).
    """
    import torch

    cfg.validate()
    torch.manual_seed(cfg.seed)
    rank, world = _distributed()
    params = _trainable(hf, role, cfg)
    opt = torch.optim.AdamW(params, lr=cfg.lr)
    step = 0 if resume_from is None else _resume(resume_from, params, opt)
    if resume_from is not None:
        log.info("resumed %s at step %d from %s", role, step, resume_from)
    batches, total_steps = _schedule(samples, role, cfg, rank, world)
    frames = batch_frames or (lambda batch: [frames_of(s) for s in batch])
    metrics: dict[str, float] = {}
    last_good: Path | None = resume_from
    while step < total_steps:
        t0 = time.perf_counter()
        group = batches[step * cfg.grad_accum : (step + 1) * cfg.grad_accum]
        losses, extra, tokens = _backward(hf, role, group, frames, cfg, step, last_good)
        if world > 1:
            _all_reduce(params, world)
        grad_norm = float(torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm))
        opt.step()
        opt.zero_grad(set_to_none=True)
        step += 1
        rewards = [s.reward for b in group for s in b]
        n = sum(len(b) for b in group)
        metrics = _step_metrics(
            losses, extra, rewards, tokens, n, time.perf_counter() - t0, grad_norm, step
        )
        ckpt = None
        due = step % cfg.checkpoint_every == 0 or step == total_steps
        if checkpoint_dir is not None and rank == 0 and due:
            ckpt = last_good = _save(
                hf, role, params, opt, step, cfg, checkpoint_dir / f"step-{step:06d}"
            )
        if report is not None:
            report(metrics, ckpt)
    return metrics


def cold_start_sft(
    hf: TrainableModel,
    examples: Sequence[tuple[Any, Sequence[int]]],
    epochs: int,
    lr: float = 1e-3,
    batch: int = 16,
    seed: int = 0,
    cosine: bool = False,
    on_epoch: Callable[[int, float], None] | None = None,
    tower_lr: float = 0.0,
) -> list[float]:
    """SFT of the whole language model and the vision merger on ``(request, target token
    ids)`` pairs (mean per-token NLL per example); loss per epoch. The vision tower is frozen,
    or trained at its own ``tower_lr`` when that is > 0. ``seed`` orders the examples; the
    loop itself draws no random numbers.

    Training the tower at the language model's rate made a tiny model's vision features blow
    up and its language model learn to ignore the image; frozen, it learns from pixels in
    seconds, and at a tenth of the rate the tower adapts too (a captioner-only pilot:
    held-out object precision 0.39 frozen, 0.50 at 1e-4 against 1e-3).
    """
    import torch

    tower: list[Any] = []
    rest: list[Any] = []
    for name, p in hf.model.named_parameters():
        is_tower = "visual" in name and "merger" not in name
        p.requires_grad_(not is_tower or tower_lr > 0)
        if p.requires_grad:
            (tower if is_tower else rest).append(p)
    params = rest + tower
    groups = [{"params": rest, "lr": lr}] + ([{"params": tower, "lr": tower_lr}] if tower else [])
    opt = torch.optim.AdamW(groups, lr=lr)
    steps = epochs * ((len(examples) + batch - 1) // batch)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps) if cosine else None
    rng = random.Random(seed)
    losses = []
    for epoch in range(epochs):
        order = list(examples)
        rng.shuffle(order)
        total = 0.0
        for b in range(0, len(order), batch):
            chunk = order[b : b + batch]
            lps = hf.batch_token_logprobs([r for r, _ in chunk], [i for _, i in chunk], True)
            loss = torch.stack([lp.mean() for lp in lps]).mean().neg()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            if sched is not None:
                sched.step()
            opt.zero_grad(set_to_none=True)
            total += float(loss.detach()) * len(chunk)
        losses.append(total / max(1, len(order)))
        if on_epoch is not None:
            on_epoch(epoch, losses[-1])
    for p in hf.model.parameters():
        p.requires_grad_(False)
    return losses
