"""The reasoner's and the critic's per-step groups: fresh replies of real tiny models to their
recorded prompts, each judged by its own decision, with the sampling logprobs the GRPO ratio
needs."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest
import torch

from vidra.agents.reasoner import answer_prefixes
from vidra.api import Client
from vidra.models import resolve_model_path
from vidra.models.hf import HFChatModel
from vidra.models.protocol import SamplingParams
from vidra.rl.replay import batch_step_frames, replay_request
from vidra.rl.resample import answer_reward, critic_reward, recorded_prompts, resample
from vidra.rl.rewards import accuracy
from vidra.video.synthetic import WorldSpec, make_world, render_world

from .helpers import record_groups, tiny_settings


@pytest.fixture(scope="module")
def single(tiny_model_path: Path, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """Two questions answered once each (no groups), and one question without a truth."""
    settings = tiny_settings(tmp_path_factory.mktemp("resample-home"), tiny_model_path)
    record_groups(settings, seed=4, questions=2, rollouts=1)
    client = Client(settings)
    world = make_world(WorldSpec(duration=60, fps=4, width=160, height=90, seed=9))
    video = render_world(world, settings.data_dir / "untold.mp4", gop_s=4)
    client.submit(video, "What shape appears first?", options=["cube", "ball"],
                  budget={"max_frames": 4, "max_rounds": 1}).result(timeout=900)  # fmt: skip
    yield client
    client.close()


def test_answer_reward_judges_the_reply_alone() -> None:
    options = ["red cube", "blue ball"]
    assert answer_reward('{"answer": "blue ball", "confidence": 0.3}', options, "blue ball") == 1.0
    assert answer_reward('{"answer": "red cube"', options, "blue ball") == 0.0
    assert answer_reward("}}{ not json", options, "blue ball") is None  # garbage answers nothing


def test_resampled_replies_are_judged_by_their_own_answer(
    single: Client, tiny_model_path: Path
) -> None:
    store = single.store
    prompts, counts = recorded_prompts(store)
    reasoner_steps = [s for t in store.iter_trajectories() for s in t.steps
                      if s.role == "reasoner" and s.token_ids]  # fmt: skip
    assert counts["steps"] == len(reasoner_steps) and counts["no_truth"] >= 1
    assert len(prompts) == counts["steps"] - counts["no_truth"] - counts["duplicate"] >= 2
    assert all(p.truth in (p.options or []) for p in prompts)
    paths = {v: store.get_video(v).path for v in {j.video_id for j in store.jobs()}}
    size = single.settings.agents.frame_size

    def frames_of(refs):  # type: ignore[no-untyped-def]
        return batch_step_frames(refs, single.reader, paths, size)

    hf = HFChatModel(tiny_model_path)
    torch.manual_seed(0)
    sampling = SamplingParams(temperature=1.0, max_tokens=12)
    ds = resample(hf, prompts, frames_of, sampling, group=6, adapter=None, batch=3)
    assert ds.counts["prompts"] == len(prompts) and ds.counts["replies"] == 6 * len(prompts)
    mixed = ds.counts["prompts"] - ds.counts["zero_variance"]
    assert mixed >= 1 and len(ds.samples) == 6 * mixed
    by_step: dict[int, list] = defaultdict(list)  # type: ignore[type-arg]
    for s in ds.samples:
        by_step[s.step_id].append(s)
    at = {p.step.id: p for p in prompts}
    for step_id, group in by_step.items():
        p = at[step_id]
        assert len(group) == 6 and sum(s.advantage for s in group) == pytest.approx(0, abs=1e-6)
        assert {s.reward for s in group} == {0.0, 1.0}  # a mixed group: right and wrong replies
        for s in group:
            text = hf.tokenizer.decode(s.token_ids, skip_special_tokens=True)
            assert any(text.startswith(x) for x in answer_prefixes(p.options))  # constrained
            assert s.reward == (answer_reward(text, p.options, p.truth) or 0.0)
            assert s.advantage == pytest.approx(s.reward - sum(g.reward for g in group) / 6)
            assert (s.messages, s.frames, s.prompt) == (p.step.messages, p.step.frames,
                                                        p.step.prompt)  # fmt: skip
        # the stored logprobs are the sampling policy's own: the GRPO ratio starts at 1
        req = replay_request(p.step.messages, frames_of([p.step.frames])[0], None, sampling)
        forced = hf.batch_token_logprobs([req] * 6, [s.token_ids for s in group])
        for s, lp in zip(group, forced, strict=True):
            assert torch.allclose(lp, torch.tensor(s.old_logprobs), atol=1e-3)


def test_critic_reward_judges_the_verdict_against_the_answer() -> None:
    accept = '{"score": 0.9, "accept": true, "feedback": ""}'
    revise = '{"score": 0.1, "accept": false, "feedback": "look again"}'
    low = '{"score": 0.2, "accept": true}'  # accepts in words, scores below the threshold
    assert critic_reward(accept, True) == 1.0 and critic_reward(accept, False) == 0.0
    assert critic_reward(revise, False) == 1.0 and critic_reward(revise, True) == 0.0
    assert critic_reward(low, True) == 0.0 and critic_reward(low, True, threshold=0.1) == 1.0
    assert critic_reward("accept, it looks fine", True) is None  # garbage decides nothing


def test_critic_groups_reward_the_verdict_the_judged_answer_deserved(single: Client) -> None:
    """Each recorded critic prompt is labelled by its round's answer; vidra-tiny's fresh
    verdicts on it are rewarded 1 for accepting a right answer or sending a wrong one back."""
    store = single.store
    prompts, counts = recorded_prompts(store, "critic")
    steps = [s for t in store.iter_trajectories() for s in t.steps
             if s.role == "critic" and s.token_ids]  # fmt: skip
    assert counts["steps"] == len(steps)
    left = counts["no_truth"] + counts["duplicate"] + counts["no_answer"]
    assert len(prompts) == counts["steps"] - left >= 2
    for p in prompts:
        rounds = store.get_episode(p.episode_id).steps
        judged = [s for s in rounds if s.role == "reasoner" and s.order < p.step.order][-1]
        assert isinstance(judged.parsed, dict)
        assert f"Proposed answer: {judged.parsed['answer']} " in p.step.prompt
        right = accuracy(judged.parsed["answer"], p.truth, p.options, judged.parsed["choice"])
        assert p.proposed_right == (right == 1.0)
    paths = {v: store.get_video(v).path for v in {j.video_id for j in store.jobs()}}
    size = single.settings.agents.frame_size

    def frames_of(refs):  # type: ignore[no-untyped-def]
        return batch_step_frames(refs, single.reader, paths, size)

    hf = HFChatModel(resolve_model_path("vidra-tiny"))
    torch.manual_seed(0)
    sampling = SamplingParams(temperature=1.0, max_tokens=48)
    ds = resample(hf, prompts, frames_of, sampling, group=8, adapter=None, role="critic", batch=4)
    mixed = ds.counts["prompts"] - ds.counts["zero_variance"]
    assert ds.counts["replies"] == 8 * len(prompts) and mixed >= 1
    assert len(ds.samples) == 8 * mixed and {s.role for s in ds.samples} == {"critic"}
    at = {p.step.id: p for p in prompts}
    by_step: dict[int, list] = defaultdict(list)  # type: ignore[type-arg]
    for s in ds.samples:
        by_step[s.step_id].append(s)
    for step_id, group in by_step.items():
        p = at[step_id]
        assert {s.reward for s in group} == {0.0, 1.0}
        assert sum(s.advantage for s in group) == pytest.approx(0, abs=1e-6)
        for s in group:
            text = hf.tokenizer.decode(s.token_ids, skip_special_tokens=True)
            assert s.reward == (critic_reward(text, bool(p.proposed_right)) or 0.0)
