"""The staleness bound of online retraining: which adapter versions a step may come from."""

from __future__ import annotations

from vidra.config import Settings
from vidra.pipelines.retrain import allowed_versions
from vidra.storage import TrajectoryStore

URI = "sqlite:///mlflow.db"


def _promoted(store: TrajectoryStore, version: str, adapter: str) -> None:
    run = store.create_training_run("grpo", {}, [])
    store.record_model_version(
        "reasoner", "vidra-reasoner", version, f"mlflow-{version}",
        {"adapter_version": adapter}, tracking_uri=URI,
    )  # fmt: skip
    store.finish_training_run(run.id, "done")
    store.set_promotion(run.id, "pending", versions={"reasoner": version})
    store.promote(run.id, {"reasoner": ("vidra-reasoner", version)}, URI)


def test_the_base_model_is_allowed_until_enough_champions_replace_it() -> None:
    with TrajectoryStore(settings=Settings()) as store:
        assert allowed_versions(store, URI, ["reasoner"], 1) == {"reasoner": {"base"}}
        _promoted(store, "1", "reasoner@a")
        assert allowed_versions(store, URI, ["reasoner"], 1) == {"reasoner": {"reasoner@a", "base"}}
        _promoted(store, "2", "reasoner@b")
        assert allowed_versions(store, URI, ["reasoner"], 1) == {
            "reasoner": {"reasoner@a", "reasoner@b"}
        }
        assert allowed_versions(store, URI, ["reasoner"], 0) == {"reasoner": {"reasoner@b"}}
        assert "base" in allowed_versions(store, URI, ["reasoner"], 2)["reasoner"]
