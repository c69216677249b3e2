"""Faults injected with real servers and real disks: PostgreSQL stopped mid-run and restarted
under a live client, PostgreSQL down at start, a full disk, two processes racing for a job.
After each, counts of jobs, episodes and steps show nothing was lost or recorded twice."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.scripts.free_ports import free_port
from tests.unit.graph.scripts import Team
from vidra.api import Client
from vidra.config import Settings
from vidra.errors import DatabaseUnavailable, DiskFull
from vidra.models.protocol import ChatRequest
from vidra.video.synthetic import WorldSpec, make_world, render_world

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "infra" / "scripts" / "pg_test_server.sh"
EXPECTED = ["planner", "reasoner", "critic", "reasoner", "critic", "reasoner", "critic"]
BUDGET = {"max_rounds": 3, "frames_per_round": 4}


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    world = make_world(WorldSpec(duration=60, fps=4, width=160, height=90, seed=1))
    return render_world(world, tmp_path_factory.mktemp("faults") / "w.mp4", gop_s=4)


class OwnPostgres:
    """A PostgreSQL cluster of this test alone, so it can be stopped and restarted."""

    def __init__(self, base: Path) -> None:
        self.dir, self.port = base / "pg", free_port()

    def _run(self, *args: str) -> str:
        out = subprocess.run(
            ["bash", str(SCRIPT), *args], capture_output=True, text=True, timeout=180
        )
        assert out.returncode == 0, out.stderr
        return out.stdout.strip()

    def start(self) -> str:
        return self._run("start", str(self.dir), str(self.port)).splitlines()[-1]

    def halt(self) -> None:
        self._run("halt", str(self.dir))

    def restart(self) -> None:
        self._run("restart", str(self.dir), str(self.port))

    def stop(self) -> None:
        self._run("stop", str(self.dir))


@pytest.fixture
def own_pg() -> Iterator[tuple[OwnPostgres, str]]:
    import tempfile

    base = Path(tempfile.mkdtemp(prefix="vidra-pgf-"))
    base.chmod(0o755)
    pg = OwnPostgres(base)
    url = pg.start()
    try:
        yield pg, url
    finally:
        with contextlib.suppress(AssertionError):
            pg.stop()
        shutil.rmtree(base, ignore_errors=True)


class HeldTeam(Team):
    """`Team`, whose calls after the first ``free`` wait until ``go`` is set: the fault is
    injected while an episode is under way, however slowly a loaded machine runs the test."""

    def __init__(self, log: Path, free: int) -> None:
        super().__init__(log, latency_s=0.2)
        self.free, self.go = free, threading.Event()
        self._lock, self._calls = threading.Lock(), 0

    def reply(self, req: ChatRequest) -> str:
        with self._lock:
            self._calls += 1
            held = self._calls > self.free
        if held:
            self.go.wait(120)
        return super().reply(req)


def _wait_for_calls(log: Path, n: int, timeout: float = 60) -> None:
    until = time.monotonic() + timeout
    while time.monotonic() < until:
        if log.exists() and len(log.read_text().splitlines()) >= n:
            return
        time.sleep(0.05)
    raise AssertionError(f"fewer than {n} model calls after {timeout} s")


def _check_recorded(client: Client, job_id: str, rollouts: int) -> None:
    eps = client.store.episodes_of_job(job_id)
    assert sorted(e.rollout_index for e in eps) == list(range(rollouts))  # none lost, none twice
    for e in eps:
        t = client.episode(e.id)
        assert [s.role for s in t.steps] == EXPECTED
        assert [s.order for s in t.steps] == list(range(len(EXPECTED)))


def test_postgres_stopped_mid_run_then_restarted_under_a_live_client(
    own_pg: tuple[OwnPostgres, str], video: Path, tmp_path: Path
) -> None:
    pg, url = own_pg
    settings = Settings(data_dir=tmp_path / "home", database_url=url)
    settings.storage.reconnect_s = 2
    log = tmp_path / "calls.log"
    model = HeldTeam(log, free=len(EXPECTED) + 2)
    with Client(settings, model=model) as client:
        job = client.submit(video, "Which is first?", ["red", "blue"], "red", 2, BUDGET)
        _wait_for_calls(log, len(EXPECTED) + 2)  # rollout 0 recorded, rollout 1 under way
        pg.halt()
        model.go.set()  # rollout 1 goes on, into the stopped server
        t0 = time.monotonic()
        with pytest.raises(DatabaseUnavailable) as err:
            job.result(timeout=120)
        assert time.monotonic() - t0 < 60
        message = str(err.value)
        assert "\n" not in message and f"127.0.0.1:{pg.port}" in message
        assert "vidra resume" in message and "OperationalError" not in message
        pg.restart()
        resumed = client.resume()  # the same live client, after the database came back
        assert [j.id for j in resumed] == [job.id]
        job.result(timeout=120)
        _check_recorded(client, job.id, 2)
        again = client.submit(video, "Which is first?", ["red", "blue"], "red", 1, BUDGET)
        again.result(timeout=120)  # the checkpointer reconnected: later jobs still run
        _check_recorded(client, again.id, 1)
        assert len(client.jobs()) == 2


def test_postgres_down_at_start_is_one_line(tmp_path: Path) -> None:
    url = f"postgresql+psycopg://vidra@127.0.0.1:{free_port()}/vidra"  # nothing listens there
    env = {**os.environ, "VIDRA_DATABASE_URL": url, "VIDRA_STORAGE__RECONNECT_S": "1"}
    out = subprocess.run(
        [sys.executable, "-m", "vidra", "jobs"], capture_output=True, text=True, env=env,
        cwd=ROOT, timeout=120,
    )  # fmt: skip
    assert out.returncode == 2, out.stderr
    assert out.stderr.strip().count("\n") == 0 and "Traceback" not in out.stderr
    assert "unreachable" in out.stderr and "VIDRA_DATABASE_URL" in out.stderr
    with pytest.raises(DatabaseUnavailable):
        Client(Settings(database_url=url))


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"mounting a tmpfs is not permitted here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def _fill(disk: Path, leave: int) -> Path:
    """Write a file that leaves about ``leave`` bytes free on ``disk``."""
    filler = disk / "filler"
    free = shutil.disk_usage(disk).free
    with open(filler, "wb") as fh:
        fh.write(b"\0" * max(0, free - leave))
    return filler


@pytest.mark.parametrize("leave", [120_000, 0])
def test_disk_full_leaves_the_job_resumable_and_loses_nothing(
    small_disk: Path, video: Path, tmp_path: Path, leave: int
) -> None:
    settings = Settings(data_dir=small_disk / "home")
    log = tmp_path / "calls.log"
    model = HeldTeam(log, free=2 * len(EXPECTED) + 2)
    with Client(settings, model=model) as client:
        first = client.submit(video, "Which is first?", ["red", "blue"], "red", 1, BUDGET)
        first.result(timeout=120)
        job = client.submit(video, "Which is first?", ["red", "blue"], "red", 2, BUDGET)
        _wait_for_calls(log, 2 * len(EXPECTED) + 2)
        filler = _fill(small_disk, leave)
        model.go.set()
        with pytest.raises(DiskFull) as err:
            job.result(timeout=120)  # ends: never polls forever
        assert "\n" not in str(err.value) and "full" in str(err.value)
        assert "vidra resume" in str(err.value)
        filler.unlink()
        _check_recorded(client, first.id, 1)  # what was stored survived
        assert [j.id for j in client.resume()] == [job.id]
        job.result(timeout=120)
        _check_recorded(client, job.id, 2)


RACER = """
import sys, json
from pathlib import Path
from vidra.api import Client
from tests.unit.graph.scripts import Team
with Client(model=Team(Path(sys.argv[1]), latency_s=0.1)) as client:
    taken = [j.id for j in client.resume()]
    for j in taken:
        client.job(j).result(timeout=300)
    print(json.dumps(taken))
"""


def test_two_processes_never_run_one_job(video: Path, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import json

    from vidra import jobs
    from vidra.runtime import Runtime

    monkeypatch.setenv("VIDRA_DATA_DIR", str(tmp_path / "home"))
    with Runtime(Settings(), model=Team()) as rt:
        job_id = jobs.submit(
            rt, video, "Which is first?", ["red", "blue"], "red", 2, BUDGET, run=False
        )
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, str(log)], cwd=ROOT, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, env={**os.environ},
        )
        for log in logs
    ]  # fmt: skip
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [e for _, e in outs]
    assert all("IllegalTransition" not in err for _, err in outs)
    calls = sum(len(log.read_text().splitlines()) for log in logs if log.exists())
    assert calls == 2 * len(EXPECTED)  # the job's work was done once, by one process
    taken = [json.loads(o.strip().splitlines()[-1]) for o, _ in outs]
    assert sorted(len(t) for t in taken) in ([0, 1], [1, 1])  # both may wait; one ran it
    with Client(model=Team()) as client:
        _check_recorded(client, job_id, 2)


def test_resume_leaves_a_job_that_a_live_process_runs(
    video: Path, tmp_path: Path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("VIDRA_DATA_DIR", str(tmp_path / "home"))
    log = tmp_path / "calls.log"
    with Client(model=Team(log, latency_s=0.3)) as owner:
        job = owner.submit(video, "Which is first?", ["red", "blue"], "red", 2, BUDGET)
        _wait_for_calls(log, 3)
        out = subprocess.run(
            [sys.executable, "-m", "vidra", "resume"], capture_output=True, text=True,
            cwd=ROOT, env={**os.environ}, timeout=120,
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
        assert "nothing to resume" in out.stdout
        job.result(timeout=120)
        _check_recorded(owner, job.id, 2)
