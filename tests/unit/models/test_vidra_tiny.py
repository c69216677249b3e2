"""vidra-tiny: the shipped model loads offline by name and still meets the held-out accuracy
recorded when it was trained; `vidra model train-tiny` is deterministic by seed."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

from vidra.config import Settings
from vidra.models import load_chat_model, resolve_model_path
from vidra.pipelines.train_tiny import TinyTrainSpec, eval_worlds, evaluate_model, train_tiny


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
def test_shipped_vidra_tiny_meets_its_recorded_held_out_accuracy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _shipped()
    recorded = json.loads((path / "metrics.json").read_text())
    spec = TinyTrainSpec(**recorded["spec"])
    made: list[Path] = []
    mkdtemp = tempfile.mkdtemp

    def spy(*args: Any, **kwargs: Any) -> str:
        made.append(Path(mkdtemp(*args, **kwargs)))
        return str(made[-1])

    monkeypatch.setattr(tempfile, "mkdtemp", spy)
    now = evaluate_model(str(path), eval_worlds(spec, tmp_path / "videos"), spec, tmp_path)
    # the scratch store the questions were answered in is removed afterwards
    assert [p.name.startswith("vidra-eval-") for p in made] == [True]
    assert not made[0].exists()
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
         "--world-seconds", "60", "--epochs", "2", "--long-worlds", "1",
         "--long-world-seconds", "90", "--self-epochs", "1", "--caption-worlds", "1"],
        capture_output=True, text=True, timeout=900, env=env,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    metrics = json.loads((tmp_path / "a" / "metrics.json").read_text())
    assert metrics["oracle_accuracy"] >= 0.95  # the oracle knows the world
    assert set(metrics["train_examples"]) == {
        "planner",
        "selector",
        "reasoner",
        "critic",
        "captioner",
    }
    losses = metrics["sft_loss_by_epoch"]
    assert len(losses) == 2 and losses[1] < losses[0]
    # stage 2 ran, on its own indexes, continuing from stage 1's weights (not from scratch)
    [self_loss] = metrics["self_index_loss_by_epoch"]
    assert 0.0 < self_loss < losses[0]
    assert metrics["held_out"]["questions"] > 0
    assert metrics["reasoner_given_evidence"]["questions"] > 0
    assert metrics["caption_accuracy"]["moments"] > 0
    # captions of the training world (every 2 s) and of the caption-only world (every 4 s)
    assert metrics["train_examples"]["captioner"] == 30 + 15
    assert 0.0 <= metrics["held_out"]["selector_hit_rate"] <= 1.0
    again = TinyTrainSpec(train_worlds=1, eval_worlds=0, world_s=60, epochs=2, long_worlds=1,
                          long_world_s=90, self_epochs=1, caption_worlds=1)  # fmt: skip
    train_tiny(tmp_path / "b", again, tmp_path / "work2")
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b"), "same seed, different weights"


def test_reasoner_drills_show_the_evidence_and_answer_right(
    tmp_path: Path, tiny_model_path: Path
) -> None:
    """Drills are reasoner requests built like the agent's, whose frames include every
    evidence time (counting: no other frame shows the counted colour) and whose target is
    the right option."""
    import re

    from transformers import AutoTokenizer

    from vidra.models.protocol import ImagePart, TextPart
    from vidra.pipelines.drills import reasoner_drills
    from vidra.pipelines.heldout import synthetic_world, synthetic_worlds
    from vidra.pipelines.train_tiny import _drill_worlds, tiny_agent_settings
    from vidra.video import open_reader
    from vidra.video.synthetic.questions import evidence_times

    spec = TinyTrainSpec(world_s=120, drill_per_kind=2, drills_per_question=2)
    worlds = synthetic_worlds(tmp_path / "v", [7], spec.world_s)
    tok = AutoTokenizer.from_pretrained(tiny_model_path)
    settings = tiny_agent_settings(Settings(data_dir=tmp_path / "home"), spec)
    triples = _drill_worlds(worlds, [7], spec)
    drills = reasoner_drills(triples, open_reader(settings), settings.agents.frame_size,
                             spec.drills_per_question, spec.drill_max_frames, tok,
                             tok.eos_token_id, spec.seed)  # fmt: skip
    world = synthetic_world(7, spec.world_s)
    assert len(drills) >= 10 and {role for _, role, _, _ in drills} == {"reasoner"}
    kinds = set()
    for key, _, req, ids in drills:
        parts = req.messages[-1].content
        times = [p.time for p in parts if isinstance(p, ImagePart)]
        text = parts[0].text
        assert isinstance(parts[0], TextPart) and text.startswith("[reasoner/v2]")
        q = next(x for x in _questions(world, key[2], spec.drill_per_kind))
        kinds.add(q.kind)
        targets = evidence_times(q)
        assert all(any(abs(t - e) <= 0.25 for t in times) for e in targets), (q, times)
        assert len(targets) < len(times) <= spec.drill_max_frames + 1
        target = json.loads(tok.decode(ids, skip_special_tokens=True))
        assert target["answer"] == q.answer
        assert all(any(abs(t - e) <= 2.0 for e in targets) for t in target["evidence"])
        if q.kind == "counting":
            colour = re.search(r"an? (\w+) object", q.text).group(1)  # type: ignore[union-attr]
            others = [t for t in times if all(abs(t - e) > 0.25 for e in targets)]
            assert all(o.colour != colour for t in others for o in world.visible_at(t))
    assert {"needle", "counting", "state"} <= kinds


def _questions(world, qid: str, per_kind: int):  # type: ignore[no-untyped-def]
    from vidra.video.synthetic import generate_questions
    from vidra.video.synthetic.questions import needle_questions

    seed = world.spec.seed
    return [q for q in [*generate_questions(world, per_kind, seed=10_000 + seed),
                        *needle_questions(world)] if q.id == qid]  # fmt: skip
