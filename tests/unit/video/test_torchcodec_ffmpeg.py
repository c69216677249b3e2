"""torchcodec without FFmpeg's shared libraries: one `BackendUnavailable` naming the fix.

torchcodec imports fine without FFmpeg and fails only when it decodes (a page of tracebacks);
vidra checks ``torchcodec.ffmpeg_major_version`` (None when no FFmpeg was found) up front.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from vidra.errors import BackendUnavailable
from vidra.video import get_decoder


def test_missing_ffmpeg_is_one_error_naming_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    import torchcodec

    monkeypatch.setattr(torchcodec, "ffmpeg_major_version", None)
    with pytest.raises(BackendUnavailable, match=r"apt-get install -y ffmpeg") as err:
        get_decoder("torchcodec")
    assert "\n" not in str(err.value) and "libavutil" in str(err.value)


def test_with_ffmpeg_present_the_engine_builds() -> None:
    import torchcodec

    if torchcodec.ffmpeg_major_version is None:  # make test / .ci/run install ffmpeg first
        pytest.fail("FFmpeg's shared libraries are missing: run infra/scripts/system_deps.sh test")
    assert get_decoder("torchcodec").name == "torchcodec"


def test_cli_prints_one_line_without_ffmpeg(counter_gop: Any, tmp_path: Path) -> None:
    code = (
        "import sys, torchcodec; torchcodec.ffmpeg_major_version = None\n"
        "from vidra.cli import main\n"
        f"sys.exit(main(['video', 'sample', {str(counter_gop.path)!r}, {str(tmp_path)!r}, "
        "'-n', '2', '--backend', 'torchcodec']))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0 and "Traceback" not in out.stderr
    assert "ffmpeg" in out.stderr
