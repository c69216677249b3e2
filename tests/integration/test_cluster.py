"""vidra on a real two-node Ray cluster on loopback (`infra/scripts/local_cluster.sh`: a
PostgreSQL, an MLflow server on it, a Ray head and a ``worker_node`` node as separate
processes): jobs from a separate driver run their episodes on the second node and land in
PostgreSQL; a retraining cycle trains with two Ray Train workers on the two nodes; a cycle
runs as a Ray job (`ray job submit`); a SQLite store or a local MLflow store is refused."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from vidra.config import Settings
from vidra.errors import ConfigError
from vidra.storage import TrajectoryStore

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "infra" / "scripts" / "local_cluster.sh"
EXPORT = re.compile(r"^export ([A-Z_]+)=(\S+)$")

DRIVER = """
import json, sys
import ray
from tests.unit.graph.scripts import Team
from vidra.api import Client
with Client(model=Team()) as client:
    ids = [client.submit(sys.argv[1], "Which is first?", ["red", "blue"], "red", 2,
                         {"max_rounds": 2, "frames_per_round": 4}).id for _ in range(2)]
    for j in ids:
        client.job(j).result(timeout=600)
    workers = client.runner.nodes()
    second = [n["NodeID"] for n in ray.nodes() if n["Alive"] and "worker_node" in n["Resources"]]
print(json.dumps({"jobs": ids, "workers": workers, "second": second}))
"""

TRAINER = """
import json, sys
from pathlib import Path
from tests.unit.rl.helpers import quick_gate, record_groups
from vidra.config import load_settings
from vidra.pipelines.retrain import retrain
from vidra.rl.datasets import RewardSpec
settings = load_settings()
settings.model.path = sys.argv[1]
settings.agents.max_tokens, settings.agents.strategy = 12, "uniform"
settings.train.num_workers, settings.train.placement, settings.train.batch_size = 2, "SPREAD", 2
quick_gate(settings)
record_groups(settings, seed=5, questions=2, rollouts=3)
result = retrain(settings, "grpo", ["reasoner"], spec=RewardSpec({"judge": 1.0}))
out = settings.data_dir / "adapters" / result.training_run_id / "0-grpo" / "progress.jsonl"
print(json.dumps({"run": result.training_run_id, "mlflow": result.mlflow_run_id,
                  "gate": {arm: (r["answered"], len(r["failed"]))
                           for arm, r in result.eval_report.items() if arm != "paired"},
                  "progress": [json.loads(x) for x in out.read_text().splitlines()]}))
"""


@pytest.fixture(scope="module")
def cluster() -> Iterator[dict[str, str]]:
    base = Path(tempfile.mkdtemp(prefix="vc-", dir="/tmp"))
    base.chmod(0o755)  # PostgreSQL runs as the 'postgres' user when the tests run as root
    env = {**os.environ, "VIDRA_CLUSTER_DASHBOARD": "1"}
    try:  # `down` also after an `up` that failed or ran out of time: no server outlives this
        up = subprocess.run(["bash", str(SCRIPT), "up", str(base / "c")], capture_output=True,
                            text=True, timeout=300, env=env)  # fmt: skip
        assert up.returncode == 0, up.stderr[-3000:]
        yield {m[1]: m[2] for m in map(EXPORT.match, up.stdout.splitlines()) if m}
    finally:
        subprocess.run(["bash", str(SCRIPT), "down", str(base / "c")], capture_output=True,
                       timeout=300)  # fmt: skip
        shutil.rmtree(base, ignore_errors=True)


def _env(cluster: dict[str, str], home: Path, **more: str) -> dict[str, str]:
    return {
        **os.environ,
        **cluster,
        "VIDRA_DATA_DIR": str(home),
        "VIDRA_RUNNER__EPISODE_RESOURCES": '{"worker_node": 1}',
        "VIDRA_RUNNER__WORKERS": "1",
        **more,
    }


def _ray_logs(cluster: dict[str, str]) -> str:
    """The ends of the head's dashboard agent and job server logs, for a failure message."""
    state = Path(cluster["VIDRA_CLUSTER_DIR"]) / "state.env"
    raytmp = dict(x.split("=", 1) for x in state.read_text().split())["RAY_TMP"]
    logs = Path(raytmp) / "session_latest" / "logs"
    return "".join(
        f"\n== {f.name}\n" + "\n".join(f.read_text(errors="replace").splitlines()[-30:])
        for f in [*sorted(logs.glob("dashboard_agent*.log")), logs / "dashboard_JobHead.log"]
        if f.exists()
    )


def _python(code: str, args: list[str], env: dict[str, str]) -> dict:  # type: ignore[type-arg]
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                         cwd=ROOT, env=env, timeout=1500)  # fmt: skip
    assert out.returncode == 0, out.stderr[-4000:]
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from vidra.video.synthetic import WorldSpec, make_world, render_world

    world = make_world(WorldSpec(duration=60, fps=4, width=160, height=90, seed=1))
    return render_world(world, tmp_path_factory.mktemp("cluster") / "w.mp4", gop_s=4)


def test_episodes_run_on_the_second_node_and_land_in_postgresql(
    cluster: dict[str, str], video: Path, tmp_path: Path
) -> None:
    got = _python(DRIVER, [str(video)], _env(cluster, tmp_path))
    [second] = got["second"]
    assert got["workers"] and all(w.startswith(f"ray:{second[:12]}:") for w in got["workers"])
    with TrajectoryStore(cluster["VIDRA_DATABASE_URL"]) as store:
        for job_id in got["jobs"]:
            eps = store.episodes_of_job(job_id)
            assert len(eps) == 2 and all(e.worker in got["workers"] for e in eps)
            assert all(store.get_episode(e.id).steps for e in eps)


def test_retraining_with_two_ray_train_workers_on_the_two_nodes(
    cluster: dict[str, str], tiny_model_path: Path, tmp_path: Path
) -> None:
    got = _python(TRAINER, [str(tiny_model_path)], _env(cluster, tmp_path))
    ranks = {(x["rank"], x["node"]) for x in got["progress"]}
    assert {r for r, _ in ranks} == {0, 1} and len({n for _, n in ranks}) == 2  # two nodes
    # the gate answered its questions (in its scratch store, in the driver), none failed
    assert got["gate"] == {"candidate": [2, 0], "champion": [2, 0]}, got["gate"]
    with TrajectoryStore(cluster["VIDRA_DATABASE_URL"]) as store:
        assert store.get_training_run(got["run"]).status == "done"
    import mlflow

    client = mlflow.tracking.MlflowClient(cluster["VIDRA_MLFLOW__TRACKING_URI"])
    assert client.get_run(got["mlflow"]).info.status == "FINISHED"


def test_a_retraining_cycle_submitted_as_a_ray_job(
    cluster: dict[str, str], tiny_model_path: Path, video: Path, tmp_path: Path
) -> None:
    _python(DRIVER, [str(video)], _env(cluster, tmp_path / "answers"))  # episodes to learn from
    runtime_env = {"env_vars": {
        "VIDRA_DATABASE_URL": cluster["VIDRA_DATABASE_URL"],
        "VIDRA_MLFLOW__TRACKING_URI": cluster["VIDRA_MLFLOW__TRACKING_URI"],
        "VIDRA_RUNNER__RAY_ADDRESS": cluster["VIDRA_RUNNER__RAY_ADDRESS"],
        "VIDRA_DATA_DIR": str(tmp_path / "job-home"), "VIDRA_MODEL__PATH": str(tiny_model_path),
        "VIDRA_AGENTS__MAX_TOKENS": "12", "VIDRA_TRAIN__EVAL_QUESTIONS": "2",
        "VIDRA_TRAIN__GATE_OPTIONS": '{"worlds": "1", "duration": "60", "per_kind": "1"}',
        "VIDRA_TRAIN__MIN_SAMPLES": "0", "VIDRA_TRAIN__PROMOTE_TIES": "true",
        "VIDRA_TRAIN__GATE_TOLERANCE": "1.0", "PYTHONPATH": str(ROOT),
    }}  # fmt: skip
    submit = [str(Path(sys.executable).parent / "ray"), "job", "submit", "--address",
              cluster["RAY_DASHBOARD_ADDRESS"], "--runtime-env-json", json.dumps(runtime_env),
              "--", sys.executable, "-m", "vidra", "retrain", "--algo", "sft", "--roles",
              "planner", "--since-run", "all", "--min-reward", "-10"]  # fmt: skip
    for _ in range(3):  # Ray's job server answers this when it cannot reach the head's agent
        out = subprocess.run(submit, capture_output=True, text=True, timeout=1500,
                             env={**os.environ, **cluster})  # fmt: skip
        if "No available agent to submit job" not in out.stderr:
            break
        time.sleep(15)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:] + _ray_logs(cluster)
    assert "succeeded" in (out.stdout + out.stderr).lower()
    assert "vidra-planner v" in out.stdout and "MLflow run" in out.stdout


def test_a_cluster_with_a_node_local_store_is_refused(tmp_path: Path) -> None:
    from vidra.ray_session import check_cluster

    s = Settings(data_dir=tmp_path)
    s.runner.ray_address = "127.0.0.2:6379"
    with pytest.raises(ConfigError, match="VIDRA_DATABASE_URL"):
        check_cluster(s)
    s.database_url = "postgresql+psycopg://vidra@127.0.0.1:5432/vidra"
    with pytest.raises(ConfigError, match="VIDRA_MLFLOW__TRACKING_URI"):
        check_cluster(s)
    s.mlflow.tracking_uri = "http://127.0.0.1:5000"
    check_cluster(s)
