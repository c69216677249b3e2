"""A whole retraining cycle on Ray Train with MLflow tracking, on the tiny model: both gate
branches are forced (a cycle that promotes, then one that registers only)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest

from vidra.api import Client
from vidra.errors import InvalidInput
from vidra.pipelines.retrain import retrain, step_line
from vidra.rl.datasets import RewardSpec
from vidra.rl.tracking import champion_adapters, version_adapters

from .helpers import record_groups, tiny_settings

pytestmark = pytest.mark.integration  # real Ray Train and MLflow

SPEC = RewardSpec({"accuracy": 1.0, "accuracy_judge": 1.0})


def test_retrain_cycle_tracks_registers_and_gates(tiny_model_path: Path, tmp_path: Path) -> None:
    import mlflow
    import ray

    settings = tiny_settings(tmp_path, tiny_model_path)
    settings.train.batch_size = 4
    with pytest.raises(InvalidInput, match="no GRPO samples"):
        retrain(settings, "grpo", ["reasoner"])
    record_groups(settings, seed=5, questions=2, rollouts=3, judge="accuracy_judge")
    try:
        result = retrain(settings, "grpo", ["reasoner"], spec=SPEC)
        assert result.promoted, result.decision
        with Client(settings) as client:  # champion loads back from the store and MLflow
            store = client.store
            champions = champion_adapters(settings, store, ["reasoner"])
            assert (Path(champions["reasoner"]) / "adapter_config.json").is_file()
            assert [v.alias for v in store.model_versions("reasoner")] == ["champion"]
            assert "reasoner" in client.model.adapters
        # the next cycle starts after this one: nothing new to learn from
        with pytest.raises(InvalidInput, match="no GRPO samples: 0 groups"):
            retrain(settings, "grpo", ["reasoner"])
        record_groups(settings, seed=6, questions=2, rollouts=3, judge="accuracy_judge")
        settings.train.promote = "never"
        settings.train.normalise_std = False  # centred advantages (Dr. GRPO), recorded
        settings.train.seed = 3  # another sample order, recorded
        rows: list[dict[str, object]] = []
        scratch: set[str] = set()  # the cycle's temp dirs seen while it ran

        def follow(row: dict[str, object]) -> None:
            rows.append(row)
            scratch.update(p.name for p in Path(tempfile.gettempdir()).glob("vidra-*-*-*"))

        second = retrain(settings, "grpo", ["reasoner"], spec=SPEC, on_step=follow)
    finally:
        ray.shutdown()
    assert result.samples > 0 and result.versions == {"reasoner": "1"}
    assert "vidra-reasoner v1" in result.summary() and "MLflow run" in result.summary()
    assert not second.promoted and "registered only" in second.decision
    assert second.versions == {"reasoner": "2"}
    # a user follows the cycle: training steps, then the gate's questions, arm by arm
    gate = [r for r in rows if "gate" in r]
    assert gate == [{"gate": arm, "done": 2, "total": 2} for arm in ("candidate", "champion")]
    assert rows.index(gate[0]) > 0 and all("gate" not in r for r in rows[: rows.index(gate[0])])
    assert step_line(gate[0]) == "  gate candidate: 2/2 questions"
    # the gate's scratch store is there while the gate runs (its progress is reported from
    # inside it) and, like the worker's step checkpoints, removed after the cycle (each cycle
    # left ~30 MB in /tmp with the tiny model). Training's lines are read every 0.5 s, so
    # the worker's short-lived dir is not always seen while it exists
    ours = {n for n in scratch if n.startswith(f"vidra-{second.training_run_id}-")}
    assert any("-gate-" in n for n in ours), scratch
    for run_id in (result.training_run_id, second.training_run_id):
        assert not list(Path(tempfile.gettempdir()).glob(f"vidra-{run_id}-*")), run_id
    mlflow.set_tracking_uri(settings.resolved_tracking_uri())
    client = mlflow.tracking.MlflowClient()
    run = client.get_run(result.mlflow_run_id)
    assert run.data.params["algorithm"] == "grpo"
    assert run.data.params["normalise_std"] == "True"
    assert any(k.startswith("reasoner/loss") for k in run.data.metrics)
    assert {"gate/candidate", "gate/champion", "gate/ci95_low"} <= set(run.data.metrics)
    assert str(client.get_model_version_by_alias("vidra-reasoner", "champion").version) == "1"
    with Client(settings) as c:
        runs = c.store.training_runs()
        assert [r.status for r in runs] == ["done", "done"]
        assert [r.config["advantages"] for r in runs] == ["std", "centred"]
        assert [r.config["train"]["seed"] for r in runs] == [0, 3]
        assert runs[0].n_episodes == result.episodes
        versions = {v.version: v.alias for v in c.store.model_versions("reasoner")}
        assert versions == {"1": "champion", "2": None}  # the champion did not move
        # the rejected version is still there to evaluate: its own adapter, not the champion's
        rejected = version_adapters(settings, c.store, {"reasoner": "2", "planner": "9"})
        assert set(rejected) == {"reasoner"}  # an unknown version is skipped
        champ = champion_adapters(settings, c.store, ["reasoner"])["reasoner"]
        assert rejected["reasoner"] != champ
        assert (Path(rejected["reasoner"]) / "adapter_config.json").is_file()


def test_resampled_cycle_learns_from_single_rollouts(tiny_model_path: Path, tmp_path: Path) -> None:
    """With ``train.resample`` the reasoner trains from episodes answered once each (no
    groups, so plain GRPO has nothing): its per-step groups replace its episode samples, and
    the training run and MLflow say so."""
    import mlflow
    import ray

    settings = tiny_settings(tmp_path, tiny_model_path)
    settings.train.batch_size, settings.train.promote = 8, "never"
    record_groups(settings, seed=4, questions=2, rollouts=1)
    with pytest.raises(InvalidInput, match="no GRPO samples"):
        retrain(settings, "grpo", ["reasoner"])
    settings.train.resample = 1
    with pytest.raises(InvalidInput, match="resample=1: comparing replies needs >= 2"):
        retrain(settings, "grpo", ["reasoner"])
    settings.train.resample = 6
    try:
        result = retrain(settings, "grpo", ["reasoner"])
    finally:
        ray.shutdown()
    assert result.samples > 0 and result.samples % 6 == 0 and result.versions == {"reasoner": "1"}
    # the lineage: the episodes whose reasoner prompts made a mixed group, one per group
    assert 1 <= result.episodes <= min(2, result.samples // 6)
    with Client(settings) as c:
        run = c.store.training_runs()[-1]
        assert run.status == "done" and run.config["resample"] == 6
        # what the samples were rewarded by: the reasoner's replies by their own answers
        assert run.config["reward_spec"]["resampled"] == {"reasoner": {"accuracy": 1.0}}
    mlflow.set_tracking_uri(settings.resolved_tracking_uri())
    params = mlflow.tracking.MlflowClient().get_run(result.mlflow_run_id).data.params
    assert params["resample"] == "6" and params["dataset_samples"] == str(result.samples)
    assert json.loads(params["reward_spec"])["resampled"] == {"reasoner": {"accuracy": 1.0}}
