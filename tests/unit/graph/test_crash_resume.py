"""Crash resume for real: SIGKILL a process mid-episode; a new client finishes the job."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from vidra.api import Client

from .scripts import Team

ROOT = Path(__file__).resolve().parents[3]
EXPECTED = ["planner", "reasoner", "critic", "reasoner", "critic", "reasoner", "critic"]

DRIVER = """
import sys, time
from pathlib import Path
from vidra.api import Client
from tests.unit.graph.scripts import Team
client = Client(model=Team(Path(sys.argv[3]), latency_s=0.4))
job = client.submit(sys.argv[1], sys.argv[2], options=["red", "blue"], answer="red",
                    rollouts=2, budget={"max_rounds": 3, "frames_per_round": 4})
print(job.id, flush=True)
job.result(timeout=300)
print("finished", flush=True)
"""


def test_sigkill_mid_episode_then_resume(
    world_video,
    tmp_path: Path,  # type: ignore[no-untyped-def]
    monkeypatch,
) -> None:
    path, _ = world_video
    data = tmp_path / "data"
    monkeypatch.setenv("VIDRA_DATA_DIR", str(data))
    monkeypatch.setenv("VIDRA_RUNNER__LEASE_S", "2")  # the killed process's lease
    calls_before = tmp_path / "calls-before.log"
    proc = subprocess.Popen(
        [sys.executable, "-c", DRIVER, str(path), "Which is first?", str(calls_before)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "VIDRA_DATA_DIR": str(data), "VIDRA_RUNNER__LEASE_S": "2"},
    )
    assert proc.stdout is not None
    job_id = proc.stdout.readline().strip()
    assert job_id, proc.stderr.read() if proc.stderr else ""
    deadline = time.monotonic() + 60
    # kill in the middle of rollout 1: rollout 0 is recorded, rollout 1 is half done
    while time.monotonic() < deadline:
        n = len(calls_before.read_text().splitlines()) if calls_before.exists() else 0
        if n >= len(EXPECTED) + 3:
            break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    made_before = len(calls_before.read_text().splitlines())
    assert len(EXPECTED) < made_before < 2 * len(EXPECTED)

    calls_after = tmp_path / "calls-after.log"
    time.sleep(2.5)  # the dead process's lease expires; until then resume leaves the job alone
    with Client(model=Team(calls_after), resume=True) as client:
        job = client.job(job_id)
        job.result(timeout=120)
        assert job.status() == "done"
        eps = client.store.episodes_of_job(job_id)
        assert sorted(e.rollout_index for e in eps) == [0, 1]
        for e in eps:  # every step present exactly once, in order
            t = client.episode(e.id)
            assert [s.role for s in t.steps] == EXPECTED
            assert [s.order for s in t.steps] == list(range(len(EXPECTED)))
    made_after = len(calls_after.read_text().splitlines())
    # the resumed run redid at most the node that was interrupted, nothing already done
    assert made_before + made_after <= 2 * len(EXPECTED) + 1
    assert made_after < len(EXPECTED)
