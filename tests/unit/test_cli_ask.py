"""``vidra ask / jobs / show / resume`` on the tiny model, run as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from vidra.video.synthetic import write_counter_video


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cli") / "v.mp4"
    write_counter_video(path, 80, fps=8, width=96, height=64)
    return path


def _vidra(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vidra", *args], capture_output=True, text=True, timeout=600, env=env
    )


def test_ask_show_jobs_resume(video: Path, tiny_model_path: Path, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "VIDRA_DATA_DIR": str(tmp_path),
        "VIDRA_AGENTS__MAX_TOKENS": "16",
        "VIDRA_AGENTS__MAX_FRAMES": "4",
        "VIDRA_AGENTS__MAX_ROUNDS": "1",
        "VIDRA_MODEL__PATH": str(tiny_model_path),
        "OMP_NUM_THREADS": "2",
    }
    out = _vidra(
        "ask",
        str(video),
        "Which number is shown?",
        "--option",
        "one",
        "--option",
        "two",
        "--answer",
        "two",
        "--evidence",
        "6-8",
        env=env,
    )
    assert out.returncode == 0, out.stderr
    assert "planner" in out.stderr or "plan" in out.stderr  # live progress on stderr
    episode = next(
        line.split()[1] for line in out.stdout.splitlines() if line.startswith("episode")
    )
    assert "rewards:" in out.stdout
    shown = _vidra("show", episode, env=env)
    assert shown.returncode == 0 and "reasoner" in shown.stdout and "accuracy" in shown.stdout
    listed = _vidra("jobs", env=env)
    assert listed.returncode == 0 and "done" in listed.stdout
    as_json = _vidra(
        "ask", str(video), "Which?", "--option", "a", "--option", "b", "--json", env=env
    )
    assert json.loads(as_json.stdout)["text"] in ("a", "b")
    assert _vidra("resume", env=env).stdout.strip() == "nothing to resume"


def test_ask_bad_input_is_one_line_exit_2(video: Path, tmp_path: Path) -> None:
    env = {**os.environ, "VIDRA_DATA_DIR": str(tmp_path)}
    out = _vidra("ask", str(video), "q", "--option", "only", env=env)
    assert out.returncode == 2 and "at least 2 options" in out.stderr
    assert "Traceback" not in out.stderr
    missing = _vidra("ask", str(tmp_path / "nope.mp4"), "q", env=env)
    assert missing.returncode == 2 and "no such file" in missing.stderr
    shown = _vidra("show", "nope", env=env)
    assert shown.returncode == 2 and "does not exist" in shown.stderr


@pytest.mark.integration  # real Ray Train and MLflow
def test_ask_with_rollouts_then_retrain(video: Path, tiny_model_path: Path, tmp_path: Path) -> None:
    """`vidra ask --rollouts 4 --answer ...`, then `vidra retrain`: an MLflow run, registered
    versions and a promotion decision a user can read."""
    env = {
        **os.environ,
        "VIDRA_DATA_DIR": str(tmp_path),
        "VIDRA_AGENTS__MAX_TOKENS": "12",
        "VIDRA_AGENTS__MAX_FRAMES": "4",
        "VIDRA_AGENTS__MAX_ROUNDS": "1",
        "VIDRA_AGENTS__STRATEGY": "uniform",
        "VIDRA_MODEL__PATH": str(tiny_model_path),
        "VIDRA_TRAIN__EVAL_QUESTIONS": "1",
        "VIDRA_TRAIN__GATE_OPTIONS": '{"worlds": "1", "duration": "60", "per_kind": "1"}',
        "VIDRA_TRAIN__MIN_SAMPLES": "0",
        "VIDRA_TRAIN__BATCH_SIZE": "4",
        "VIDRA_AGENTS__SEED": "0",  # the rollouts sample alike in every run
        "OMP_NUM_THREADS": "2",
    }
    # the untrained model falls back to the first option, so "one" is right every time
    for question in ("Which number is first?", "Which number is last?"):
        out = _vidra(
            "ask",
            str(video),
            question,
            "--option",
            "one",
            "--option",
            "two",
            "--answer",
            "one",
            "--rollouts",
            "4",
            env=env,
        )
        assert out.returncode == 0, out.stderr
    # every rollout scored alike: no GRPO group to learn from, and the error says why
    none = _vidra("retrain", "--algo", "grpo", "--roles", "reasoner", env=env)
    assert none.returncode == 2 and "no GRPO samples" in none.stderr
    run = _vidra("retrain", "--algo", "sft", "--roles", "planner", "--min-reward", "0.5", env=env)
    assert run.returncode == 0, run.stderr
    assert "vidra-planner v1" in run.stdout and "MLflow run" in run.stdout
    assert "promoted" in run.stdout.lower() and "mlflow ui --backend-store-uri" in run.stdout
