"""The CLI as a newcomer meets it (real subprocesses): --version and --help, Ctrl-C during
``ask``, ``show`` with a job id, open-ended questions, bad input before any work."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vidra.config import Settings
from vidra.storage import TrajectoryStore
from vidra.video.synthetic import WorldSpec, make_world, render_world

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    world = make_world(WorldSpec(duration=120, fps=4, width=160, height=90, seed=4))
    return render_world(world, tmp_path_factory.mktemp("newcomer") / "w.mp4", gop_s=4)


def _env(home: Path) -> dict[str, str]:
    return {**os.environ, "VIDRA_DATA_DIR": str(home), "OMP_NUM_THREADS": "2"}


def vidra(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "vidra", *args], capture_output=True,
                          text=True, cwd=ROOT, env=_env(home), timeout=600)  # fmt: skip


def test_version_and_a_help_that_speaks_to_users(tmp_path: Path) -> None:
    version = vidra("--version", home=tmp_path)
    assert version.returncode == 0 and version.stdout.startswith("vidra ")
    helped = vidra("--help", home=tmp_path)
    assert "Answer questions about long videos" in helped.stdout and "vidra demo" in helped.stdout
    ask = vidra("ask", "--help", home=tmp_path)
    assert "default: 1" in ask.stdout and "--subtitles" in ask.stdout  # flags say their defaults


def test_ctrl_c_cancels_the_job_cleanly(video: Path, tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "vidra", "ask", str(video), "Which is first?", "--option", "red",
         "--option", "blue", "--rollouts", "4"],
        cwd=ROOT, env=_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stderr is not None
    seen = ""
    until = time.monotonic() + 300
    while time.monotonic() < until and "rollout 0" not in seen:
        seen += proc.stderr.readline()
    proc.send_signal(signal.SIGINT)
    _, rest = proc.communicate(timeout=120)
    err = seen + rest
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert err.count("cancelled;") == 1 and "stay recorded" in err
    with TrajectoryStore(settings=Settings(data_dir=tmp_path)) as store:
        [job] = store.jobs()
        assert job.status == "cancelled" and len(store.episodes_of_job(job.id)) < 4


def test_show_takes_a_job_id_and_jobs_lists_full_ids(video: Path, tmp_path: Path) -> None:
    out = vidra("ask", str(video), "What is shown?", home=tmp_path)  # open-ended
    assert out.returncode == 0, out.stderr
    answer = next(x for x in out.stdout.splitlines() if x.startswith("answer:"))
    assert answer.removeprefix("answer:").strip()  # free text, never blank
    job_id = next(x.split()[-1] for x in out.stdout.splitlines() if x.startswith("job:"))
    shown = vidra("show", job_id, home=tmp_path)
    assert shown.returncode == 0 and "episode" in shown.stdout and "reasoner" in shown.stdout
    listed = vidra("jobs", home=tmp_path)
    assert job_id in listed.stdout  # the whole id, whatever the width
    bogus = vidra("jobs", "--status", "bogus", home=tmp_path)
    assert bogus.returncode == 2 and "invalid choice" in bogus.stderr


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--model", "/nonexistent/model"], "VIDRA_MODEL__PATH"),
        (["--max-frames", "0"], "max_frames"),
        (["--evidence", "12.5"], "START-END"),
        (["--evidence", "15-12.5"], "0 <= start <= end"),
    ],
)
def test_bad_input_fails_before_any_job_row(
    video: Path, tmp_path: Path, args: list[str], needle: str
) -> None:
    t0 = time.monotonic()
    out = vidra("ask", str(video), "Which?", "--option", "a", "--option", "b", *args,
                home=tmp_path)  # fmt: skip
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and needle in out.stderr
    assert time.monotonic() - t0 < 60
    db = tmp_path / "vidra.db"
    if db.exists():
        with TrajectoryStore(settings=Settings(data_dir=tmp_path)) as store:
            assert store.jobs() == []


def test_a_text_file_named_mp4_is_not_a_video(tmp_path: Path) -> None:
    fake = tmp_path / "notes.mp4"
    fake.write_text("meeting notes, not a video\n")
    out = vidra("ask", str(fake), "What?", home=tmp_path)
    assert out.returncode == 2 and "not a video file" in out.stderr
