"""Shared test setup: keep torch to the cores we have, and keep vidra's data in a temp dir."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "2")


@pytest.fixture(autouse=True)
def _isolated_data_dir(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VIDRA_DATA_DIR", str(tmp_path_factory.mktemp("vidra-data")))
