"""The exact episode flow with the scripted model: revise rounds, budgets, deadline, garbage.

``make_client`` is local threads + SQLite here; tests/integration re-runs these same tests on
Ray and on PostgreSQL by overriding that fixture.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from vidra.models import ChatRequest
from vidra.models.scripted import ScriptedChatModel
from vidra.video.synthetic import Question

PLAN = '{"look_for": "shapes", "hints": [], "frame_budget": 32}'


def ordering(world_video: tuple[Path, list[Question]]) -> tuple[Path, Question]:
    path, qs = world_video
    return path, next(q for q in qs if q.kind == "ordering")


class RoleModel(ScriptedChatModel):
    @property
    def adapters(self) -> list[str]:
        return ["planner", "selector", "reasoner", "critic"]


def role_model(fn: Callable[[ChatRequest], str]) -> RoleModel:
    return RoleModel(fn)


def answer_json(letter: str, conf: float = 0.9) -> str:
    return f'Here: {{"answer": "{letter}", "confidence": {conf}, "evidence": []}}'


def fixed_replies(letter: str, accept: bool, **more: str) -> RoleModel:
    """A model whose every role replies alike each call: the plan, ``letter`` as the answer,
    a critic that accepts or sends back, and ``more`` (role -> reply)."""
    verdict = '{"score": 0.9, "accept": true}' if accept else '{"score": 0.1, "accept": false}'
    replies = {"planner": PLAN, "reasoner": answer_json(letter), "critic": verdict, **more}
    return role_model(lambda req: replies[req.adapter or ""])


def test_critic_triggered_revise_round_then_accept(world_video, make_client) -> None:  # type: ignore[no-untyped-def]
    path, q = ordering(world_video)
    right = "AB"[q.answer_index]
    critic_calls: list[int] = []

    def script(req: ChatRequest) -> str:
        if req.adapter == "planner":
            return PLAN
        if req.adapter == "reasoner":
            return answer_json(right)
        critic_calls.append(1)
        if len(critic_calls) == 1:
            return '{"score": 0.2, "accept": false, "feedback": "look at the second half"}'
        return '{"score": 0.95, "accept": true}'

    with make_client(role_model(script)) as client:
        job = client.submit(path, q.text, options=q.options, answer=q.answer)
        ans = job.result(timeout=120)
        t = client.episode(ans.episode_id)
    assert [s.role for s in t.steps] == ["planner", "reasoner", "critic", "reasoner", "critic"]
    assert t.episode.rounds == 2 and t.episode.frames_used == 16
    assert ans.text == q.answer and ans.rewards["accuracy"] == 1.0
    assert ans.rewards["format"] == 1.0 and ans.rewards["critic"] == 0.95
    assert ans.rewards["frame_cost"] == pytest.approx(-16 / 32)
    # the second reasoner call saw the critic's feedback
    assert "look at the second half" in t.steps[3].prompt
    assert all(s.frames for s in t.steps if s.role == "reasoner")
    assert job.status() == "done"


def test_budget_exhaustion_finalizes(world_video, make_client) -> None:  # type: ignore[no-untyped-def]
    path, q = ordering(world_video)
    model = fixed_replies("A", accept=False)
    with make_client(model) as client:
        job = client.submit(
            path,
            q.text,
            options=q.options,
            answer=q.answer,
            budget={"max_frames": 12, "frames_per_round": 6, "max_rounds": 5},
        )
        t = client.episode(job.result(timeout=120).episode_id)
    assert t.episode.frames_used == 12  # never more than the budget
    assert t.episode.rounds == 2  # 6 + 6 frames, then the budget is spent
    roles = [s.role for s in t.steps]
    assert roles == ["planner", "reasoner", "critic", "reasoner", "critic"]


def test_max_rounds_bound(world_video, make_client) -> None:  # type: ignore[no-untyped-def]
    path, q = ordering(world_video)
    model = fixed_replies("B", accept=False)
    with make_client(model) as client:
        job = client.submit(
            path, q.text, options=q.options, budget={"max_rounds": 3, "frames_per_round": 4}
        )
        t = client.episode(job.result(timeout=120).episode_id)
    assert t.episode.rounds == 3 and t.episode.frames_used == 12
    assert "accuracy" not in {r.name for r in t.rewards}  # no ground truth, no accuracy


def test_deadline_expiry(world_video, make_client) -> None:  # type: ignore[no-untyped-def]
    path, q = ordering(world_video)
    model = ScriptedChatModel(lambda r: PLAN, latency_s=0.3)
    with make_client(model) as client:
        job = client.submit(
            path, q.text, options=q.options, answer=q.answer, budget={"deadline_s": 0.1}
        )
        ans = job.result(timeout=60)
        t = client.episode(ans.episode_id)
    assert t.episode.rounds == 0 and ans.text is None
    assert ans.rewards["accuracy"] == 0.0
    assert [s.role for s in t.steps] == ["planner"]


def test_garbage_at_every_step_still_completes(world_video, make_client) -> None:  # type: ignore[no-untyped-def]
    path, q = ordering(world_video)
    model = role_model(lambda r: "\x00<<garbage>> }{ not json at all \ufffd")
    with make_client(model) as client:
        job = client.submit(path, q.text, options=q.options, answer=q.answer, strategy="model")
        ans = job.result(timeout=120)
        t = client.episode(ans.episode_id)
    assert job.status() == "done"
    assert ans.rewards["format"] == 0.0
    assert ans.text in q.options  # fallback: a valid option
    assert all(not s.parse_ok for s in t.steps)
    # each call was repaired once: every role has pairs of steps
    assert [s.role for s in t.steps][:2] == ["planner", "planner"]
    assert t.episode.frames_used > 0  # the selector fell back to uniform frames


def test_group_of_rollouts_shares_decoded_frames(world_video, make_client) -> None:  # type: ignore[no-untyped-def]
    path, q = ordering(world_video)
    model = fixed_replies("A", accept=True)
    with make_client(model) as client:
        job = client.submit(
            path, q.text, options=q.options, answer=q.answer, rollouts=4, strategy="uniform"
        )
        job.result(timeout=120)
        eps = client.store.episodes_of_job(job.id)
        assert [e.rollout_index for e in eps] == [0, 1, 2, 3]
        assert len({e.group_id for e in eps}) == 1
        groups = list(client.store.iter_groups(min_rollouts=4))
        assert len(groups) == 1 and len(groups[0].trajectories) == 4
        # all rollouts looked at the same 8 uniform frames: decoded once, then cached
        assert client.reader.stats.frames_returned == 8


def test_cancel(world_video, make_client) -> None:  # type: ignore[no-untyped-def]
    path, q = ordering(world_video)
    model = role_model(lambda r: PLAN)
    model.latency_s = 0.5
    with make_client(model) as client:
        job = client.submit(path, q.text, options=q.options, rollouts=3)
        job.cancel()
        with pytest.raises(Exception, match="cancelled"):
            job.result(timeout=60)
        assert job.status() == "cancelled"


def test_planner_budget_caps_frames_unless_turned_off(world_video, make_client) -> None:  # type: ignore[no-untyped-def]
    path, q = ordering(world_video)

    def script(req: ChatRequest) -> str:
        return {
            "planner": '{"look_for": "shapes", "hints": [], "frame_budget": 4}',
            "reasoner": answer_json("A"),
            "critic": '{"score": 0.9, "accept": true}',
        }[req.adapter or ""]

    used = []
    for plan_budget in (True, False):
        with make_client(role_model(script)) as client:
            client.settings.agents.plan_budget = plan_budget
            client.settings.agents.strategy = "uniform"
            budget = {"max_frames": 16, "frames_per_round": 8, "max_rounds": 1}
            ans = client.submit(path, q.text, options=q.options, budget=budget).result(120)
            used.append(client.episode(ans.episode_id).episode.frames_used)
    assert used == [4, 8]  # the plan's 4 frames; without it, the round's 8


def test_rollouts_sample_only_the_selectors_choice_flatter(world_video, make_client) -> None:  # type: ignore[no-untyped-def]
    """``agents.selector_choice_temperature`` reaches the selector's requests of sampled
    rollouts only: the other roles, and a greedy answer's selector, sample as before."""
    path, q = ordering(world_video)
    model = fixed_replies("A", accept=True, selector='{"times": [1.0, 2.0]}')
    with make_client(model) as client:
        client.settings.agents.strategy = "model"
        client.settings.agents.selector_choice_temperature = 5.0
        budget = {"max_rounds": 1}
        client.submit(path, q.text, options=q.options, budget=budget, rollouts=2).result(120)
        sampled = {(r.adapter, r.sampling.temperature, r.sampling.prefix_temperature)
                   for r in model.calls}  # fmt: skip
        model.calls.clear()
        client.submit(path, q.text, options=q.options, budget=budget).result(120)
        greedy = {(r.adapter, r.sampling.temperature, r.sampling.prefix_temperature)
                  for r in model.calls}  # fmt: skip
    t = client.settings.agents.rollout_temperature
    assert sampled == {("planner", t, 1.0), ("selector", t, 5.0), ("reasoner", t, 1.0),
                       ("critic", t, 1.0)}  # fmt: skip
    assert greedy == {(role, 0.0, 1.0) for role in ("planner", "selector", "reasoner", "critic")}


def test_agents_seed_makes_sampled_rollouts_repeat_across_jobs(world_video, make_client) -> None:  # type: ignore[no-untyped-def]
    """With ``agents.seed`` a question's rollouts draw the same seeds in every job (so runs
    repeat); without it each job samples anew. Greedy answers carry no seed either way."""
    path, q = ordering(world_video)
    model = fixed_replies("A", accept=True)

    def seeds(rollouts: int = 2) -> list[int | None]:
        model.calls.clear()
        job = client.submit(path, q.text, options=q.options, budget={"max_rounds": 1},
                            rollouts=rollouts, strategy="uniform")  # fmt: skip
        job.result(120)
        return sorted({r.sampling.seed for r in model.calls if r.adapter == "reasoner"},
                      key=str)  # fmt: skip

    with make_client(model) as client:
        client.settings.agents.seed = 7
        first, again = seeds(), seeds()
        client.settings.agents.seed = 8
        other_seed = seeds()
        client.settings.agents.seed = None
        fresh, fresh_again = seeds(), seeds()
        greedy = seeds(rollouts=1)
    assert len(first) == 2 and None not in first  # one seed per rollout, distinct
    assert first == again  # another job, the same draws
    assert other_seed != first and len(other_seed) == 2
    assert fresh != fresh_again and not set(fresh) & set(first)  # from the job id
    assert greedy == [None]
