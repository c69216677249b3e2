"""End to end on the real tiny Qwen2.5-VL: a job completes and its whole trajectory is in SQL."""

from __future__ import annotations

from pathlib import Path

import pytest

from vidra.api import Client
from vidra.config import Settings
from vidra.video.synthetic import WorldSpec, generate_questions, make_world, render_world


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    world = make_world(WorldSpec(duration=180, fps=4, width=160, height=90, seed=2))
    path = render_world(world, tmp_path_factory.mktemp("e2e") / "w.mp4", gop_s=4)
    return path, generate_questions(world, per_kind=1)


@pytest.fixture
def client(tiny_model_path: Path):  # type: ignore[no-untyped-def]
    settings = Settings()
    settings.model.path = str(tiny_model_path)
    settings.agents.max_tokens = 24
    c = Client(settings)
    yield c
    c.close()


def test_job_on_the_tiny_model_is_recorded_completely(client: Client, synth) -> None:  # type: ignore[no-untyped-def]
    path, questions = synth
    q = next(x for x in questions if x.kind == "state")
    job = client.submit(
        path, q.text, options=q.options, answer=q.answer, budget={"max_frames": 8, "max_rounds": 2}
    )
    answer = job.result(timeout=600)
    assert job.status() == "done" and answer.text in q.options
    t = client.episode(answer.episode_id)
    assert {"planner", "reasoner", "critic"} <= {s.role for s in t.steps}
    for s in t.steps:  # a real model ran: token ids and sampling logprobs of every completion
        assert s.token_ids and len(s.logprobs) == len(s.token_ids) == s.completion_tokens
        assert all(lp <= 0 for lp in s.logprobs) and s.prompt_tokens > 0
        assert s.adapter_version == "base"
    assert all(s.frames for s in t.steps if s.role == "reasoner")
    names = {r.name for r in t.rewards}
    assert {"accuracy", "format", "frame_cost", "critic"} <= names


def test_group_of_four_decodes_shared_frames_once(client: Client, synth) -> None:  # type: ignore[no-untyped-def]
    path, questions = synth
    q = next(x for x in questions if x.kind == "ordering")
    job = client.submit(
        path,
        q.text,
        options=q.options,
        answer=q.answer,
        rollouts=4,
        strategy="uniform",
        budget={"max_frames": 8, "max_rounds": 1},
    )
    job.result(timeout=900)
    eps = client.store.episodes_of_job(job.id)
    assert sorted(e.rollout_index for e in eps) == [0, 1, 2, 3]
    # sampled rollouts differ, but the 8 uniform frames were decoded once for all four
    assert client.reader.stats.frames_returned == 8  # the critic reads them from the cache
    trajs = [client.episode(e.id) for e in eps]
    assert len({tuple(t.steps[1].token_ids) for t in trajs}) > 1


@pytest.mark.parametrize("mode", ["options", "free"])
def test_untrained_model_answers_with_an_option_only_when_constrained(
    tiny_model_path: Path,
    synth,  # type: ignore[no-untyped-def]
    mode: str,
) -> None:
    """An untrained model cannot write a valid answer: with ``answer_mode="options"`` every
    reasoner reply still starts ``{"answer": "<an option>`` (picked by likelihood); with
    ``"free"`` it writes whatever it writes."""
    from vidra.agents.reasoner import answer_prefixes

    settings = Settings()
    settings.model.path = str(tiny_model_path)
    settings.agents.max_tokens = 24
    settings.agents.answer_mode = mode  # type: ignore[assignment]
    path, questions = synth
    q = next(x for x in questions if x.kind == "state")
    with Client(settings) as c:
        job = c.submit(path, q.text, options=q.options, answer=q.answer,
                       budget={"max_frames": 8, "max_rounds": 1})  # fmt: skip
        t = c.episode(job.result(timeout=600).episode_id)
    replies = [s.completion for s in t.steps if s.role == "reasoner"]
    starts = [any(r.startswith(p) for p in answer_prefixes(q.options)) for r in replies]
    assert replies and all(starts) if mode == "options" else not any(starts), replies
