"""The README's main command, small: ``vidra demo`` answers with vidra-tiny, stores the
trajectories, runs one GRPO cycle on Ray Train tracked in MLflow, and reports before/after."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.slow
@pytest.mark.integration  # real Ray Train and MLflow
def test_demo_runs_the_whole_loop(tmp_path: Path) -> None:
    env = {**os.environ, "VIDRA_DATA_DIR": str(tmp_path / "home"), "OMP_NUM_THREADS": "2"}
    out = subprocess.run(
        [sys.executable, "-m", "vidra", "demo", "--out", str(tmp_path / "demo"), "--minutes", "3",
         "--questions", "3", "--rollouts", "3", "--eval-questions", "4"],
        capture_output=True, text=True, timeout=1200, env=env,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    text = out.stdout
    # Sampling may leave every group without reward variance; the demo then answers more
    # questions and retries, so: at least the 3 asked, and one answer line per question.
    asked = len(re.findall(r"^  Q\d+ \(", text, flags=re.M))
    assert "vidra-tiny" in text and asked >= 3 and text.count("-> ") == asked
    ci = r"[\d.]+ \[[\d.]+, [\d.]+\]"
    assert re.search(rf"accuracy \[95% CI\]\s+{ci}\s+{ci}", text), text[-2000:]
    assert re.search(r"frames per question\s+[\d.]+\s+[\d.]+", text)
    assert re.search(r"held-out questions", text) and "what the figures mean" in text
    assert re.search(rf"training set: \d+ rollouts .* accuracy {ci}", text)
    assert re.search(r"^\s+r2 ", text, flags=re.M)  # every rollout is shown live, not only r0
    assert "MLflow run" in text and ("PROMOTED" in text or "not promoted" in text)
    assert "vidra show" in text and "mlflow ui --backend-store-uri sqlite:///" in text
    assert (tmp_path / "home" / "vidra.db").is_file() and (
        tmp_path / "home" / "mlflow.db"
    ).is_file()
