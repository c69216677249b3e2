from pathlib import Path

import pytest
from pydantic import ValidationError

from vidra import BackendUnavailable, Settings
from vidra.video import open_reader


def test_env_prefix_and_nesting(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("VIDRA_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("VIDRA_VIDEO__BACKEND", "decord")
    monkeypatch.setenv("VIDRA_VIDEO__MAX_PIXELS", "1000")
    s = Settings()
    assert s.data_dir == tmp_path
    assert s.video.backend == "decord" and s.video.max_pixels == 1000
    reader = open_reader(s)
    assert reader.name == "decord" and reader.max_pixels == 1000


def test_bad_values_are_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIDRA_VIDEO__BACKEND", "ffmpeg-cli")
    with pytest.raises(ValidationError, match="backend"):
        Settings()


def test_missing_backend_names_the_extra() -> None:
    err = BackendUnavailable("decord", "decord", "No module named 'decord'")
    assert "pip install 'vidra[decord]'" in str(err)
