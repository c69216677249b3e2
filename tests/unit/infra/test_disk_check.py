"""`infra/scripts/disk_check.sh`: setup and the test runner stop before a step that would
run out of disk half-way (a CI run once failed in pip with ENOSPC), in one line."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[3] / "infra" / "scripts" / "disk_check.sh"


def _check(path: Path, gib: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SCRIPT), str(path), str(gib), "installing the environment"],
        capture_output=True,
        text=True,
        check=False,
    )


def test_enough_space_passes_silently_and_too_little_names_cause_and_fix(tmp_path: Path) -> None:
    free_gib = shutil.disk_usage(tmp_path).free // 2**30
    ok = _check(tmp_path / "not" / "made" / "yet", 0)  # measured at the nearest parent
    assert ok.returncode == 0 and ok.stdout == ok.stderr == ""
    short = _check(tmp_path, free_gib + 1000)
    assert short.returncode == 1
    lines = short.stderr.strip().splitlines()
    assert len(lines) == 1, short.stderr
    assert f"needs about {free_gib + 1000} GiB" in lines[0]
    said = re.search(r"but (\d+) GiB is free", lines[0])
    assert said and abs(int(said.group(1)) - free_gib) <= 1, lines[0]  # other writers
    assert "free some space" in lines[0]
    assert not (tmp_path / "not").exists()
