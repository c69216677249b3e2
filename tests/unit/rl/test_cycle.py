"""A whole retraining cycle on Ray Train with MLflow tracking, on the tiny model."""

from __future__ import annotations

from pathlib import Path

import pytest

from vidra.api import Client
from vidra.errors import InvalidInput
from vidra.pipelines.retrain import retrain
from vidra.rl.tracking import champion_adapters

from .helpers import record_groups, tiny_settings


def test_retrain_cycle_tracks_registers_and_gates(tiny_model_path: Path, tmp_path: Path) -> None:
    import mlflow
    import ray

    settings = tiny_settings(tmp_path, tiny_model_path)
    settings.train.eval_questions = 2
    settings.train.batch_size = 4
    with pytest.raises(InvalidInput, match="no GRPO samples"):
        retrain(settings, "grpo", ["reasoner"])
    record_groups(settings, seed=5, questions=2, rollouts=3, judge="accuracy_judge")
    from vidra.rl.datasets import RewardSpec

    try:
        result = retrain(
            settings,
            "grpo",
            ["reasoner"],
            spec=RewardSpec({"accuracy": 1.0, "accuracy_judge": 1.0}),
        )
    finally:
        ray.shutdown()
    assert result.samples > 0 and result.versions == {"reasoner": "1"}
    assert "vidra-reasoner v1" in result.summary() and "MLflow run" in result.summary()
    mlflow.set_tracking_uri(settings.resolved_tracking_uri())
    run = mlflow.tracking.MlflowClient().get_run(result.mlflow_run_id)
    assert run.data.params["algorithm"] == "grpo"
    assert any(k.startswith("reasoner/loss") for k in run.data.metrics)
    assert "eval/candidate_accuracy" in run.data.metrics
    store_client = Client(settings)
    runs = store_client.store.training_runs()
    assert runs[-1].status == "done" and runs[-1].n_episodes == result.episodes
    versions = store_client.store.model_versions("reasoner")
    assert [v.version for v in versions] == ["1"]
    if result.promoted:  # champion loads back by alias and new jobs use it
        champions = champion_adapters(settings, ["reasoner"])
        assert (Path(champions["reasoner"]) / "adapter_config.json").is_file()
        assert versions[0].alias == "champion"
        assert "reasoner" in store_client.model.adapters
    store_client.close()
    # the next cycle starts after this one: nothing new to learn from
    with pytest.raises(InvalidInput, match="no GRPO samples: 0 groups"):
        retrain(settings, "grpo", ["reasoner"])
