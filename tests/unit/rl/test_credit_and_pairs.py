"""Multi-turn credit, the critic's outcome pairs, the curriculum and the staleness bound,
with hand-made trajectories in a real store (hand-computed numbers)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from vidra.rl.curriculum import informativeness, order_by_curriculum
from vidra.rl.datasets import RewardSpec, build_dpo, build_grpo
from vidra.rl.rewards import Outcome, episode_rewards, evidence_credit, step_rewards
from vidra.storage import EpisodeIn, JobCreate, TrajectoryStore

from ..storage.helpers import video_in


def _step(order: int, role: str, parsed: dict[str, Any], version: str = "base",
          prompt: str = "p") -> dict[str, Any]:  # fmt: skip
    return {"order": order, "role": role, "adapter_version": version, "prompt": prompt,
            "frames": [], "completion": str(parsed), "token_ids": [len(str(parsed)), order + 1],
            "logprobs": [-0.5, -0.5], "parsed": parsed}  # fmt: skip


def _episode(
    job: str, k: int, steps: list[dict[str, Any]], rewards: list[dict[str, Any]]
) -> EpisodeIn:
    return EpisodeIn(job_id=job, rollout_index=k, answer="red", steps=steps, rewards=rewards)


@pytest.fixture
def store(tmp_path: Path):  # type: ignore[no-untyped-def]
    s = TrajectoryStore(f"sqlite:///{tmp_path / 'v.db'}")
    yield s
    s.close()


def _job(store: TrajectoryStore) -> str:
    vid = store.register_video(video_in()).id
    return store.create_job(JobCreate(video_id=vid, question="q", options=["red", "blue"],
                                      answer="red", rollouts=2)).id  # fmt: skip


def test_evidence_credit_of_tool_calls() -> None:
    assert evidence_credit([(10.0, 12.0)], [(12.5, 15.0)]) == 1.0  # within a second
    assert evidence_credit([(10.0, 11.0)], [(12.5, 15.0)]) == 0.0
    tools = [(1, [(40.0, 42.0)]), (2, [(101.0, 101.0)])]
    out = Outcome("red", 0, ["red", "blue"], "red", [True] * 3, 4, 16, 0.9,
                  evidence=[(100.0, 103.0)], tools=tools)  # fmt: skip
    steps = {(r["name"], r["step_order"]): r["value"] for r in episode_rewards(out)
             if "step_order" in r}  # fmt: skip
    # each call's cost to go: itself and the calls after it
    assert steps == {("evidence_credit", 1): 0.0, ("evidence_credit", 2): 1.0,
                     ("tool_cost_to_go", 1): -2.0, ("tool_cost_to_go", 2): -1.0}  # fmt: skip
    plain = Outcome("red", 0, ["red", "blue"], "red", [True], 4, 16, 0.9, tools=tools)
    assert {r["name"] for r in episode_rewards(plain) if "step_order" in r} == {
        "tool_cost_to_go"  # no evidence: no evidence credit
    }
    no_tools = Outcome("red", 0, ["red", "blue"], "red", [True], 4, 16, 0.9)
    assert all("step_order" not in r for r in episode_rewards(no_tools))


def test_step_credit_moves_a_step_advantage_off_its_episodes(store: TrajectoryStore) -> None:
    """Every step of every role gets its episode's group advantage (planner, each tool call,
    reasoner, critic); the search credited with the evidence gets its step credit on top."""
    job = _job(store)
    for k, (acc, credit) in enumerate([(1.0, 1.0), (0.0, 0.0)]):
        steps = [
            _step(0, "planner", {"look_for": "red"}, prompt="plan"),
            _step(1, "selector", {"tool": "search"}, prompt="search"),
            _step(2, "selector", {"tool": "inspect"}, prompt="inspect"),
            _step(3, "reasoner", {"answer": "red"}, prompt="answer"),
            _step(4, "critic", {"score": 0.9, "accept": True}, prompt="critique"),
        ]
        store.record_episode(_episode(job, k, steps, [
            {"name": "accuracy", "value": acc},
            {"name": "evidence_credit", "value": credit, "step_order": 1},
        ]))  # fmt: skip
    spec = RewardSpec({"accuracy": 1.0}, {"evidence_credit": 0.5})
    right = {e.id for e in store.episodes_of_job(job) if e.rollout_index == 0}
    adv = {(s.episode_id in right, s.prompt): round(s.advantage, 4)
           for s in build_grpo(store, spec).samples}  # fmt: skip
    # the group's +1 / -1 everywhere; the search's credit 1 against the group's mean 0.5
    assert adv == {
        **{(True, p): 1.0 for p in ("plan", "inspect", "answer", "critique")},
        **{(False, p): -1.0 for p in ("plan", "inspect", "answer", "critique")},
        (True, "search"): 1.0 + 0.5 * (1.0 - 0.5),
        (False, "search"): -1.0 + 0.5 * (0.0 - 0.5),
    }
    no_steps = RewardSpec({"accuracy": 1.0}, {})
    assert {round(s.advantage, 4) for s in build_grpo(store, no_steps).samples} == {-1.0, 1.0}


def test_a_step_with_several_step_components_gets_each_ones_credit(
    store: TrajectoryStore,
) -> None:
    """Two step-level components on one step add up, each against its own group mean (a
    step's second component used to overwrite its first)."""
    job = _job(store)
    for k, (evidence, novelty) in enumerate([(1.0, 0.0), (0.0, 1.0)]):
        steps = [_step(0, "selector", {"tool": "search"}, prompt="search"),
                 _step(1, "reasoner", {"answer": "red"}, prompt="answer")]  # fmt: skip
        store.record_episode(_episode(job, k, steps, [
            {"name": "accuracy", "value": 1.0 - k},
            {"name": "evidence_credit", "value": evidence, "step_order": 0},
            {"name": "novelty", "value": novelty, "step_order": 0},
        ]))  # fmt: skip
    spec = RewardSpec({"accuracy": 1.0}, {"evidence_credit": 0.5, "novelty": 0.2})
    first = {e.id for e in store.episodes_of_job(job) if e.rollout_index == 0}
    adv = {(s.episode_id in first, s.prompt): round(s.advantage, 4)
           for s in build_grpo(store, spec).samples}  # fmt: skip
    assert adv == {
        (True, "answer"): 1.0,
        (False, "answer"): -1.0,
        (True, "search"): round(1.0 + 0.5 * (1.0 - 0.5) + 0.2 * (0.0 - 0.5), 4),
        (False, "search"): round(-1.0 + 0.5 * (0.0 - 0.5) + 0.2 * (1.0 - 0.5), 4),
    }


def test_the_cost_to_go_compares_each_call_with_the_groups_calls_at_its_turn(
    store: TrajectoryStore,
) -> None:
    """``tool_cost_to_go`` with its per-turn baseline: a first search that led to a closing
    inspect is charged against a first call that inspected at once; the closing inspect,
    the only second call in the group, is charged nothing (an episode-level cost would
    charge it the search before it)."""
    job = _job(store)
    calls = [["search", "inspect"], ["inspect"]]
    for k, tools in enumerate(calls):
        steps = [_step(i, "selector", {"tool": tool, "surfaced": []}, prompt=f"{tool}{i}")
                 for i, tool in enumerate(tools)]  # fmt: skip
        rewards = step_rewards(Outcome("red", 0, ["red", "blue"], "red", [True], 1, 16, None,
                                       tools=[(i, []) for i in range(len(tools))]))  # fmt: skip
        store.record_episode(_episode(job, k, steps, [*rewards, {"name": "accuracy",
                                                                  "value": float(k)}]))  # fmt: skip
    spec = RewardSpec({"accuracy": 1.0}, {"tool_cost_to_go": 0.2})
    adv = {s.prompt: round(s.advantage, 4) for s in build_grpo(store, spec).samples}
    # episodes -1 / +1 (accuracy); first calls' costs to go -2 and -1 against their mean -1.5
    assert adv == {"search0": round(-1.0 + 0.2 * -0.5, 4), "inspect1": -1.0,
                   "inspect0": round(1.0 + 0.2 * 0.5, 4)}  # fmt: skip


def test_critic_pairs_prefer_the_decision_that_led_to_the_right_answer(
    store: TrajectoryStore,
) -> None:
    job = _job(store)
    prompt = "Proposed answer: blue (confidence 0.80; evidence at none)."
    # rollout 0: critic rejects 'blue', the episode ends right; rollout 1: accepts it, wrong
    store.record_episode(_episode(job, 0, [_step(0, "critic", {"accept": False}, prompt=prompt)],
                                  [{"name": "accuracy", "value": 1.0}]))  # fmt: skip
    store.record_episode(_episode(job, 1, [_step(0, "critic", {"accept": True}, prompt=prompt)],
                                  [{"name": "accuracy", "value": 0.0}]))  # fmt: skip
    ds = build_dpo(store, RewardSpec({"accuracy": 1.0}), roles=["critic"])
    [pair] = ds.samples
    chosen = store.get_episode(pair.episode_id)
    assert chosen.episode.rollout_index == 0 and pair.reward == 1.0  # the rejection, right
    assert pair.token_ids == [len(str({"accept": False})), 1]
    assert pair.rejected_token_ids == [len(str({"accept": True})), 1]
    assert ds.counts["critic_pairs"] == 1
    # the same answer judged on other evidence (another prompt) is no pair for either
    other = _job(store)
    for k, (accept, acc) in enumerate([(False, 1.0), (True, 0.0)]):
        seen = prompt.replace("none", f"0:0{k}.0")
        store.record_episode(_episode(other, k, [_step(0, "critic", {"accept": accept},
                                                       prompt=seen)],
                                      [{"name": "accuracy", "value": acc}]))  # fmt: skip
    again = build_dpo(store, RewardSpec({"accuracy": 1.0}), roles=["critic"])
    assert again.counts["critic_pairs"] == 1 and again.samples[0].step_id == pair.step_id


def test_the_curriculum_prefers_questions_answered_right_about_half_the_time() -> None:
    assert informativeness(0.5, 4) == 0.25 and informativeness(1.0, 4) == 0.0
    assert informativeness(None) == 0.25 and informativeness(0.0, 1) == 0.25  # too few tries
    rates = {"solved": (1.0, 8), "hopeless": (0.0, 8), "half": (0.5, 8), "mostly": (0.75, 8)}
    items = ["solved", "new", "hopeless", "mostly", "half"]
    assert order_by_curriculum(items, str, rates) == ["new", "half", "mostly", "solved", "hopeless"]


def test_pass_rates_come_from_the_record(store: TrajectoryStore) -> None:
    job = _job(store)
    for k, acc in enumerate([1.0, 0.0]):
        store.record_episode(_episode(job, k, [], [{"name": "accuracy", "value": acc}]))
    key = store.get_job(job).question_key
    assert store.pass_rates([key, "other"]) == {key: (0.5, 2)}
    # an evaluation run's (greedy) answer of the same question is not a training pass rate
    graded = _job(store)
    store.record_episode(_episode(graded, 0, [], [{"name": "accuracy", "value": 1.0}]))
    run = store.create_eval_run("synthetic", "k", {})
    store.put_eval_question(run.id, "q1", "done", job_id=graded)
    assert store.pass_rates([key]) == {key: (0.5, 2)}
    assert store.pass_rates([key], evaluations=True) == {key: (2 / 3, 3)}


def test_staleness_drops_groups_sampled_by_old_versions(store: TrajectoryStore) -> None:
    job = _job(store)
    for k, (acc, version) in enumerate([(1.0, "reasoner@new"), (0.0, "reasoner@old")]):
        steps = [_step(0, "reasoner", {"answer": "red"}, version=version)]
        store.record_episode(_episode(job, k, steps, [{"name": "accuracy", "value": acc}]))
    spec = RewardSpec({"accuracy": 1.0}, {})
    kept = build_grpo(store, spec, allowed_versions={"reasoner": {"reasoner@new", "reasoner@old"}})
    assert len(kept.samples) == 2
    stale = build_grpo(store, spec, allowed_versions={"reasoner": {"reasoner@new"}})
    assert (
        stale.samples == []
        and stale.counts["stale"] == 1
        and "too stale" in str(stale.empty_reason)
    )
