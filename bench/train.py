"""Training throughput: vidra's GRPO and DPO steps (in process, and on Ray Train with 1 and 2
workers) against TRL's `GRPOTrainer` / `DPOTrainer` on the same tiny Qwen2.5-VL, the same data
(`tests.toy` colour frames) and equal batch settings. Prints JSON.

Fair-comparison rules:
- Same base model, same LoRA config (rank 8 on the text attention/MLP projections, nothing
  else trainable), same optimizer (AdamW), same batch (16 samples per optimizer step), same
  KL/DPO beta, fp32, CPU, ``torch.set_num_threads`` = the cores given.
- GRPO: a TRL step generates its completions inside the step, while vidra trains on rollouts
  the agents sampled while serving. So the GRPO ratio compares one *online* step on both sides:
  vidra = sampling G completions with the hf backend (as the agents do) + one training step;
  TRL = one `GRPOTrainer` step. vidra's training-only step (local and on Ray) is reported too.
- DPO: a step is policy + reference log-probs of chosen and rejected, loss, backward, update.
- Per-step wall time: the median over the measured steps after one warm-up step.

Usage: ``python bench/train.py [--steps 6] [--threads 2] [--out bench/results/train.json]``
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.toy
from report import emit, header

BATCH = 16  # samples per optimizer step
G = 8  # GRPO rollouts per prompt
MAX_TOKENS = 16
LR = 1e-4
GRPO_BETA = 0.04
DPO_BETA = 0.1


def _median_step(times: list[float]) -> float:
    return statistics.median(times[1:] if len(times) > 1 else times)


def _throughput(step_s: float, samples: int, tokens: float) -> dict[str, float]:
    return {
        "step_s": round(step_s, 4),
        "samples_per_s": round(samples / step_s, 2),
        "tokens_per_s": round(tokens / step_s, 1),
    }


def _write_video(items: list[Any], path: Path) -> None:
    """The toy frames as a 1-fps video, so Ray workers replay them like logged steps."""
    import av

    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=1)
        stream.width = stream.height = 112
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "10", "g": "1"}
        for it in items:
            for packet in stream.encode(av.VideoFrame.from_ndarray(it.frame, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


def _samples(items: list[Any], tok: Any, eos: int, comps: list[Any] | None, rewards: Any) -> Any:
    from vidra.rl.datasets import Sample

    out = []
    if comps is not None:  # GRPO: sampled completions with advantages
        for c, adv in zip(comps, rewards, strict=True):
            it = items[c.request_index]
            out.append(
                Sample(
                    "reasoner",
                    "e",
                    c.request_index,
                    "q",
                    "",
                    [("toy", c.request_index)],
                    c.token_ids,
                    c.logprobs,
                    None,
                    0.0,
                    float(adv),
                    messages=it.layout(),
                )
            )
        return out
    for j, it in enumerate(items):  # DPO: right answer vs the next option
        chosen, rejected = (
            [*tok.encode(it.answer_json(k), add_special_tokens=False), eos]
            for k in (it.answer, (it.answer + 1) % len(it.options))
        )
        out.append(
            Sample(
                "reasoner",
                "e",
                j,
                "q",
                "",
                [("toy", j)],
                chosen,
                [],
                None,
                1.0,
                messages=it.layout(),
                rejected_token_ids=rejected,
            )
        )
    return out


def _vidra_local(model: Path, algo: str, samples: list[Any], items: list[Any], steps: int) -> Any:
    from vidra.models.adapters import LoraSpec
    from vidra.models.hf import HFChatModel
    from vidra.rl.trainer import TrainConfig, train_role

    hf = HFChatModel(model)
    hf.add_adapter("reasoner", LoraSpec(rank=8, train_norm=False))
    times: list[float] = []
    cfg = TrainConfig(
        algorithm=algo,
        lr=LR,
        batch_size=BATCH,
        max_steps=steps,
        beta=GRPO_BETA,
        dpo_beta=DPO_BETA,
        train_norm=False,
        checkpoint_every=10**6,
    )
    last = [time.perf_counter()]

    def report(metrics: dict[str, float], ckpt: Any) -> None:
        now = time.perf_counter()
        times.append(now - last[0])
        last[0] = now

    train_role(hf, "reasoner", samples, lambda s: items[s.step_id].frame[None], cfg, report=report)
    return times


def _vidra_ray(
    model: Path, algo: str, samples: list[Any], video: Path, steps: int, workers: int, home: Path
) -> list[float]:
    from vidra.config import Settings
    from vidra.rl.ray_train import fit
    from vidra.rl.trainer import TrainConfig

    cfg = TrainConfig(
        algorithm=algo,
        lr=LR,
        batch_size=BATCH // workers,
        max_steps=steps,
        beta=GRPO_BETA,
        dpo_beta=DPO_BETA,
        train_norm=False,
        checkpoint_every=10**6,
    )
    out = home / f"ray-{algo}-{workers}"
    fit(
        Settings(data_dir=home),
        samples,
        ["reasoner"],
        cfg,
        str(model),
        {},
        {"toy": str(video)},
        out,
        None,
        num_workers=workers,
        name=f"bench-{algo}-{workers}",
    )
    lines = [json.loads(x) for x in (out / "progress.jsonl").read_text().splitlines()]
    return [(BATCH // workers) / m["metrics"]["samples_per_s"] for m in lines]


def _peft_config() -> Any:
    from vidra.models.adapters import LoraSpec

    return LoraSpec(rank=8, train_norm=False).to_peft()


class _StepTimer:
    def __init__(self) -> None:
        self.times: list[float] = []
        self.lengths: list[float] = []
        self._t0 = 0.0

    def callback(self) -> Any:
        from transformers import TrainerCallback

        timer = self

        class CB(TrainerCallback):
            def on_step_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
                timer._t0 = time.perf_counter()

            def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
                timer.times.append(time.perf_counter() - timer._t0)

            def on_log(
                self, args: Any, state: Any, control: Any, logs: Any = None, **kw: Any
            ) -> None:
                if logs and "completions/mean_length" in logs:
                    timer.lengths.append(float(logs["completions/mean_length"]))

        return CB()


def _trl_common(steps: int, out: Path) -> dict[str, Any]:
    return {
        "output_dir": str(out),
        "per_device_train_batch_size": BATCH,
        "max_steps": steps,
        "learning_rate": LR,
        "use_cpu": True,
        "report_to": [],
        "logging_steps": 1,
        "save_strategy": "no",
        "dataloader_num_workers": 0,
        "seed": 0,
        "lr_scheduler_type": "constant",
        "warmup_steps": 0,
        "gradient_checkpointing": False,  # vidra does not recompute activations either
    }


def _prompt(it: Any) -> list[dict[str, Any]]:
    return [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": it.text}]}]


def _trl_grpo(model: Path, items: list[Any], steps: int, out: Path) -> tuple[list[float], float]:
    import datasets
    from PIL import Image
    from transformers import AutoModelForImageTextToText, AutoProcessor
    from trl import GRPOConfig, GRPOTrainer

    by_text = {it.text + str(k): it for k, it in enumerate(items)}
    rows = [
        {"prompt": _prompt(it), "image": Image.fromarray(it.frame), "key": key}
        for key, it in by_text.items()
    ]

    def reward(completions: list[Any], key: list[str], **kw: Any) -> list[float]:
        texts = [c if isinstance(c, str) else c[-1]["content"] for c in completions]
        return [by_text[k].reward(t) for k, t in zip(key, texts, strict=True)]

    processor = AutoProcessor.from_pretrained(model)
    timer = _StepTimer()
    trainer = GRPOTrainer(
        model=AutoModelForImageTextToText.from_pretrained(model),
        reward_funcs=reward,
        args=GRPOConfig(
            **_trl_common(steps, out),
            num_generations=G,
            max_completion_length=MAX_TOKENS,
            temperature=1.0,
            top_k=0,
            beta=GRPO_BETA,
            num_iterations=1,
        ),
        train_dataset=datasets.Dataset.from_list(rows),
        processing_class=processor,
        peft_config=_peft_config(),
        callbacks=[timer.callback()],
    )
    with contextlib.redirect_stdout(sys.stderr):  # the Trainer prints its logs
        trainer.train()
    return timer.times, float(np.mean(timer.lengths)) if timer.lengths else float(MAX_TOKENS)


def _trl_dpo(model: Path, items: list[Any], steps: int, out: Path) -> list[float]:
    import datasets
    from PIL import Image
    from transformers import AutoModelForImageTextToText, AutoProcessor
    from trl import DPOConfig, DPOTrainer

    rows = [
        {
            "prompt": _prompt(it),
            "images": [Image.fromarray(it.frame)],
            "chosen": [{"role": "assistant", "content": [{"type": "text", "text": c}]}],
            "rejected": [{"role": "assistant", "content": [{"type": "text", "text": r}]}],
        }
        for it in items
        for c, r in [(it.answer_json(), it.answer_json((it.answer + 1) % len(it.options)))]
    ]
    timer = _StepTimer()
    trainer = DPOTrainer(
        model=AutoModelForImageTextToText.from_pretrained(model),
        args=DPOConfig(**_trl_common(steps, out), beta=DPO_BETA, precompute_ref_log_probs=False),
        train_dataset=datasets.Dataset.from_list(rows),
        processing_class=AutoProcessor.from_pretrained(model),
        peft_config=_peft_config(),
        callbacks=[timer.callback()],
    )
    with contextlib.redirect_stdout(sys.stderr):
        trainer.train()
    return timer.times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=6, help="optimizer steps per measurement")
    ap.add_argument("--threads", type=int, default=2, help="torch threads (in process)")
    ap.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    args = ap.parse_args()

    import torch
    import transformers
    import trl

    import vidra
    from tests.toy import colour_items
    from vidra.models.hf import HFChatModel
    from vidra.models.protocol import SamplingParams
    from vidra.models.tiny import build_tiny
    from vidra.rl.losses import grpo_advantages

    torch.set_num_threads(args.threads)
    home = Path(tempfile.mkdtemp(prefix="vidra-bench-train-"))
    model = build_tiny(home / "tiny", seed=0)
    n_prompts = BATCH // G
    items = colour_items(BATCH * (args.steps + 1), seed=0)
    video = home / "toy.mp4"
    _write_video(items, video)
    hf = HFChatModel(model)
    tok, eos = hf.tokenizer, hf.eos_id
    report: dict[str, Any] = header(
        "train",
        torch=torch.__version__,
        transformers=transformers.__version__,
        trl=trl.__version__,
        vidra=getattr(vidra, "__version__", "dev"),
    )
    report["settings"] = {
        "batch_samples_per_step": BATCH,
        "grpo_G": G,
        "max_completion_tokens": MAX_TOKENS,
        "lora_rank": 8,
        "grpo_beta": GRPO_BETA,
        "dpo_beta": DPO_BETA,
        "steps": args.steps,
        "threads": args.threads,
        "model": "vidra tiny xs (0.8M params, 16 tokens per image)",
    }

    # GRPO: online sampling of G completions per prompt (the agents' serving path)
    gen_times, comps = [], []
    for step in range(args.steps + 1):
        prompts = items[step * n_prompts : (step + 1) * n_prompts]
        t0 = time.perf_counter()
        got = hf.generate(
            [
                it.request(None, SamplingParams(temperature=1.0, max_tokens=MAX_TOKENS, n=G))
                for it in prompts
            ]
        )
        gen_times.append(time.perf_counter() - t0)
        for c in got:
            index = step * n_prompts + c.request_index
            comps.append(c.__class__(**{**c.__dict__, "request_index": index}))
    rewards = [items[c.request_index].reward(c.text) for c in comps]
    adv = grpo_advantages(rewards, [c.request_index for c in comps])
    grpo = _samples(items, tok, eos, comps, adv.tolist())
    grpo_tokens = float(np.mean([len(s.token_ids) for s in grpo])) * BATCH
    dpo = _samples(items, tok, eos, None, None)
    dpo_tokens = float(np.mean([len(s.token_ids) + len(s.rejected_token_ids) for s in dpo])) * BATCH
    del hf

    results: dict[str, Any] = {"grpo": {}, "dpo": {}}
    gen = _median_step(gen_times)
    results["grpo"]["vidra_sampling_only"] = _throughput(gen, BATCH, grpo_tokens)
    grpo_local = _median_step(_vidra_local(model, "grpo", grpo, items, args.steps))
    results["grpo"]["vidra_train_only_local"] = _throughput(grpo_local, BATCH, grpo_tokens)
    results["grpo"]["vidra_online_step_local"] = _throughput(gen + grpo_local, BATCH, grpo_tokens)
    for w in (1, 2):
        t = _median_step(_vidra_ray(model, "grpo", grpo, video, args.steps, w, home))
        results["grpo"][f"vidra_train_only_ray_{w}_workers"] = _throughput(t, BATCH, grpo_tokens)
        results["grpo"][f"vidra_online_step_ray_{w}_workers"] = _throughput(
            gen + t, BATCH, grpo_tokens
        )
    trl_times, trl_len = _trl_grpo(model, items, args.steps, home / "trl-grpo")
    trl_step = _median_step(trl_times)
    results["grpo"]["trl_grpotrainer_step"] = _throughput(trl_step, BATCH, trl_len * BATCH)
    results["grpo"]["trl_mean_completion_tokens"] = round(trl_len, 2)
    results["grpo"]["vidra_mean_completion_tokens"] = round(grpo_tokens / BATCH, 2)

    dpo_local = _median_step(_vidra_local(model, "dpo", dpo, items, args.steps))
    results["dpo"]["vidra_local"] = _throughput(dpo_local, BATCH, dpo_tokens)
    for w in (1, 2):
        t = _median_step(_vidra_ray(model, "dpo", dpo, video, args.steps, w, home))
        results["dpo"][f"vidra_ray_{w}_workers"] = _throughput(t, BATCH, dpo_tokens)
    trl_dpo = _median_step(_trl_dpo(model, items, args.steps, home / "trl-dpo"))
    results["dpo"]["trl_dpotrainer_step"] = _throughput(trl_dpo, BATCH, dpo_tokens)

    g, d = results["grpo"], results["dpo"]
    results["ratios_vs_trl"] = {  # samples/s of vidra / samples/s of TRL at equal batch
        "grpo_online_step_local": round(trl_step / (gen + grpo_local), 2),
        "grpo_online_step_ray_1_worker": round(
            g["vidra_online_step_ray_1_workers"]["samples_per_s"]
            / g["trl_grpotrainer_step"]["samples_per_s"],
            2,
        ),
        "dpo_local": round(trl_dpo / dpo_local, 2),
        "dpo_ray_1_worker": round(
            d["vidra_ray_1_workers"]["samples_per_s"] / d["trl_dpotrainer_step"]["samples_per_s"], 2
        ),
        "target": ">= 1.0",
    }
    report.update(results)
    import ray

    ray.shutdown()
    emit(report, args.out)


if __name__ == "__main__":
    main()
