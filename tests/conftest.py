"""Shared test setup: keep torch to the cores we have, and keep vidra's data in a temp dir."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "2")


@pytest.fixture(autouse=True)
def _isolated_data_dir(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VIDRA_DATA_DIR", str(tmp_path_factory.mktemp("vidra-data")))


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    from tests.pg import postgres_server

    with postgres_server() as url:
        yield url


@pytest.fixture
def pg_url(pg_server: str) -> Iterator[str]:
    from tests.pg import fresh_database

    with fresh_database(pg_server) as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The conformance suite's database: a SQLite file, or a fresh real PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'vidra.db'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny Qwen2.5-VL built once per session, exactly as `vidra model build-tiny` builds it."""
    import torch

    from vidra.models.tiny import build_tiny

    torch.set_num_threads(2)
    return build_tiny(tmp_path_factory.mktemp("models") / "tiny", size="xs", seed=0)
