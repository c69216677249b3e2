"""Dataset builders on a real store (SQLite) with hand-made episodes."""

from __future__ import annotations

import json
import math

import pytest

from vidra.errors import InvalidInput
from vidra.rl.datasets import RewardSpec, build_dpo, build_grpo, build_sft, decision_tokens
from vidra.storage import TrajectoryStore

from ..storage.helpers import make_episode, make_job

SPEC = RewardSpec({"accuracy": 1.0})


@pytest.fixture
def store(tmp_path):  # type: ignore[no-untyped-def]
    s = TrajectoryStore(f"sqlite:///{tmp_path / 'v.db'}")
    yield s
    s.close()


def test_grpo_groups_advantages_and_zero_variance(store: TrajectoryStore) -> None:
    j1 = make_job(store, "a", question="Q1?")
    j2 = make_job(store, "b", question="Q2?")
    j3 = make_job(store, "c", question="Q3?")
    store.record_episodes(
        [make_episode(j1, k, accuracy=float(k < 1)) for k in range(2)]
        + [make_episode(j2, k, accuracy=1.0) for k in range(2)]
        + [make_episode(j3, 0)]
    )
    ds = build_grpo(store, SPEC, roles=["reasoner"])
    # Q3 has one rollout: no group; nothing is stale without allowed versions
    assert ds.counts == {"groups": 2, "zero_variance": 1, "stale": 0}
    assert {s.role for s in ds.samples} == {"reasoner"}
    advs = sorted({round(s.advantage, 4) for s in ds.samples})
    assert advs == [-1.0, 1.0]
    assert all(len(s.old_logprobs) == len(s.token_ids) > 0 for s in ds.samples)
    assert len(ds.episode_ids) == 2 and ds.empty_reason is None
    assert ds.manifest()["reward_spec"] == {"episode": {"accuracy": 1.0}, "step": SPEC.step_weights}
    with pytest.raises(InvalidInput, match="use >= 2"):
        build_grpo(store, SPEC, min_rollouts=1)


def test_empty_datasets_say_why(store: TrajectoryStore) -> None:
    j = make_job(store)
    store.record_episode(make_episode(j, 0, accuracy=0.0))
    grpo = build_grpo(store, SPEC)
    assert not grpo.samples and "no GRPO samples: 0 groups with >= 2 rollouts" in grpo.empty_reason
    sft = build_sft(store, SPEC, threshold=1.0)
    assert "reached the reward threshold 1.0" in (sft.empty_reason or "")


def test_dpo_pairs_and_sft(store: TrajectoryStore) -> None:
    j = make_job(store)
    eps = [make_episode(j, 0, accuracy=1.0, seed=1), make_episode(j, 1, accuracy=0.0, seed=2)]
    # same prompts for the planner in both rollouts (same question), different completions
    dumped = [e.model_dump() for e in eps]
    for k, d in enumerate(dumped):
        d["steps"][0]["prompt"] = "plan this"
        d["steps"][0]["frames"] = []
        d["steps"][0]["parsed"] = {"look_for": ["the red cup", "a cat"][k]}
    store.record_episodes(dumped)
    dpo = build_dpo(store, SPEC, margin=0.5)
    assert len(dpo.samples) == 1 and dpo.samples[0].role == "planner"
    assert (
        dpo.samples[0].rejected_token_ids
        and dpo.samples[0].rejected_token_ids != dpo.samples[0].token_ids
    )
    assert build_dpo(store, SPEC, margin=2.0).counts["below_margin"] == 1
    sft = build_sft(store, SPEC, roles=["critic"], threshold=1.0)
    assert len(sft.episode_ids) == 1 and {s.role for s in sft.samples} == {"critic"}


def test_sft_best_of_group_keeps_each_question_s_cheapest_right_rollouts(
    store: TrajectoryStore,
) -> None:
    """Rejection sampling keeps every right rollout; best of group only those with their
    question's highest reward: with a tool cost, the right path with the fewest calls (both
    when two tie), and a question's only right rollout however many calls it made."""
    spec = RewardSpec({"accuracy": 1.0, "tool_cost": 0.2})
    costs = {"Q1?": [(1.0, 1), (1.0, 2), (1.0, 1), (0.0, 1)], "Q2?": [(1.0, 3), (0.0, 1)]}
    want = set()
    for question, rollouts in costs.items():
        j = make_job(store, question[:2], question=question)
        eps = [make_episode(j, k, accuracy=acc) for k, (acc, _) in enumerate(rollouts)]
        dumped = [e.model_dump() for e in eps]
        for d, (_, calls) in zip(dumped, rollouts, strict=True):
            d["rewards"].append({"name": "tool_cost", "value": -float(calls)})
        ids = store.record_episodes(dumped)
        cheapest = min(c for a, c in rollouts if a == 1.0)
        want |= {i for i, (a, c) in zip(ids, rollouts, strict=True) if a == 1.0 and c == cheapest}
    every = build_sft(store, spec, threshold=0.3)
    assert len(every.episode_ids) == 4  # the right ones
    best = build_sft(store, spec, threshold=0.3, best_of_group=True)
    assert set(best.episode_ids) == want and len(want) == 3
    assert best.counts == {"episodes": 6, "below_best": 1}
    assert best.manifest()["filters"]["best_of_group"] == "True"
    assert {round(s.reward, 3) for s in best.samples} == {0.8, 0.4}


def test_fused_find_learns_a_search_then_inspect_as_one_find(store: TrajectoryStore) -> None:
    """``fuse_find``: a selector that searched and then inspected at once is learned as one
    find of that query with the recorded reply's end token, the inspect's step dropped and a
    call's cost added back; a search followed by an inspect of chosen times is left as it was
    (a find inspects what it found). ``tools``: only the selector's finds are learned, the
    other roles' steps kept. The encoder is vidra-tiny's tokenizer (`_find_encoder`), which
    needs find offered."""
    from vidra.config import Settings
    from vidra.models import resolve_model_path
    from vidra.pipelines.retrain import _find_encoder

    settings = Settings()
    settings.model.path = resolve_model_path("vidra-tiny")
    with pytest.raises(InvalidInput, match="VIDRA_AGENTS__FIND_TOOL=true"):
        _find_encoder(settings)
    settings.agents.find_tool = True
    encode = _find_encoder(settings)

    def call(tool: str, **more: object) -> tuple[dict[str, object], list[int]]:
        reply = {"tool": tool, **more}
        return {**reply, "surfaced": [[1.0, 2.0]]}, [*encode(json.dumps(reply)), 2]

    calls = {
        "fused": [call("search", query="red cup"), call("inspect")],
        "kept": [call("search", query="red"), call("inspect", times=[3.0])],
    }
    j = make_job(store)
    dumped = []
    for k, steps in enumerate(calls.values()):
        d = make_episode(j, k, n_steps=len(steps) + 1, accuracy=1.0).model_dump()
        for step, (parsed, ids) in zip(d["steps"], steps, strict=False):
            step.update(role="selector", parsed=parsed, token_ids=ids, logprobs=[-0.1] * len(ids))
        d["steps"][-1]["role"] = "reasoner"
        d["rewards"].append({"name": "tool_cost", "value": -float(len(steps))})
        dumped.append(d)
    fused_id, kept_id = store.record_episodes(dumped)
    spec = RewardSpec({"accuracy": 1.0, "tool_cost": 0.2})
    ds = build_sft(store, spec, ["selector"], threshold=0.0, fuse_find=encode)
    assert ds.counts == {"episodes": 2, "fused": 1} and ds.filters["fuse_find"] is True
    by = {e: [x for x in ds.samples if x.episode_id == e] for e in (fused_id, kept_id)}
    find = encode('{"tool": "find", "query": "red cup"}')
    assert [x.token_ids for x in by[fused_id]] == [[*find, 2]]
    assert all(math.isnan(v) for v in by[fused_id][0].old_logprobs)
    assert [x.token_ids for x in by[kept_id]] == [ids for _, ids in calls["kept"]]
    assert [x.reward for x in by[fused_id]] == [pytest.approx(1.0 - 0.2)]  # one call, not two
    # best of group: the fused episode (one call) is the question's best, the other is not
    best = build_sft(store, spec, ["selector"], threshold=0.0, best_of_group=True, fuse_find=encode)
    assert best.episode_ids == [fused_id]
    only = build_sft(store, spec, threshold=0.0, fuse_find=encode, tools=["find"])
    assert only.counts["other_calls"] == 2 and only.filters["tools"] == ["find"]
    assert [(x.role, x.token_ids) for x in only.samples if x.role == "selector"] == [
        ("selector", [*find, 2])
    ]
    assert sum(x.role == "reasoner" for x in only.samples) == 2
    # the selector alone: the episode whose calls were all left out is not in the lineage
    finds = build_sft(store, spec, ["selector"], threshold=0.0, fuse_find=encode, tools=["find"])
    assert finds.episode_ids == [fused_id] and len(finds.samples) == 1


def test_dpo_pairs_replies_that_decide_differently(store: TrajectoryStore) -> None:
    """Two reasoner replies to one prompt that give the same answer (only the confidence and
    cited times differ) make no pair: the better episode did not win by that reply. Before,
    48% of the reasoner's pairs in a benchmark's collection were such pairs."""
    spec = RewardSpec({"accuracy": 1.0}, {})
    answers = {"same": ("blue", "blue"), "different": ("blue", "red")}
    for name, (good, bad) in answers.items():
        j = make_job(store, name, question=f"{name}?")
        dumped = [make_episode(j, k, accuracy=float(k == 0), seed=k).model_dump()
                  for k in range(2)]  # fmt: skip
        for d, answer, conf in zip(dumped, (good, bad), (0.9, 0.2), strict=True):
            for step in d["steps"]:
                if step["role"] == "reasoner":
                    step["prompt"], step["frames"] = "answer this", []
                    step["parsed"] = {"answer": answer, "choice": ["blue", "red"].index(answer),
                                      "confidence": conf, "evidence": [conf * 10]}  # fmt: skip
        store.record_episodes(dumped)
    dpo = build_dpo(store, spec, roles=["reasoner"], margin=0.5)
    assert dpo.counts["same_decision"] == 1 and dpo.counts["prompt_mismatch"] == 0
    assert len(dpo.samples) == 1 and dpo.samples[0].role == "reasoner"
    assert dpo.samples[0].rejected_token_ids != dpo.samples[0].token_ids
    only = build_dpo(store, spec, roles=["planner"], margin=0.5)  # prompts differ: no pair
    assert not only.samples and "1 whose matching replies decide alike" not in only.empty_reason


def test_centred_advantages_keep_small_reward_differences_small(
    store: TrajectoryStore,
) -> None:
    """A group whose rollouts are all right and differ only in the frame cost: divided by
    its std, its advantages are as large as a right-or-wrong group's (+-1); centred only
    (Dr. GRPO, ``normalise_std=False``) they stay the size of the difference."""
    spec = RewardSpec({"accuracy": 1.0, "frame_cost": 0.1}, {})
    mixed = make_job(store, "m", question="Mixed?")
    alike = make_job(store, "a", question="Alike?")
    eps = [make_episode(mixed, k, accuracy=float(k == 0)) for k in range(2)]
    eps += [make_episode(alike, k, accuracy=1.0) for k in range(2)]
    dumped = [e.model_dump() for e in eps]
    for d, cost in zip(dumped, (-0.1, -0.1, -0.1, -0.2), strict=True):
        d["rewards"].append({"name": "frame_cost", "value": cost})
    store.record_episodes(dumped)

    def advantages(normalise: bool) -> dict[str, float]:
        ds = build_grpo(store, spec, roles=["reasoner"], normalise_std=normalise)
        assert ds.manifest()["filters"]["normalise_std"] == str(normalise)
        ids = {t.episode.id: t.episode.job_id for t in store.iter_trajectories()}
        return {f"{ids[s.episode_id]}/{s.reward:.2f}": round(s.advantage, 3) for s in ds.samples}

    assert advantages(True) == {f"{mixed}/0.99": 1.0, f"{mixed}/-0.01": -1.0,
                                f"{alike}/0.99": 1.0, f"{alike}/0.98": -1.0}  # fmt: skip
    assert advantages(False) == {f"{mixed}/0.99": 0.5, f"{mixed}/-0.01": -0.5,
                                 f"{alike}/0.99": 0.005, f"{alike}/0.98": -0.005}  # fmt: skip


def test_evaluation_answers_are_never_training_data(store: TrajectoryStore) -> None:
    # the benchmark's question was answered right by two eval runs (a group of two, one
    # right); a training question has rollouts of its own: only the latter is learned from
    bench = [make_job(store, t, question="Held out?", content="bench") for t in ("a", "b")]
    train = make_job(store, "c", question="Train?")
    store.record_episodes(
        [make_episode(bench[0], 0, accuracy=1.0), make_episode(bench[1], 0, accuracy=0.0)]
        + [make_episode(train, k, accuracy=float(k == 0)) for k in range(2)]
    )
    for k, job in enumerate(bench):
        store.put_eval_question(store.create_eval_run("synthetic", f"k{k}", {}).id, "q", "done",
                                job_id=job)  # fmt: skip
    trained = {t.episode.id for t in store.iter_trajectories(job_ids=[train])}
    for ds in (build_sft(store, SPEC, threshold=1.0), build_grpo(store, SPEC)):
        assert ds.samples and set(ds.episode_ids) <= trained
        assert ds.manifest()["filters"]["evaluations"] == "False"
    assert build_grpo(store, SPEC).counts["groups"] == 1
    dpo = build_dpo(store, SPEC)
    assert set(dpo.episode_ids) <= trained


def test_decision_tokens_end_where_the_reply_has_decided() -> None:
    """One character per token: the reasoner's decision ends with its answer's closing quote
    (escaped quotes inside do not end it), the critic's with accept, the selector's with its
    tool; the rest decide whole."""

    def enc(text: str) -> list[int]:
        return [ord(c) for c in text]

    def dec(ids: object) -> str:
        return "".join(chr(i) for i in ids)  # type: ignore[attr-defined]

    def decided(role: str, reply: str) -> str:
        return reply[: decision_tokens(role, enc(reply), dec)]

    assert decided("reasoner", '{"answer": "a \\"b\\"", "confidence": 0.9}') == (
        '{"answer": "a \\"b\\""'
    )
    critique = '{"score": 0.2, "accept": false, "feedback": "look at 12 s"}'
    assert decided("critic", critique) == '{"score": 0.2, "accept": false'
    plan = '{"look_for": "red cube", "frame_budget": 8}'
    assert decided("planner", plan) == plan
    # the selector decides its tool; the query (what it learns to search for) is not pushed
    assert decided("selector", '{"tool": "search", "query": "red cube"}') == '{"tool": "search"'
    assert decided("selector", '{"tool": "inspect"}') == '{"tool": "inspect"'
    assert decided("selector", '{"tool": "find", "query": "red"}') == '{"tool": "find"'
    assert decided("selector", '{"query": "red"}') == '{"query": "red"}'  # no tool: whole
    unclosed = '{"answer": "2:11.5-2:26.2]}'
    assert decided("reasoner", unclosed) == unclosed


def test_reward_weights_from_settings_make_a_tool_call_cost(
    store: TrajectoryStore, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    """``train.reward_weights`` over the defaults: with ``tool_cost`` weighed, of two right
    rollouts the one that made more tool calls gets the lower advantage; unweighed (the
    default) the two tie and teach nothing; an unknown name is refused saying which."""
    from vidra.config import Settings
    from vidra.pipelines.retrain import reward_spec
    from vidra.rl.rewards import DEFAULT_WEIGHTS

    job = make_job(store, "t", question="Tools?")
    dumped = [make_episode(job, k, accuracy=1.0).model_dump() for k in range(2)]
    for d, calls in zip(dumped, (1, 3), strict=True):
        d["rewards"].append({"name": "tool_cost", "value": -float(calls)})
    store.record_episodes(dumped)
    s = Settings(data_dir=tmp_path)
    assert reward_spec(s).weights == DEFAULT_WEIGHTS
    assert build_grpo(store, reward_spec(s), roles=["reasoner"]).counts["zero_variance"] == 1
    s.train.reward_weights = {"tool_cost": 0.05, "frame_cost": 0}
    spec = reward_spec(s)
    assert spec.weights == {"accuracy": 1.0, "format": 0.2, "temporal_iou": 0.5,
                            "tool_cost": 0.05}  # fmt: skip
    ds = build_grpo(store, spec, roles=["reasoner"], normalise_std=False)
    by_reward = {round(x.reward, 2): round(x.advantage, 3) for x in ds.samples}
    assert by_reward == {1.15: 0.05, 1.05: -0.05}  # accuracy 1 + format 0.2 - 0.05 * calls
    assert ds.rewards()["episode"] == spec.weights
    assert spec.step_weights == {"evidence_credit": 0.5}  # the default step weights
    # step-level components are weighed by the same setting, into the step weights
    s.train.reward_weights = {"tool_cost_to_go": 0.2, "evidence_credit": 0}
    both = reward_spec(s)
    assert both.step_weights == {"tool_cost_to_go": 0.2} and both.weights == DEFAULT_WEIGHTS
    s.train.reward_weights = {"tools": 0.05}
    with pytest.raises(InvalidInput, match=r"\['tools'\].*tool_cost_to_go"):
        reward_spec(s)
