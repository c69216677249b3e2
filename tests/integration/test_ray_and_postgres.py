"""The same flows on real infrastructure: Ray tasks with a model actor, and PostgreSQL as
the store and the LangGraph checkpointer (servers started by .ci/run or the fixtures)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.unit.graph.scripts import Team
from vidra.api import Client
from vidra.config import Settings
from vidra.video.synthetic import WorldSpec, make_world, render_world

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
EXPECTED = ["planner", "reasoner", "critic", "reasoner", "critic", "reasoner", "critic"]


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    world = make_world(WorldSpec(duration=120, fps=4, width=160, height=90, seed=1))
    return render_world(world, tmp_path_factory.mktemp("integ") / "w.mp4", gop_s=4)


def _run_team_job(client: Client, video: Path, rollouts: int = 2) -> str:
    job = client.submit(
        video,
        "Which is first?",
        options=["red", "blue"],
        answer="red",
        rollouts=rollouts,
        budget={"max_rounds": 3, "frames_per_round": 4},
    )
    job.result(timeout=300)
    assert job.status() == "done"
    eps = client.store.episodes_of_job(job.id)
    assert sorted(e.rollout_index for e in eps) == list(range(rollouts))
    for e in eps:
        t = client.episode(e.id)
        assert [s.role for s in t.steps] == EXPECTED
        assert {r.name for r in t.rewards} >= {"accuracy", "format", "frame_cost", "critic"}
    return job.id


def test_ray_executor_runs_episodes_on_ray_workers(video: Path, tmp_path: Path) -> None:
    import socket

    import ray

    settings = Settings()
    settings.runner.executor = "ray"
    client = Client(settings, model=Team())
    try:
        job_id = _run_team_job(client, video, rollouts=3)
        workers = {e.worker for e in client.store.episodes_of_job(job_id)}
        here = f"{socket.gethostname()}:{os.getpid()}"
        assert len(workers) == 1 and workers <= set(client.runner.nodes())  # one actor per job
        assert all(w and w.startswith("ray:") and w != here for w in workers)
    finally:
        client.close()
        ray.shutdown()


def test_more_workers_than_the_cluster_holds_still_answer_every_job(video: Path) -> None:
    """16 workers of 0.5 CPU do not fit a 2-CPU local Ray: the pool is cut to what fits
    instead of dealing jobs to workers that can never start (which hung forever)."""
    import ray

    settings = Settings()
    settings.runner.executor, settings.runner.workers = "ray", 16
    client = Client(settings, model=Team())
    try:
        workers = client.runner.workers  # starts Ray
        assert len(workers) == min(16, int(ray.cluster_resources()["CPU"] // 0.5))
        jobs = [client.submit(video, "Which is first?", ["red", "blue"], "red",
                              budget={"max_rounds": 1, "frames_per_round": 2})
                for _ in range(12)]  # fmt: skip
        for job in jobs:
            job.result(timeout=300)
        assert {j.status() for j in jobs} == {"done"}
    finally:
        client.close()
        ray.shutdown()


def test_placeable_workers_counts_cpus_and_custom_resources() -> None:
    from vidra.graph.ray_runner import placeable_workers

    assert placeable_workers(16, 0.5, {}, {"CPU": 2.0}) == 4
    assert placeable_workers(3, 0.5, {}, {"CPU": 8.0}) == 3
    assert placeable_workers(8, 0.0, {"worker_node": 1}, {"CPU": 2.0, "worker_node": 2}) == 2
    assert placeable_workers(4, 1.0, {"gpu_node": 1}, {"CPU": 8.0}) == 1  # never below one


def test_a_group_on_ray_decodes_each_shared_frame_once(video: Path) -> None:
    """G rollouts of one question on a Ray worker decode what one rollout decodes in
    process: the worker keeps its frame cache for its life."""
    import ray

    local = Settings()
    with Client(local, model=Team()) as client:
        _run_team_job(client, video, rollouts=1)
        once = client.reader.stats.frames_decoded
    settings = Settings()
    settings.runner.executor = "ray"
    client = Client(settings, model=Team())
    try:
        _run_team_job(client, video, rollouts=4)
        decoded = sum(s.frames_decoded for s in client.runner.decode_stats())
    finally:
        client.close()
        ray.shutdown()
    assert once > 0 and decoded == once


def test_ray_executor_with_the_tiny_model(video: Path, tiny_model_path: Path) -> None:
    import ray

    settings = Settings()
    settings.runner.executor = "ray"
    settings.model.path = str(tiny_model_path)
    settings.agents.max_tokens = 16
    client = Client(settings)
    try:
        job = client.submit(
            video,
            "Which is first?",
            options=["red", "blue"],
            answer="red",
            rollouts=2,
            budget={"max_frames": 8, "max_rounds": 1},
        )
        job.result(timeout=600)
        t = client.episode(client.store.episodes_of_job(job.id)[0].id)
        assert t.steps and all(s.token_ids and s.logprobs for s in t.steps)
    finally:
        client.close()
        ray.shutdown()


def test_postgres_store_and_checkpointer(video: Path, pg_url: str, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("VIDRA_DATABASE_URL", pg_url)
    with Client(model=Team()) as client:
        assert client.store.engine.dialect.name == "postgresql"
        _run_team_job(client, video)


DRIVER = """
import sys
from pathlib import Path
from vidra.api import Client
from tests.unit.graph.scripts import Team
client = Client(model=Team(Path(sys.argv[2]), latency_s=0.4))
job = client.submit(sys.argv[1], "Which is first?", options=["red", "blue"], answer="red",
                    rollouts=2, budget={"max_rounds": 3, "frames_per_round": 4})
print(job.id, flush=True)
job.result(timeout=300)
"""


def test_postgres_crash_resume(video: Path, pg_url: str, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("VIDRA_DATABASE_URL", pg_url)
    log = tmp_path / "calls.log"
    proc = subprocess.Popen(
        [sys.executable, "-c", DRIVER, str(video), str(log)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "VIDRA_DATABASE_URL": pg_url, "VIDRA_RUNNER__LEASE_S": "2"},
    )
    assert proc.stdout is not None
    job_id = proc.stdout.readline().strip()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if log.exists() and len(log.read_text().splitlines()) >= len(EXPECTED) + 3:
            break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    monkeypatch.setenv("VIDRA_RUNNER__LEASE_S", "2")
    time.sleep(2.5)  # the killed process's lease expires
    with Client(model=Team(), resume=True) as client:
        job = client.job(job_id)
        job.result(timeout=120)
        eps = client.store.episodes_of_job(job_id)
        assert sorted(e.rollout_index for e in eps) == [0, 1]
        for e in eps:
            assert [s.role for s in client.episode(e.id).steps] == EXPECTED


def test_local_ray_started_on_a_thread_outlives_the_thread() -> None:
    """A retraining cycle starts Ray on its own thread (the online loop's); Ray's GCS and
    raylet die with the thread that forked them unless another thread starts them, and
    the next cycle's Ray calls then hang."""
    import threading

    import ray

    from vidra.ray_session import ensure_ray

    starter = threading.Thread(target=ensure_ray, args=(Settings(),))
    starter.start()
    starter.join()
    try:
        time.sleep(2)  # the parent-death signal is delivered when the thread exits

        @ray.remote
        def square(x: int) -> int:
            return x * x

        assert ray.get(square.remote(7), timeout=60) == 49
    finally:
        ray.shutdown()


def test_local_ray_processes_are_not_forked_by_this_process() -> None:
    """Ray forks its GCS and raylet with a Python ``preexec_fn``; forked from a process like
    a test run's or a job's (threads holding FFmpeg and torch state) the child can hang while
    it frees what the other threads held. vidra starts the local cluster from a child
    interpreter that imports only Ray, so none of Ray's processes is a child of this one."""
    import psutil
    import ray

    from vidra.ray_session import ensure_ray

    ensure_ray(Settings())
    try:
        children = [p.name() for p in psutil.Process().children()]
        assert children and all(name.startswith("python") for name in children), children
        everyone = [p.name() for p in psutil.Process().children(recursive=True)]
        assert any("raylet" in name for name in everyone), everyone
        assert ray.get(ray.remote(lambda: 7).remote(), timeout=60) == 7
    finally:
        ray.shutdown()


@pytest.mark.parametrize("on_thread", [False, True])
def test_a_local_ray_leaves_no_temp_dir_behind(on_thread: bool) -> None:
    """The local Ray vidra starts lives in a temp dir of its own (logs, sockets, spilled
    objects); the process removes it at exit, from the main thread or a cycle's thread."""
    import tempfile

    tmp = Path(tempfile.mkdtemp(prefix="vr", dir="/tmp"))  # short: Ray's socket paths
    code = (
        "import threading, ray\n"
        "from vidra.config import Settings\n"
        "from vidra.ray_session import ensure_ray\n"
        f"s = Settings(data_dir={str(tmp / 'data')!r})\n"
        f"t = threading.Thread(target=ensure_ray, args=(s,)) if {on_thread} else None\n"
        "(t.start(), t.join()) if t else ensure_ray(s)\n"
        "print(ray.get(ray.remote(lambda: 7).remote(), timeout=60))\n"
    )
    try:
        env = {**os.environ, "TMPDIR": str(tmp)}
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                             text=True, timeout=180)  # fmt: skip
        assert out.returncode == 0, out.stderr[-2000:]
        assert out.stdout.strip().endswith("7")
        assert not list(tmp.glob("vidra-ray-*")), "Ray's temp dir was left behind"
    finally:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
