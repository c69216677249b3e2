"""Bad input fails before any work, with a clear error; nothing is stored for it."""

from __future__ import annotations

from pathlib import Path

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
