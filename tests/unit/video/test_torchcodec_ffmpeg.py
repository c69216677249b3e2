"""torchcodec without FFmpeg's shared libraries: one `BackendUnavailable` naming the fix.

torchcodec imports fine without FFmpeg and fails only when it decodes (a page of tracebacks);
vidra checks ``torchcodec.ffmpeg_major_version`` (None when no FFmpeg was found) up front.
"""

from __future__ import annotations

import os
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


def test_the_ffmpeg_check_reads_the_whole_linker_cache(tmp_path: Path) -> None:
    """`system_deps.sh` finds FFmpeg's libraries in a linker cache that lists them before
    the rest, however long the rest takes to print: a ``ldconfig -p | grep -q`` pipeline under
    pipefail failed there (grep exits at its match, ldconfig dies of SIGPIPE) and said
    MISSING right after apt-get had installed FFmpeg on a fresh machine."""
    fake = tmp_path / "ldconfig"
    libs = "".join(f"\tlib{n}.so.5 (libc6,x86-64) => /lib/lib{n}.so.5\\n"
                   for n in ("avutil", "avcodec", "avformat", "swscale"))  # fmt: skip
    fake.write_text(f'#!/usr/bin/env bash\nprintf "{libs}"\nsleep 0.3\necho "\tlibz.so.1"\n')
    fake.chmod(0o755)
    script = Path(__file__).parents[3] / "infra" / "scripts" / "system_deps.sh"
    env = {**os.environ, "LDCONFIG": str(fake), "SYSTEM_DEPS_INSTALL": "0"}
    out = subprocess.run(["bash", str(script), "run"], capture_output=True, text=True, env=env,
                         timeout=60)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "system package ffmpeg: present" in out.stdout
    empty = tmp_path / "empty"
    empty.write_text('#!/usr/bin/env bash\necho "\tlibz.so.1"\n')
    empty.chmod(0o755)
    out = subprocess.run(["bash", str(script), "run"], capture_output=True, text=True,
                         env={**env, "LDCONFIG": str(empty)}, timeout=60)  # fmt: skip
    assert out.returncode == 1 and "ffmpeg: MISSING" in out.stderr
