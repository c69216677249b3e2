"""Training on real replayed steps of the tiny model: the right parameters move, NaN stops
training at the last good checkpoint, and a run resumes from its checkpoint."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch

from vidra.api import Client
from vidra.errors import ConfigError
from vidra.models.adapters import LoraSpec, save_adapter, touches_vision
from vidra.models.hf import HFChatModel
from vidra.models.protocol import SamplingParams
from vidra.rl.datasets import RewardSpec, build_grpo, build_sft, decision_tokens
from vidra.rl.replay import replay_request, step_frames
from vidra.rl.trainer import TrainConfig, TrainingDiverged, _batch_losses, train_role

from .helpers import record_groups, tiny_settings


@pytest.fixture(scope="module")
def recorded(tiny_model_path: Path, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    settings = tiny_settings(tmp_path_factory.mktemp("rl-home"), tiny_model_path)
    record_groups(settings, seed=3, questions=3, rollouts=4)
    client = Client(settings)
    yield client
    client.close()


def _paths(client: Client) -> dict[str, str]:
    return {v: client.store.get_video(v).path for v in {j.video_id for j in client.store.jobs()}}


def _frames_of(client: Client):  # type: ignore[no-untyped-def]
    paths = _paths(client)

    def frames(sample):  # type: ignore[no-untyped-def]
        return step_frames(sample.frames, client.reader, paths, client.settings.agents.frame_size)

    return frames


def _snapshot(model: torch.nn.Module, needle: str) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters() if needle(n)}  # type: ignore[operator]


def test_grpo_moves_only_the_trained_adapter(
    recorded: Client, tiny_model_path: Path, tmp_path: Path
) -> None:
    spec = RewardSpec({"accuracy": 1.0, "judge": 1.0})
    ds = build_grpo(recorded.store, spec, roles=["reasoner"])
    assert ds.samples, ds.empty_reason
    hf = HFChatModel(tiny_model_path)
    hf.add_adapter("planner", LoraSpec(train_norm=True))
    hf.add_adapter("reasoner", LoraSpec(train_norm=True))
    before_base = _snapshot(hf.model, lambda n: "lora_" not in n and "modules_to_save" not in n)
    before_planner = _snapshot(hf.model, lambda n: ".planner" in n)
    metrics = train_role(
        hf,
        "reasoner",
        ds.samples,
        _frames_of(recorded),
        TrainConfig(algorithm="grpo", lr=1e-2, batch_size=4, max_steps=2),
        checkpoint_dir=tmp_path / "ckpt",
    )
    assert metrics["step"] == 2 and "kl" in metrics and "clip_fraction" in metrics
    after = dict(hf.model.named_parameters())
    moved = [
        n
        for n, p in after.items()
        if ".reasoner" in n and "lora_B" in n and float(p.detach().abs().sum()) > 0
    ]
    assert moved, "the reasoner's LoRA B matrices start at zero and must have moved"
    assert all(torch.equal(after[n], p) for n, p in before_base.items())
    assert all(torch.equal(after[n], p) for n, p in before_planner.items())
    assert (tmp_path / "ckpt" / "step-000002" / "adapter" / "adapter_config.json").is_file()


def test_decision_tokens_loss_is_the_loss_of_the_decision_alone(
    recorded: Client, tiny_model_path: Path
) -> None:
    """``loss_tokens="decision"`` on a whole reasoner reply gives the loss (GRPO and SFT) of
    the reply cut after its answer (logprobs are causal), and differs from the loss over all
    its tokens."""
    ds = build_grpo(recorded.store, RewardSpec({"accuracy": 1.0, "judge": 1.0}),
                    roles=["reasoner"])  # fmt: skip
    assert ds.samples, ds.empty_reason
    hf = HFChatModel(tiny_model_path)
    hf.add_adapter("reasoner")
    reply = '{"answer": "red cube", "confidence": 0.4, "evidence": [12.0]}'
    ids = hf.tokenizer.encode(reply, add_special_tokens=False)
    k = decision_tokens("reasoner", ids, hf.tokenizer.decode)
    assert 0 < k < len(ids) and hf.tokenizer.decode(ids[:k]).startswith('{"answer": "red cube"')
    frames = [_frames_of(recorded)(ds.samples[0])]
    req = replay_request(ds.samples[0].messages, frames[0], "reasoner", SamplingParams())
    # sampling-time logprobs near the model's own, so the ratios are not all clipped
    old = [float(x) + 0.1 * (i % 3) for i, x in enumerate(hf.token_logprobs(req, ids))]
    whole = dataclasses.replace(ds.samples[0], token_ids=ids, old_logprobs=old, advantage=0.7)
    cut = dataclasses.replace(whole, token_ids=ids[:k], old_logprobs=old[:k])

    def loss(sample: object, tokens: str, algorithm: str = "grpo") -> float:
        cfg = TrainConfig(algorithm=algorithm, loss_tokens=tokens)
        return float(_batch_losses(hf, "reasoner", [sample], frames, cfg)[0][0])  # type: ignore[list-item]

    for algorithm in ("grpo", "sft"):  # SFT: the likelihood of the decision alone
        decided = loss(whole, "decision", algorithm)
        assert decided == pytest.approx(loss(cut, "all", algorithm), abs=1e-5), algorithm
        assert abs(loss(whole, "all", algorithm) - decided) > 1e-3, algorithm


def _trainer_state(ckpt: Path) -> dict:  # type: ignore[type-arg]
    return torch.load(ckpt / "trainer.pt", weights_only=False)  # type: ignore[no-any-return]


def test_resume_equals_an_uninterrupted_run(
    recorded: Client, tiny_model_path: Path, tmp_path: Path
) -> None:
    """2 steps, stop, resume for the 3rd == 3 steps in one go: parameters and optimizer
    state (Adam moments and step counts) alike, not only the step number."""
    ds = build_sft(recorded.store, RewardSpec({"format": 1.0}), roles=["planner"], threshold=-1)
    assert len(ds.samples) >= 6
    frames = _frames_of(recorded)

    def cfg(steps: int) -> TrainConfig:
        return TrainConfig(algorithm="sft", lr=1e-3, batch_size=2, max_steps=steps,
                           checkpoint_every=1)  # fmt: skip

    train_role(HFChatModel(tiny_model_path), "planner", ds.samples, frames, cfg(3), tmp_path / "u")
    train_role(HFChatModel(tiny_model_path), "planner", ds.samples, frames, cfg(2), tmp_path / "a")
    m = train_role(
        HFChatModel(tiny_model_path), "planner", ds.samples, frames, cfg(3), tmp_path / "b",
        resume_from=tmp_path / "a" / "step-000002",
    )  # fmt: skip
    assert m["step"] == 3  # continued at step 2, did one more
    whole, resumed = (
        _trainer_state(tmp_path / "u" / "step-000003"),
        _trainer_state(tmp_path / "b" / "step-000003"),
    )
    assert len(whole["params"]) == len(resumed["params"]) > 0
    for a, b in zip(whole["params"], resumed["params"], strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)
    moments_a, moments_b = whole["optimizer"]["state"], resumed["optimizer"]["state"]
    assert moments_a.keys() == moments_b.keys() and moments_a
    for key in moments_a:
        for name in ("exp_avg", "exp_avg_sq", "step"):
            torch.testing.assert_close(moments_a[key][name], moments_b[key][name], atol=1e-6,
                                       rtol=0)  # fmt: skip
    stopped = _trainer_state(tmp_path / "a" / "step-000002")  # and the 3rd step did move them
    assert not torch.equal(stopped["params"][0], whole["params"][0])


def test_nan_guard_stops_at_the_last_good_checkpoint(
    recorded: Client, tiny_model_path: Path, tmp_path: Path
) -> None:
    ds = build_sft(recorded.store, RewardSpec({"format": 1.0}), roles=["planner"], threshold=-1)
    cfg = TrainConfig(algorithm="sft", lr=1e-3, batch_size=2, max_steps=2, checkpoint_every=1)
    bad = HFChatModel(tiny_model_path)
    bad.add_adapter("planner")
    with torch.no_grad():
        for n, p in bad.model.named_parameters():
            if ".planner" in n and "lora_A" in n:
                p.fill_(float("nan"))
    with pytest.raises(TrainingDiverged, match="last good checkpoint"):
        train_role(bad, "planner", ds.samples, _frames_of(recorded), cfg, tmp_path / "c")


@pytest.mark.integration  # real Ray Train
def test_ray_train_with_two_ddp_workers(
    recorded: Client, tiny_model_path: Path, tmp_path: Path
) -> None:
    """Two workers really ran (ranks 0 and 1 each logged every step, on different shards:
    different losses) and their gradients were all-reduced (the same clipped-gradient norm
    on both ranks at every step)."""
    import json

    import ray

    from vidra.rl.ray_train import fit
    from vidra.runtime import training_model

    ds = build_grpo(recorded.store, RewardSpec({"judge": 1.0}), roles=["reasoner"])
    paths = _paths(recorded)
    cfg = TrainConfig(algorithm="grpo", lr=1e-2, batch_size=2, max_steps=2)
    try:
        out = fit(
            recorded.settings,
            ds.samples,
            ["reasoner"],
            cfg,
            str(tiny_model_path),
            {},
            paths,
            tmp_path / "adapters",
            None,
            num_workers=2,
            name="ddp-test",
            build=training_model,
        )
    finally:
        ray.shutdown()
    trained = HFChatModel(tiny_model_path, adapters={"reasoner": out / "reasoner"})
    lora_b = [p for n, p in trained.model.named_parameters() if "lora_B" in n]
    assert lora_b and any(float(p.abs().sum()) > 0 for p in lora_b)
    lines = [json.loads(x) for x in (out / "progress.jsonl").read_text().splitlines()]
    by_step: dict[int, dict[int, dict]] = {}  # type: ignore[type-arg]
    for x in lines:
        by_step.setdefault(x["step"], {})[x["rank"]] = x["metrics"]
    assert sorted(by_step) == [1, 2] and all(sorted(r) == [0, 1] for r in by_step.values())
    assert len({x["pid"] for x in lines}) == 2
    for ranks in by_step.values():
        assert ranks[0]["grad_norm"] == pytest.approx(ranks[1]["grad_norm"], rel=1e-5)
    assert any(r[0]["loss"] != r[1]["loss"] for r in by_step.values())


@pytest.mark.integration  # real Ray Train
def test_ray_train_worker_killed_mid_run_resumes_from_last_checkpoint(
    recorded: Client, tiny_model_path: Path, tmp_path: Path
) -> None:
    """SIGKILL the Ray Train worker after its second checkpoint: Ray Train restarts the
    worker group once and the new worker continues from a checkpoint, not from step 0."""
    import json
    import os
    import shutil
    import signal
    import tempfile
    import threading
    import time
    import uuid

    import ray

    from vidra.rl.ray_train import fit
    from vidra.runtime import training_model

    ds = build_grpo(recorded.store, RewardSpec({"judge": 1.0}), roles=["reasoner"])
    paths = _paths(recorded)
    cfg = TrainConfig(
        algorithm="grpo", lr=1e-3, batch_size=1, epochs=4, max_steps=24, checkpoint_every=3
    )
    out = tmp_path / "adapters"
    progress = out / "progress.jsonl"
    killed: list[int] = []
    name = f"kill-test-{uuid.uuid4().hex[:8]}"

    def lines() -> list[dict]:  # type: ignore[type-arg]
        if not progress.is_file():
            return []
        text = progress.read_text()  # whole lines only: the worker may be mid-append
        return [json.loads(x) for x in text[: text.rfind("\n") + 1].splitlines() if x.strip()]

    def killer() -> None:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            seen = lines()
            if any(x["step"] >= 7 for x in seen):
                killed.append(seen[-1]["pid"])
                os.kill(seen[-1]["pid"], signal.SIGKILL)
                return
            time.sleep(0.02)

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    try:
        fit(
            recorded.settings,
            ds.samples,
            ["reasoner"],
            cfg,
            str(tiny_model_path),
            {},
            paths,
            out,
            None,
            num_workers=1,
            name=name,
            build=training_model,
        )
    finally:
        ray.shutdown()
        left = sorted(Path(tempfile.gettempdir()).glob(f"{name}-*"))
        for d in left:
            shutil.rmtree(d, ignore_errors=True)
    thread.join(timeout=5)
    # the restarted worker removed its step checkpoints and its copy of the one it resumed
    # from; only the SIGKILLed worker's scratch (and a checkpoint it was reporting) is left
    assert not [d for d in left if "-resume-" in d.name], left
    assert len([d for d in left if "-rank0-" in d.name]) <= 1, left
    assert killed, "the worker was never killed (training finished too fast?)"
    seen = lines()
    first = [x for x in seen if x["pid"] == killed[0]]
    second = [x for x in seen if x["pid"] != killed[0]]
    assert first[0]["step"] == 1 and first[0]["resumed_from"] is None
    checkpoints = [x["step"] for x in first if x["checkpoint"]]
    assert checkpoints[:2] == [3, 6]
    assert second, "no restarted worker"
    # Ray Train registers a reported checkpoint asynchronously (its controller polls the
    # workers), so the restart resumes from the last checkpoint it had registered: 3 or 6.
    resumed = second[0]["resumed_from"]
    assert resumed in checkpoints and resumed >= 3
    assert [x["step"] for x in second] == list(range(resumed + 1, 25))
    assert (out / "reasoner" / "adapter_config.json").is_file()


@pytest.mark.parametrize("tower_lr", [0.0, 1e-4])
def test_cold_start_sft_trains_the_vision_tower_only_at_its_own_rate(
    tiny_model_path: Path, tower_lr: float
) -> None:
    """The tower stays frozen by default and moves, less than the language model, when it
    has a rate of its own; afterwards nothing is left trainable."""
    from tests.toy import colour_items
    from vidra.models.protocol import SamplingParams
    from vidra.rl.trainer import cold_start_sft

    torch.manual_seed(0)
    hf = HFChatModel(tiny_model_path)
    items = colour_items(8, seed=0)
    examples = [
        (it.request(None, SamplingParams()),
         [*hf.tokenizer.encode(it.answer_json(), add_special_tokens=False), hf.eos_id])
        for it in items
    ]  # fmt: skip
    tower = _snapshot(hf.model, lambda n: "visual.blocks" in n)
    lm = _snapshot(hf.model, lambda n: "visual" not in n)
    cold_start_sft(hf, examples, epochs=1, lr=1e-3, batch=4, tower_lr=tower_lr)
    params = dict(hf.model.named_parameters())

    def moved(before: dict[str, torch.Tensor]) -> float:
        return max(float((params[n] - p).abs().max()) for n, p in before.items())

    assert moved(lm) > 1e-4
    if tower_lr == 0:
        assert moved(tower) == 0.0
    else:
        assert 0.0 < moved(tower) < moved(lm)
    assert not any(p.requires_grad for p in hf.model.parameters())


def test_a_vision_tower_adapter_trains_the_tower_and_runs_alone_in_a_batch(
    recorded: Client, tiny_model_path: Path, tmp_path: Path
) -> None:
    """``lora_targets="text+vision"`` adapts the vision tower and its merger, and training
    moves them (what the role sees in a frame changes); the default adapter has no tower
    weights. A tower adapter's rows are not mixed with other adapters' in one batch (the
    tower runs over every row's patches at once), and its saved config says what it adapts."""
    ds = build_grpo(recorded.store, RewardSpec({"accuracy": 1.0, "judge": 1.0}),
                    roles=["reasoner"])  # fmt: skip
    assert ds.samples, ds.empty_reason
    hf = HFChatModel(tiny_model_path)
    hf.add_adapter("planner", LoraSpec())  # the language model only, no whole modules
    assert hf._mixes_adapters()
    assert not [n for n, _ in hf.model.named_parameters() if ".planner" in n and "visual" in n]
    cfg = TrainConfig(algorithm="grpo", lr=1e-2, batch_size=4, max_steps=2, train_norm=False,
                      lora_targets="text+vision")  # fmt: skip
    train_role(hf, "reasoner", ds.samples, _frames_of(recorded), cfg, checkpoint_dir=tmp_path / "c")
    tower = {n: p for n, p in hf.model.named_parameters() if ".reasoner" in n and "visual" in n}
    assert any("merger" in n for n in tower) and any("blocks.0.attn.qkv" in n for n in tower)
    moved = [n for n, p in tower.items() if "lora_B" in n and float(p.detach().abs().sum()) > 0]
    assert moved, "the tower's LoRA B matrices start at zero and must have moved"
    assert not hf._mixes_adapters()
    saved = save_adapter(hf.model, "reasoner", tmp_path / "reasoner")
    assert touches_vision(json.loads((saved / "adapter_config.json").read_text()))
    plain = save_adapter(hf.model, "planner", tmp_path / "planner")
    assert not touches_vision(json.loads((plain / "adapter_config.json").read_text()))
    with pytest.raises(ConfigError, match="lora_targets 'vision'"):
        TrainConfig(lora_targets="vision").validate()
