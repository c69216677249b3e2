"""A Ray Train worker builds its model exactly as sampling did: with ``model.max_pixels`` set,
the replayed prompt has the visual tokens the sampled one had, and teacher-forced logprobs
equal the logprobs recorded at sampling time (GRPO's importance ratios depend on it)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from vidra.api import Client
from vidra.config import Settings
from vidra.video.synthetic import WorldSpec, generate_questions, make_world, render_world

pytestmark = pytest.mark.integration
MAX_PIXELS = 56 * 56  # well under the frames' 160 x 90: fewer visual tokens than by default


def _replay(config: dict[str, Any]) -> None:
    """Ray Train worker body: rebuild each recorded step's request and score it."""
    import ray.train
    import torch

    from vidra.models.protocol import SamplingParams
    from vidra.rl.replay import replay_request, step_frames
    from vidra.video import open_reader

    settings = Settings.model_validate_json(config["settings"])
    hf = config["build"](config["settings"], config["base"], {})
    reader = open_reader(settings)
    out = []
    for st in config["steps"]:
        frames = step_frames([tuple(f) for f in st["frames"]], reader, config["paths"],
                             settings.agents.frame_size)  # fmt: skip
        req = replay_request(st["messages"], frames, None, SamplingParams(temperature=0.0))
        with torch.no_grad():
            lps = hf.token_logprobs(req, st["token_ids"]).tolist()
        prompt = int(hf._inputs([req])["input_ids"].shape[1])
        out.append({"prompt_tokens": prompt, "logprobs": lps})
    Path(config["out"]).write_text(json.dumps(out))
    ray.train.report({"steps": float(len(out))})


def test_ray_train_worker_replays_visual_tokens_and_logprobs(
    tiny_model_path: Path, tmp_path: Path
) -> None:
    import ray
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    from vidra.models.hf import HFChatModel
    from vidra.models.protocol import SamplingParams
    from vidra.rl.replay import replay_request, step_frames
    from vidra.runtime import training_model
    from vidra.video import open_reader

    settings = Settings(data_dir=tmp_path / "home")
    settings.model.path = str(tiny_model_path)
    settings.model.max_pixels = MAX_PIXELS
    settings.agents.max_tokens = 12
    settings.agents.strategy = "uniform"
    world = make_world(WorldSpec(duration=60, fps=4, width=160, height=90, seed=2))
    video = render_world(world, tmp_path / "w.mp4", gop_s=4)
    q = generate_questions(world, per_kind=1)[0]
    with Client(settings) as client:
        ans = client.submit(
            video, q.text, q.options, q.answer, budget={"max_frames": 4, "max_rounds": 1}
        ).result(timeout=600)
        steps = [s for s in client.episode(ans.episode_id).steps if s.frames]
        paths = {v: client.store.get_video(v).path for s in steps for v, _ in s.frames}
    assert steps
    result = tmp_path / "replayed.json"
    try:
        TorchTrainer(
            _replay,
            train_loop_config={
                "settings": settings.model_dump_json(),
                "base": str(tiny_model_path),
                "build": training_model,
                "paths": paths,
                "out": str(result),
                "steps": [
                    {"frames": s.frames, "messages": s.messages, "token_ids": s.token_ids}
                    for s in steps
                ],
            },
            scaling_config=ScalingConfig(num_workers=1),
            run_config=RunConfig(storage_path=str(tmp_path / "ray"), name="replay"),
        ).fit()
    finally:
        ray.shutdown()
    replayed = json.loads(result.read_text())
    for s, r in zip(steps, replayed, strict=True):
        assert r["prompt_tokens"] == s.prompt_tokens  # the same visual tokens
        assert max(abs(a - b) for a, b in zip(r["logprobs"], s.logprobs, strict=True)) < 1e-4
    # the defect this guards against: a model built without the settings sees other tokens
    naive = HFChatModel(tiny_model_path)
    reader = open_reader(settings)
    frames = step_frames(steps[0].frames, reader, paths, settings.agents.frame_size)
    req = replay_request(steps[0].messages, frames, None, SamplingParams())
    assert int(naive._inputs([req])["input_ids"].shape[1]) > steps[0].prompt_tokens
