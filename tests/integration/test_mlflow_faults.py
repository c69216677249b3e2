"""The MLflow server killed for real, at known points of a retraining cycle (mid-fit, or
where the cycle's test-only hook places the kill): the cycle fails in bounded time, marks its
run failed, promotes nothing; once the server is back, `reconcile` makes MLflow agree with
the store."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from infra.scripts.free_ports import free_port
from tests.unit.rl.helpers import record_groups, tiny_settings
from vidra.api import Client
from vidra.errors import TrackingUnavailable
from vidra.pipelines.retrain import retrain
from vidra.rl.datasets import RewardSpec
from vidra.rl.tracking import CHAMPION, champion_dir, reconcile
from vidra.storage import TrajectoryStore

pytestmark = pytest.mark.integration
SPEC = RewardSpec({"judge": 1.0})


class MlflowServer:
    """``mlflow server`` on 127.0.0.1 over a SQLite store that outlives a kill."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1",
             "--port", str(self.port), "--backend-store-uri",
             f"sqlite:///{self.root / 'mlflow.db'}", "--artifacts-destination",
             (self.root / "artifacts").as_uri(), "--workers", "1"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        until = time.monotonic() + 120
        while time.monotonic() < until:
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(self.url + "/health", timeout=2),
            ):
                return
            time.sleep(0.5)
        raise RuntimeError("mlflow server did not start in 120 s")

    def kill(self) -> None:
        import os
        import signal

        assert self.proc is not None
        # the server runs workers in its process group: kill them all, at once
        with contextlib.suppress(ProcessLookupError):
            os.killpg(os.getpgid(self.proc.pid), signal.SIGKILL)
        self.proc.kill()
        self.proc.wait(timeout=30)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[MlflowServer]:
    srv = MlflowServer(tmp_path / "mlflow")
    srv.start()
    yield srv
    with contextlib.suppress(Exception):
        srv.kill()


def _killer(srv: MlflowServer, at: str, when: list[float]):  # type: ignore[no-untyped-def]
    def hook(stage: str) -> None:
        if stage == at and not when:
            srv.kill()
            when.append(time.monotonic())

    return hook


def _settings(tmp_path: Path, model: Path, srv: MlflowServer):  # type: ignore[no-untyped-def]
    settings = tiny_settings(tmp_path / "home", model)
    settings.mlflow.tracking_uri = srv.url
    settings.mlflow.timeout_s = 15  # a killed server refuses at once; a busy one may be slow
    settings.mlflow.retries = 1
    return settings


def test_server_killed_mid_training_fails_the_cycle_in_bounded_time(
    server: MlflowServer, tiny_model_path: Path, tmp_path: Path
) -> None:
    """Killed at the fit's first step, of a fit planned for 60 epochs or more: the workers
    stop within a few steps (the next step's metrics find MLflow dead), not at the end."""
    import mlflow
    import ray

    settings = _settings(tmp_path, tiny_model_path, server)
    settings.train.epochs = 60
    record_groups(settings, seed=6, questions=2, rollouts=3)
    killed: list[float] = []
    steps: list[int] = []

    def on_step(row: dict[str, Any]) -> None:
        steps.append(int(row["step"]))
        if not killed:
            server.kill()
            killed.append(time.monotonic())

    try:
        with pytest.raises(TrackingUnavailable, match=r"during training.*marked failed"):
            retrain(settings, "grpo", ["reasoner"], spec=SPEC, on_step=on_step)
    finally:
        ray.shutdown()
    assert killed and time.monotonic() - killed[0] < 120  # target: under 2 minutes
    assert steps and max(steps) <= 10 < 60, steps  # stopped mid-fit, not after 60 epochs
    with TrajectoryStore(settings=settings) as store:
        [run] = store.training_runs()
        assert run.status == "failed" and store.model_versions() == []
        assert store.champions(server.url) == {}
        server.start()  # back: the open MLflow run is marked failed there too
        assert any("marked FAILED" in c for c in reconcile(settings, store))
        assert reconcile(settings, store) == []  # and only once
    mlflow.set_tracking_uri(server.url)
    assert mlflow.tracking.MlflowClient().get_run(run.mlflow_run_id).info.status == "FAILED"


def test_server_killed_during_promotion_promotes_nothing(
    server: MlflowServer, tiny_model_path: Path, tmp_path: Path
) -> None:
    """Cycle 1 promotes planner and reasoner v1. Cycle 2 is killed after moving planner's
    alias to v2: the store keeps v1 for both, clients load v1, and after the restart
    MLflow's aliases are put back on v1."""
    import mlflow
    import ray

    settings = _settings(tmp_path, tiny_model_path, server)
    roles = ["planner", "reasoner"]
    record_groups(settings, seed=6, questions=2, rollouts=3)
    killed: list[float] = []
    try:
        first = retrain(settings, "grpo", roles, spec=SPEC)
        assert first.promoted and first.versions == {"planner": "1", "reasoner": "1"}
        record_groups(settings, seed=7, questions=2, rollouts=3)
        with pytest.raises(TrackingUnavailable):
            retrain(settings, "grpo", roles, spec=SPEC,
                    hook=_killer(server, "before_alias:reasoner", killed))  # fmt: skip
    finally:
        ray.shutdown()
    with TrajectoryStore(settings=settings) as store:
        runs = store.training_runs()
        assert [r.status for r in runs] == ["done", "failed"]
        assert {r: v.version for r, v in store.champions(server.url).items()} == {
            "planner": "1",
            "reasoner": "1",
        }
        assert (runs[1].promotion or {}).get("state") == "pending"
        server.start()
        changed = reconcile(settings, store)
        assert any("vidra-planner: champion 2 -> 1" in c for c in changed), changed
        assert store.get_training_run(runs[1].id).promotion["state"] == "rolled_back"  # type: ignore[index]
    client = mlflow.tracking.MlflowClient(server.url)
    for role in roles:
        assert str(client.get_model_version_by_alias(f"vidra-{role}", CHAMPION).version) == "1"
    settings.mlflow.use_champions = True
    with Client(settings) as c:  # new clients load the store's champions: v1
        assert set(c.runtime.adapters()) == set(roles)
        for role, path in c.runtime.adapters().items():
            assert Path(path).is_relative_to(champion_dir(settings, role, "1"))
