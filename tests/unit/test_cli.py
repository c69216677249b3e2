"""The ``vidra`` command, run as users run it (a subprocess), and in-process for speed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from vidra.cli import main


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth")
    assert (
        main(["video", "synth", str(out), "--minutes", "3", "--seed", "1", "--size", "160x90"]) == 0
    )
    return out


def test_synth_writes_video_events_questions(synth: Path) -> None:
    assert (synth / "video.mp4").stat().st_size > 0
    assert (synth / "events.jsonl").read_text().count("\n") > 2
    lines = (synth / "questions.jsonl").read_text().splitlines()
    assert lines and all(json.loads(x)["video"].endswith("video.mp4") for x in lines)


def test_probe_prints_json(synth: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["video", "probe", str(synth / "video.mp4"), "--keyframes"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["frame_count"] == 3 * 60 * 8 and data["width"] == 160
    assert data["keyframe_times"][:2] == [0.0, 8.0]


def test_sample_and_storyboard(synth: Path, tmp_path: Path) -> None:
    video = str(synth / "video.mp4")
    assert main(["video", "sample", video, str(tmp_path / "f"), "-n", "4", "--size", "64"]) == 0
    assert len(list((tmp_path / "f").glob("*.png"))) == 4
    assert (
        main(["video", "sample", video, str(tmp_path / "g"), "--segment", "10:20", "-n", "3"]) == 0
    )
    names = sorted(p.name for p in (tmp_path / "g").glob("*.png"))
    assert len(names) == 3 and all(10 <= float(n.split("_")[2][:-5]) <= 20 for n in names)
    assert main(["video", "storyboard", video, str(tmp_path / "sb.png"), "-n", "4"]) == 0
    assert (tmp_path / "sb.png").stat().st_size > 0
    assert main(["video", "shots", video]) == 0


def test_errors_are_one_line_and_exit_2(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "vidra", "video", "probe", str(tmp_path / "nope.mp4")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0 and "nope.mp4" in out.stderr
    assert "Traceback" not in out.stderr


def test_bad_arguments(synth: Path, tmp_path: Path) -> None:
    video, out = str(synth / "video.mp4"), str(tmp_path / "x")
    assert main(["video", "sample", video, out, "--indices", "a,b"]) == 2
    assert main(["video", "sample", video, out, "--indices", "99999"]) == 2
    assert main(["video", "synth", out, "--size", "big"]) == 2
