"""bench/seed_means.py pools one recipe's trainings from separate result files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SUFFIX = " (1 cycle, shared rollouts)"


def _file(path: Path, rows: dict[str, list[int]]) -> Path:
    path.write_text(json.dumps({"rows": {
        label: {"correct": {f"q{i}": v for i, v in enumerate(got)}} for label, got in rows.items()
    }}))  # fmt: skip
    return path


def _run(*files: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(ROOT / "bench" / "seed_means.py"), *map(str, files)],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)  # fmt: skip


def test_seeds_from_two_files_are_pooled_question_by_question(tmp_path: Path) -> None:
    sft = [0, 0, 0, 0, 1, 1, 1, 1] * 10
    seed0 = [1, 1, 0, 0, 1, 1, 1, 1] * 10  # +2 of 8
    seed1 = [1, 0, 0, 0, 1, 1, 1, 0] * 10  # +1 -1: 0
    a = _file(tmp_path / "a.json", {"SFT": sft, "recipe" + SUFFIX: seed0})
    b = _file(tmp_path / "b.json", {"SFT": sft, "recipe, training seed 1" + SUFFIX: seed1})
    out = _run(a, b)
    assert out.returncode == 0, out.stderr[-2000:]
    report = json.loads(out.stdout)
    mean = report["mean_of_seeds_minus_SFT"]["recipe"]
    assert mean["seeds"] == [0, 1] and mean["n"] == 80
    assert mean["diff"] == 0.125  # (2/8 + 0/8) / 2
    assert mean["ci95"][0] < 0.125 < mean["ci95"][1]
    assert report["minus_SFT"]["recipe" + SUFFIX]["diff"] == 0.25


def test_files_of_different_benchmarks_are_refused(tmp_path: Path) -> None:
    a = _file(tmp_path / "a.json", {"SFT": [0, 1] * 20, "recipe" + SUFFIX: [1, 1] * 20})
    b = _file(
        tmp_path / "b.json", {"SFT": [1, 1] * 20, "recipe, training seed 1" + SUFFIX: [1, 1] * 20}
    )
    out = _run(a, b)
    assert out.returncode != 0
    assert "SFT row differs" in out.stderr and "b.json" in out.stderr
