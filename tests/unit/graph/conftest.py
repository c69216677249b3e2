from __future__ import annotations

from pathlib import Path

import pytest

from vidra.video.synthetic import Question, WorldSpec, generate_questions, make_world, render_world


@pytest.fixture(scope="session")
def world_video(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Question]]:
    world = make_world(WorldSpec(duration=120, fps=4, width=160, height=90, seed=1))
    path = render_world(world, tmp_path_factory.mktemp("graph") / "w.mp4", gop_s=4)
    return path, generate_questions(world, per_kind=1, video=str(path))


@pytest.fixture
def make_client():  # type: ignore[no-untyped-def]
    """Build a `Client` around a model: local thread pool, SQLite store and checkpointer."""
    from vidra.api import Client

    return lambda model: Client(model=model)
