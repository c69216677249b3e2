"""Bad input fails before any work, with a clear error; nothing is stored for it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vidra import InvalidInput, NotFound, VideoNotFound, VideoUnreadable
from vidra.api import Client
from vidra.models.scripted import ScriptedChatModel
from vidra.video.synthetic import write_counter_video


@pytest.fixture
def client():  # type: ignore[no-untyped-def]
    c = Client(model=ScriptedChatModel([]))
    yield c
    c.close()


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("api") / "v.mp4"
    write_counter_video(path, 60, fps=10)
    return path


@pytest.mark.parametrize(
    ("kwargs", "error", "needle"),
    [
        ({"question": ""}, InvalidInput, "question"),
        ({"question": "   "}, InvalidInput, "blank"),
        ({"question": "q", "options": ["one"]}, InvalidInput, "at least 2 options"),
        ({"question": "q", "options": ["a", "a"]}, InvalidInput, "distinct"),
        ({"question": "q", "options": ["a", "b"], "answer": "c"}, InvalidInput, "not among"),
        ({"question": "q", "rollouts": 0}, InvalidInput, "rollouts"),
        ({"question": "q", "budget": {"max_frames": 0}}, InvalidInput, "max_frames"),
        ({"question": "q", "budget": {"deadline_s": -1}}, InvalidInput, "deadline_s"),
        ({"question": "q", "budget": {"frames": 3}}, InvalidInput, "frames"),
        ({"question": "q", "strategy": "psychic"}, InvalidInput, "unknown strategy"),
        ({"question": "q", "evidence": [(5.0, 2.0)]}, InvalidInput, "0 <= start <= end"),
        ({"question": "q", "evidence": (12.5, 15.0)}, InvalidInput, r"list of spans, e.g. \["),
        ({"question": "q", "evidence": [(500.0, 600.0)]}, InvalidInput, "past the end of v.mp4"),
        ({"question": "q", "evidence": [(-1.0, 2.0)]}, InvalidInput, "0 <= start <= end"),
        ({"question": "q", "evidence": [(float("nan"), 2.0)]}, InvalidInput, "finite"),
        ({"question": "q", "evidence": [(1.0, 2.0, 3.0)]}, InvalidInput, "evidence.0"),
        ({"question": "q", "evidence": 5}, InvalidInput, "evidence"),
        ({"question": "q", "evidence": [(1.0, 2.0)] * 65}, InvalidInput, "64"),
    ],
)
def test_bad_input_fails_before_any_work(
    client: Client, video: Path, kwargs: dict, error: type, needle: str
) -> None:
    with pytest.raises(error, match=needle):
        client.submit(video, **kwargs)
    assert client.jobs() == []


def test_bad_videos(client: Client, tmp_path: Path) -> None:
    with pytest.raises(VideoNotFound, match="no such file"):
        client.submit(tmp_path / "missing.mp4", "q")
    text = tmp_path / "notes.mp4"
    text.write_text("not a video")
    with pytest.raises(VideoUnreadable):
        client.submit(text, "q")
    assert client.jobs() == []


def test_unknown_ids(client: Client) -> None:
    with pytest.raises(NotFound):
        client.episode("nope")
    with pytest.raises(NotFound):
        client.job("nope")


def test_evidence_given_with_a_job_credits_the_tool_calls_that_surface_it(tmp_path: Path) -> None:
    """Spans given to `Client.submit` reach the rewards as per-step ``evidence_credit`` on
    the episode's tool calls (what retraining's step-level credit reads); without them no
    step is credited. The real vidra-tiny agents answer, searching a rendered world."""
    from vidra.config import Settings
    from vidra.evals.tasks.synthetic import evidence_spans
    from vidra.models import resolve_model_path
    from vidra.pipelines.train_tiny import tiny_agent_settings
    from vidra.video.synthetic import WorldSpec, generate_questions, make_world, render_world

    world = make_world(WorldSpec(duration=60, fps=4, width=160, height=90, seed=3))
    video = render_world(world, tmp_path / "w.mp4", gop_s=4)
    q = next(q for q in generate_questions(world, per_kind=1) if q.kind == "needle")
    settings = tiny_agent_settings(Settings(data_dir=tmp_path / "home"))
    settings.model.path = resolve_model_path("vidra-tiny")
    with Client(settings) as c:
        # the whole video as the evidence (a numpy array, as users hold spans): every tool
        # call that surfaced a frame surfaced it
        whole = c.submit(video, q.text, q.options, q.answer, rollouts=2,
                         evidence=np.array([[0.0, 60.0]]))  # fmt: skip
        needle = c.submit(video, q.text, q.options, q.answer, evidence=evidence_spans(q))
        plain = c.submit(video, q.text, q.options, q.answer, rollouts=2)
        whole.result(), needle.result(), plain.result()

        def credit(job_id: str) -> list[tuple[int | None, float]]:
            return [(r.step_order, r.value) for e in c.store.episodes_of_job(job_id)
                    for r in c.episode(e.id).rewards if r.name == "evidence_credit"]  # fmt: skip

        got = credit(whole.id)
        assert got and all(order is not None for order, _ in got)
        assert any(v == 1.0 for _, v in got)
        assert credit(needle.id) and {v for _, v in credit(needle.id)} <= {0.0, 1.0}
        assert credit(plain.id) == []
