"""vidra-tiny: the shipped model loads offline by name and still meets the held-out accuracy
recorded when it was trained; `vidra model train-tiny` is deterministic by seed."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from vidra.config import Settings
from vidra.models import load_chat_model, resolve_model_path
from vidra.models.train_tiny import TinyTrainSpec, eval_worlds, evaluate_model, train_tiny


def _shipped() -> Path:
    return Path(resolve_model_path("vidra-tiny"))


def test_vidra_tiny_is_packaged_small_and_loads_by_name() -> None:
    path = _shipped()
    size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    assert size <= 20e6, f"vidra-tiny is {size / 1e6:.1f} MB (limit 20 MB)"
    for name in ("model.safetensors", "tokenizer.json", "processor_config.json", "metrics.json"):
        assert (path / name).is_file(), name
    settings = Settings()
    settings.model.path = "vidra-tiny"
    model = load_chat_model(settings)
    assert Path(model.source) == path  # type: ignore[attr-defined]


@pytest.mark.slow
def test_shipped_vidra_tiny_meets_its_recorded_held_out_accuracy(tmp_path: Path) -> None:
    path = _shipped()
    recorded = json.loads((path / "metrics.json").read_text())
    spec = TinyTrainSpec(**recorded["spec"])
    now = evaluate_model(str(path), eval_worlds(spec, tmp_path / "videos"), spec, tmp_path)
    held = recorded["held_out"]
    print(f"recorded {held['accuracy']:.3f}, now {now['accuracy']:.3f}")
    assert now["questions"] == held["questions"]
    assert abs(now["accuracy"] - held["accuracy"]) <= 0.05, (now, held)
    for role, rate in held["format_rate"].items():
        assert abs(now["format_rate"][role] - rate) <= 0.1, (role, now["format_rate"], rate)
    # chance on this benchmark is 0.30 (four options, two for ordering questions)
    assert held["accuracy"] > 0.3
    assert held["format_rate"]["planner"] >= 0.9 and held["format_rate"]["critic"] >= 0.9


def _digest(path: Path) -> str:
    return hashlib.sha256((path / "model.safetensors").read_bytes()).hexdigest()


@pytest.mark.slow
def test_train_tiny_cli_is_deterministic_and_saves_metrics(tmp_path: Path) -> None:
    env = {**os.environ, "VIDRA_DATA_DIR": str(tmp_path / "home"), "OMP_NUM_THREADS": "2"}
    out = subprocess.run(
        [sys.executable, "-m", "vidra", "model", "train-tiny", "--out", str(tmp_path / "a"),
         "--work", str(tmp_path / "work"), "--worlds", "1", "--eval-worlds", "1",
         "--world-seconds", "60", "--epochs", "2"],
        capture_output=True, text=True, timeout=900, env=env,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    metrics = json.loads((tmp_path / "a" / "metrics.json").read_text())
    assert metrics["oracle_accuracy"] >= 0.95  # the oracle knows the world
    assert set(metrics["train_examples"]) == {"planner", "selector", "reasoner", "critic"}
    losses = metrics["sft_loss_by_epoch"]
    assert len(losses) == 2 and losses[1] < losses[0]
    assert metrics["held_out"]["questions"] > 0
    again = TinyTrainSpec(train_worlds=1, eval_worlds=0, world_s=60, epochs=2)
    train_tiny(tmp_path / "b", again, tmp_path / "work2")
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b"), "same seed, different weights"
