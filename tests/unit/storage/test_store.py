"""Store conformance: the same suite on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

import pytest

from vidra.errors import IllegalTransition, InvalidInput, NotFound, StorageError
from vidra.storage import EpisodeIn, JobCreate, StepIn, TrajectoryStore

from .helpers import make_episode, make_job, video_in


@pytest.fixture
def store(db_url: str):  # type: ignore[no-untyped-def]
    s = TrajectoryStore(db_url)
    yield s
    s.close()


def test_videos_are_registered_once(store: TrajectoryStore) -> None:
    a = store.register_video(video_in("a"))
    assert store.register_video(video_in("a")).id == a.id
    assert store.get_video(a.id).content_hash == "ha"
    with pytest.raises(NotFound):
        store.get_video("nope")


def test_job_validation_names_the_field(store: TrajectoryStore) -> None:
    vid = store.register_video(video_in()).id
    cases = [
        ({"question": "  "}, "question"),
        ({"question": "q", "options": ["only"]}, "at least 2 options"),
        ({"question": "q", "options": ["a", "b"], "answer": "c"}, "not among the options"),
        ({"question": "q", "rollouts": 0}, "rollouts"),
        ({"question": "q", "colour": "x"}, "colour"),
    ]
    for fields, needle in cases:
        with pytest.raises(InvalidInput, match=needle):
            store.create_job({"video_id": vid, **fields})
    with pytest.raises(NotFound):
        store.create_job(JobCreate(video_id="missing", question="q"))


def test_job_status_machine(store: TrajectoryStore) -> None:
    job = make_job(store)
    assert store.get_job(job).status == "queued"
    with pytest.raises(IllegalTransition, match="'queued' to 'done'"):
        store.set_job_status(job, "done")
    running = store.set_job_status(job, "running")
    assert running.started_at is not None
    done = store.set_job_status(job, "done")
    assert done.finished_at is not None and done.status == "done"
    with pytest.raises(IllegalTransition, match="final"):
        store.set_job_status(job, "running")
    with pytest.raises(NotFound):
        store.set_job_status("missing", "running")
    failed = store.set_job_status(
        store.set_job_status(make_job(store, "b"), "running").id, "failed", error="boom"
    )
    assert failed.error == "boom"
    assert [j.id for j in store.jobs(status="queued")] == []
    assert {j.status for j in store.jobs()} == {"done", "failed"}


def test_episode_round_trips_exactly(store: TrajectoryStore) -> None:
    job = make_job(store)
    ep = make_episode(job, 0, n_steps=5, seed=3)
    tricky = [-1e-300, -0.0, -123.456789012345678, -math.pi, -5e-324]
    steps = list(ep.steps)
    steps[1] = StepIn(
        **{**steps[1].model_dump(), "token_ids": [0, 1, 2**31 - 1, 7, 8], "logprobs": tricky}
    )
    ep = EpisodeIn(**{**ep.model_dump(), "steps": [s.model_dump() for s in steps]})
    eid = store.record_episode(ep)
    got = store.get_episode(eid)
    assert got.episode.n_steps == 5 and got.episode.job_id == job and got.episode.group_id == job
    assert [s.order for s in got.steps] == [0, 1, 2, 3, 4]
    for sent, stored in zip(ep.steps, got.steps, strict=True):
        assert stored.token_ids == sent.token_ids
        assert stored.logprobs == sent.logprobs  # bit-exact floats
        assert stored.frames == [tuple(f) for f in sent.frames]
        assert (stored.prompt, stored.completion, stored.parsed) == (
            sent.prompt,
            sent.completion,
            sent.parsed,
        )
        assert stored.role == sent.role and stored.adapter_version == sent.adapter_version
    assert {(r.name, r.step_order) for r in got.rewards} == {
        ("accuracy", None),
        ("format", None),
        ("critic", 0),
    }
    assert got.episode.created_at.tzinfo is not None
    with pytest.raises(NotFound):
        store.get_episode("missing")


def test_rewards_added_later(store: TrajectoryStore) -> None:
    eid = store.record_episode(make_episode(make_job(store), 0, accuracy=0.0))
    store.add_rewards(
        eid,
        [
            {"name": "temporal_iou", "value": 0.25, "source": "ground_truth"},
            {"name": "credit", "value": -0.5, "step_order": 2},
        ],
    )
    got = store.get_episode(eid)
    assert got.reward("temporal_iou") == 0.25
    with pytest.raises(StorageError, match="replace=True"):
        store.add_rewards(eid, [{"name": "accuracy", "value": 1.0}])
    store.add_rewards(eid, [{"name": "accuracy", "value": 1.0}], replace=True)
    assert store.get_episode(eid).reward("accuracy") == 1.0
    with pytest.raises(NotFound):
        store.add_rewards("missing", [{"name": "x", "value": 1.0}])
    with pytest.raises(NotFound, match="no step 99"):
        store.add_rewards(eid, [{"name": "x", "value": 1.0, "step_order": 99}])


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_rewards_are_rejected(store: TrajectoryStore, bad: float) -> None:
    job = make_job(store)
    ep = make_episode(job, 0).model_dump()
    ep["rewards"] = [{"name": "accuracy", "value": bad}]
    with pytest.raises(InvalidInput, match=r"rewards\.0\.value"):
        store.record_episode(ep)
    assert store.episodes_of_job(job) == []


def test_invalid_steps_get_field_level_messages(store: TrajectoryStore) -> None:
    job = make_job(store)
    ep = make_episode(job, 0).model_dump()
    ep["steps"][1]["logprobs"] = ep["steps"][1]["logprobs"][:-1]
    with pytest.raises(InvalidInput, match=r"steps\.1.*one logprob per sampled token"):
        store.record_episode(ep)
    ep = make_episode(job, 0).model_dump()
    ep["steps"][0]["logprobs"][0] = 0.5
    with pytest.raises(InvalidInput, match="<= 0"):
        store.record_episode(ep)
    ep = make_episode(job, 0).model_dump()
    ep["steps"][2]["order"] = 0
    with pytest.raises(InvalidInput, match="unique"):
        store.record_episode(ep)
    ep = make_episode(job, 0).model_dump()
    ep["steps"][0]["token_ids"][0] = -1
    with pytest.raises(InvalidInput, match=r"steps\.0\.token_ids\.0"):
        store.record_episode(ep)
    with pytest.raises(NotFound, match="create the job"):
        store.record_episode(make_episode("no-such-job", 0))


def test_oversized_text_is_truncated_by_the_documented_rule(db_url: str) -> None:
    from vidra.config import Settings

    settings = Settings()
    settings.storage.max_text_chars = 100
    store = TrajectoryStore(db_url, settings=settings)
    ep = make_episode(make_job(store), 0).model_dump()
    ep["steps"][0]["prompt"] = "p" * 250
    ep["steps"][0]["token_ids"] = list(range(300))
    ep["steps"][0]["logprobs"] = [-1.0] * 300
    step = store.get_episode(store.record_episode(ep)).steps[0]
    assert step.prompt == "p" * 100 + "…[truncated 150 chars]"
    assert step.truncated and len(step.token_ids) == 300  # tokens are never cut
    assert (
        not store.get_episode(store.record_episode(make_episode(ep["job_id"], 1)))
        .steps[0]
        .truncated
    )
    store.close()


def test_a_rollout_is_recorded_once_and_batches_are_atomic(store: TrajectoryStore) -> None:
    job = make_job(store)
    store.record_episode(make_episode(job, 0))
    with pytest.raises(StorageError, match="already recorded"):
        store.record_episodes([make_episode(job, 1), make_episode(job, 0)])
    assert [e.rollout_index for e in store.episodes_of_job(job)] == [0]


def test_streaming_filters(store: TrajectoryStore) -> None:
    job = make_job(store)
    ids = store.record_episodes([make_episode(job, k, accuracy=float(k % 2)) for k in range(10)])
    all_eps = list(store.iter_trajectories(batch_size=3))
    assert [t.episode.id for t in all_eps] == ids
    good = list(store.iter_trajectories(reward="accuracy", min_reward=1.0))
    assert [t.episode.rollout_index for t in good] == [1, 3, 5, 7, 9]
    critics = list(store.iter_trajectories(role="critic", batch_size=4))
    assert len(critics) == 10 and all(s.role == "critic" for t in critics for s in t.steps)
    assert all(len(t.steps) == 1 for t in critics)
    assert list(store.iter_trajectories(adapter_version="planner@v2")) == []
    assert len(list(store.iter_trajectories(adapter_version="planner@v1"))) == 10
    future = datetime.now(timezone.utc) + timedelta(hours=1)
    assert list(store.iter_trajectories(since=future)) == []
    assert (
        len(list(store.iter_trajectories(since=datetime.now(timezone.utc) - timedelta(hours=1))))
        == 10
    )
    run = store.create_training_run("grpo", {"lr": 1e-5}, ids[:4])
    later = store.record_episode(make_episode(job, 10))
    assert [t.episode.id for t in store.iter_trajectories(since_run=run.id)] == [later]
    with pytest.raises(InvalidInput):
        list(store.iter_trajectories(min_reward=0.5))
    with pytest.raises(NotFound):
        list(store.iter_trajectories(since_run="missing"))


def test_groups_by_question(store: TrajectoryStore) -> None:
    # two jobs asking the same question of the same content form one group
    j1 = make_job(store, "a", content="same")
    j2 = make_job(store, "b", content="same")
    j3 = make_job(store, "c", question="Another?")
    store.record_episodes(
        [make_episode(j1, 0), make_episode(j1, 1), make_episode(j2, 0), make_episode(j3, 0)]
    )
    groups = list(store.iter_groups(min_rollouts=2))
    assert len(groups) == 1 and len(groups[0].trajectories) == 3
    assert {t.episode.job_id for t in groups[0].trajectories} == {j1, j2}
    assert len(list(store.iter_groups(min_rollouts=1, batch_size=1))) == 2
    assert list(store.iter_groups(min_rollouts=4)) == []
    reasoner = list(store.iter_groups(min_rollouts=2, role="reasoner"))
    assert all(s.role == "reasoner" for t in reasoner[0].trajectories for s in t.steps)


def test_evaluation_traffic_can_be_left_out(store: TrajectoryStore) -> None:
    # a benchmark question answered twice (two eval runs) and a production question with two
    # rollouts: all of them are one question to the store, but training must not see the
    # benchmark's answers (evaluations=False), while everything else still reads them
    bench_a = make_job(store, "a", content="same")
    bench_b = make_job(store, "b", content="same")
    prod = make_job(store, "c", content="same")
    loose = store.record_episodes([make_episode(prod, 0), make_episode(prod, 1)])
    benched = store.record_episodes([make_episode(bench_a, 0), make_episode(bench_b, 0)])
    for k, job in enumerate((bench_a, bench_b)):
        run = store.create_eval_run("synthetic", f"key{k}", {})
        store.put_eval_question(run.id, "q1", "done", job_id=job)
    store.put_eval_question(run.id, "q2", "failed")  # a question with no job leaves no hole
    every = [t.episode.id for t in store.iter_trajectories()]
    assert sorted(every) == sorted(loose + benched)
    assert [t.episode.id for t in store.iter_trajectories(evaluations=False)] == loose
    (group,) = store.iter_groups(min_rollouts=2)
    assert len(group.trajectories) == 4
    (group,) = store.iter_groups(min_rollouts=2, evaluations=False)
    assert {t.episode.id for t in group.trajectories} == set(loose)
    assert list(store.iter_groups(min_rollouts=3, evaluations=False)) == []


def test_an_evaluation_job_is_created_linked_or_not_at_all(store: TrajectoryStore) -> None:
    # a crash between creating an evaluation's job and linking it to its question left a job
    # training would read; now both are one transaction
    video = store.register_video(video_in("a"))
    job = JobCreate(video_id=video.id, question="What colour?", options=["red", "blue"])
    run = store.create_eval_run("synthetic", "key", {})
    made = store.create_job(job, eval_question=(run.id, "q1"))
    [row] = store.eval_questions(run.id)
    assert (row.qid, row.status, row.job_id) == ("q1", "queued", made.id)
    with pytest.raises(NotFound, match="no-such-run"):  # the link fails, and so does the job
        store.create_job(job, eval_question=("no-such-run", "q1"))
    assert [j.id for j in store.jobs(limit=10)] == [made.id]


def test_training_runs_and_model_versions(store: TrajectoryStore) -> None:
    job = make_job(store)
    ids = store.record_episodes([make_episode(job, k) for k in range(3)])
    run = store.create_training_run("dpo", {"beta": 0.1}, ids)
    assert run.n_episodes == 3 and run.status == "running"
    done = store.finish_training_run(run.id, "done", {"loss": 0.3}, mlflow_run_id="abc")
    assert done.status == "done" and done.metrics == {"loss": 0.3} and done.mlflow_run_id == "abc"
    assert [r.id for r in store.training_runs()] == [run.id]
    with pytest.raises(NotFound):
        store.create_training_run("sft", {}, ["missing-episode"])
    store.record_model_version("reasoner", "vidra-reasoner", "1", "abc")
    store.record_model_version("reasoner", "vidra-reasoner", "2", "def")
    store.set_alias("vidra-reasoner", "1", "champion")
    store.set_alias("vidra-reasoner", "2", "champion")
    aliases = {v.version: v.alias for v in store.model_versions("reasoner")}
    assert aliases == {"1": None, "2": "champion"}
    with pytest.raises(NotFound):
        store.set_alias("vidra-reasoner", "9", "champion")


def test_nul_characters_are_stored_as_replacement_characters(store: TrajectoryStore) -> None:
    job = make_job(store, question="What\x00 colour?")
    ep = make_episode(job, 0).model_dump()
    ep["steps"][0]["completion"] = "\x00garbage\x00"
    ep["answer"] = "re\x00d"
    got = store.get_episode(store.record_episode(ep))
    assert got.steps[0].completion == "\ufffdgarbage\ufffd" and got.episode.answer == "re\ufffdd"
    assert store.get_job(job).question == "What\ufffd colour?"


def test_non_finite_metrics_are_stored_as_null(store: TrajectoryStore) -> None:
    """An accuracy over no questions is NaN; PostgreSQL's JSON rejects NaN, so every JSON
    column stores it as null (on both databases alike) instead of failing the write."""
    rec = store.record_model_version(
        "reasoner", "vidra-reasoner", "1", metrics={"accuracy": math.nan, "n": [1.0, math.inf]}
    )
    assert rec.metrics == {"accuracy": None, "n": [1.0, None]}
    [again] = store.model_versions("reasoner")
    assert again.metrics == {"accuracy": None, "n": [1.0, None]}
