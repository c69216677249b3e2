"""A retraining cycle against a real MLflow server on 127.0.0.1; the champion loads back by
alias; an unreachable server fails before any training."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.scripts.free_ports import free_port
from tests.unit.rl.helpers import record_groups, tiny_settings
from vidra.api import Client
from vidra.config import Settings
from vidra.errors import TrackingUnavailable
from vidra.pipelines.retrain import retrain
from vidra.rl.datasets import RewardSpec
from vidra.rl.tracking import champion_adapters

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("mlflow")
    port = free_port()
    log = root / "server.log"  # a file, not a pipe nobody reads: its request log would fill it
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--backend-store-uri",
            f"sqlite:///{root / 'mlflow.db'}",
            "--artifacts-destination",
            (root / "artifacts").as_uri(),
            "--workers",
            "1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=(err := log.open("w")),
    )
    err.close()  # the server has its own copy
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "/health", timeout=2):
                break
        except OSError as exc:
            if proc.poll() is not None:
                raise RuntimeError(f"mlflow server died: {log.read_text()[-3000:]}") from exc
            time.sleep(0.5)
    else:
        proc.kill()
        raise RuntimeError("mlflow server did not start in 120 s")
    yield url
    proc.terminate()
    proc.wait(timeout=30)


def test_cycle_against_a_real_mlflow_server(
    mlflow_server: str, tiny_model_path: Path, tmp_path: Path
) -> None:
    import ray

    settings = tiny_settings(tmp_path, tiny_model_path)
    settings.mlflow.tracking_uri = mlflow_server
    record_groups(settings, seed=6, questions=2, rollouts=3)
    try:
        result = retrain(settings, "grpo", ["reasoner"], spec=RewardSpec({"judge": 1.0}))
    finally:
        ray.shutdown()
    assert result.promoted and result.versions == {"reasoner": "1"}
    with Client(settings) as client:
        champions = champion_adapters(settings, client.store, ["reasoner"])
        assert (Path(champions["reasoner"]) / "adapter_config.json").is_file()
        assert "reasoner" in client.model.adapters  # new jobs pick the champion up


def test_unreachable_server_fails_before_training(tiny_model_path: Path, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    settings.mlflow.tracking_uri = "http://127.0.0.1:9"
    from vidra.rl.tracking import Tracker

    with pytest.raises(TrackingUnavailable, match="unreachable"):
        Tracker(settings, "x")
