"""Bad settings, bad input and damaged rows: one line naming the cause and the fix, checked
before any job row exists, and nothing stored is lost or makes reading crash."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.unit.graph.scripts import Team
from vidra.api import Client
from vidra.config import Settings
from vidra.errors import ConfigError, DatabaseCorrupt, InvalidInput, StorageError
from vidra.runtime import check_settings
from vidra.storage import TrajectoryStore
from vidra.video.synthetic import WorldSpec, make_world, render_world

ROOT = Path(__file__).resolve().parents[2]
BUDGET = {"max_rounds": 1, "frames_per_round": 2}


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    world = make_world(WorldSpec(duration=30, fps=4, width=160, height=90, seed=2))
    return render_world(world, tmp_path_factory.mktemp("bad") / "w.mp4", gop_s=4)


def _vidra(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vidra", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, **env},
        timeout=120,
    )


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({"VIDRA_AGENTS__MAX_FRAMES": "abc"}, ["VIDRA_AGENTS__MAX_FRAMES"]),
        (
            {"VIDRA_AGENTS__MAX_FRAMES": "abc", "VIDRA_RUNNER__EXECUTOR": "slurm"},
            ["VIDRA_AGENTS__MAX_FRAMES", "VIDRA_RUNNER__EXECUTOR"],
        ),
        ({"VIDRA_MODEL__ADAPTERS": "notjson"}, ["VIDRA_MODEL__ADAPTERS"]),
        ({"VIDRA_MLFLOW__TRACKING_URI": "ftp://host/x"}, ["VIDRA_MLFLOW__TRACKING_URI"]),
        ({"VIDRA_MODEL__ADAPTERS": '{"painter": "/tmp"}'}, ["VIDRA_MODEL__ADAPTERS"]),
        ({"VIDRA_MODEL__ADAPTERS": '{"reasoner": "/nope"}'}, ["VIDRA_MODEL__ADAPTERS"]),
        ({"VIDRA_MODEL__DEVICE": "cuda"}, ["VIDRA_MODEL__DEVICE"]),
        ({"VIDRA_MODEL__PATH": "/nonexistent/model"}, ["VIDRA_MODEL__PATH"]),
    ],
)
def test_bad_settings_are_one_line_per_field_and_exit_2(
    env: dict[str, str], names: list[str], tmp_path: Path
) -> None:
    out = _vidra("jobs", VIDRA_DATA_DIR=str(tmp_path), **env)
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr
    assert len(lines) == len(names)
    for line, name in zip(lines, names, strict=True):
        assert line.startswith(f"vidra: error: {name}"), line
    assert not (tmp_path / "vidra.db").exists()  # nothing was written


def test_an_unwritable_data_dir_is_named(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(ConfigError, match="VIDRA_DATA_DIR"):
        Client(Settings(data_dir=blocker / "home"))


def test_27_options_fail_at_submit_before_any_row(video: Path, tmp_path: Path) -> None:
    with Client(Settings(data_dir=tmp_path), model=Team()) as client:
        options = [f"option {k}" for k in range(27)]
        with pytest.raises(InvalidInput, match="at most 26") as err:
            client.submit(video, "Which one?", options=options)
        assert "\n" not in str(err.value)
        assert client.jobs() == []
        ok = client.submit(video, "Which one?", options=options[:26], budget=BUDGET)
        ok.result(timeout=60)  # 26 options, letters A-Z, still work


def test_undecodable_stored_text_is_read_with_replacement_and_flagged(
    video: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from vidra.cli import main
    from vidra.rl.datasets import RewardSpec, build_sft

    settings = Settings(data_dir=tmp_path)
    with Client(settings, model=Team()) as client:
        ans = client.submit(video, "Which?", ["red", "blue"], "red", budget=BUDGET).result(60)
    with sqlite3.connect(tmp_path / "vidra.db") as conn:  # bytes that are not UTF-8
        conn.execute("UPDATE step SET prompt = CAST(x'66ff6fbe' AS TEXT) WHERE step_order = 0")
    with TrajectoryStore(settings=settings) as store:
        t = store.get_episode(ans.episode_id)
        assert t.steps[0].damaged and "\ufffd" in t.steps[0].prompt
        assert not t.steps[1].damaged
        assert build_sft(store, RewardSpec({"format": 1.0}), threshold=-1).samples
    os.environ["VIDRA_DATA_DIR"] = str(tmp_path)
    assert main(["show", ans.episode_id]) == 0
    assert "damaged" in capsys.readouterr().out


def test_a_corrupt_database_file_is_one_line_naming_it(tmp_path: Path) -> None:
    (tmp_path / "vidra.db").write_bytes(b"this is not a database " * 200)
    with pytest.raises(DatabaseCorrupt, match="integrity_check") as err:
        TrajectoryStore(settings=Settings(data_dir=tmp_path))
    assert str(tmp_path / "vidra.db") in str(err.value) and "\n" not in str(err.value)
    out = _vidra("jobs", VIDRA_DATA_DIR=str(tmp_path))
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and "integrity_check" in out.stderr


def test_resume_cleans_checkpoints_a_crash_left_behind(video: Path, tmp_path: Path) -> None:
    from langgraph.checkpoint.base import empty_checkpoint

    from vidra.graph.checkpoint import checkpoint_threads

    with Client(Settings(data_dir=tmp_path), model=Team()) as client:
        job = client.submit(video, "Which?", ["red", "blue"], "red", budget=BUDGET)
        job.result(timeout=60)
        saver = client.runtime.checkpointer
        # as if the process died between the episode's commit and the checkpoint's deletion
        for tid in (f"{job.id}:0", "gone-job:0"):
            config = {"configurable": {"thread_id": tid, "checkpoint_ns": ""}}
            saver.put(config, empty_checkpoint(), {}, {})
        assert {f"{job.id}:0", "gone-job:0"} <= checkpoint_threads(saver)
        assert client.resume() == []
        assert checkpoint_threads(saver) == set()
        assert len(client.episode(client.answer(job.id).episode_id).steps) > 0


def test_since_last_means_the_last_successful_run_and_all_is_accepted(tmp_path: Path) -> None:
    from vidra.pipelines.retrain import resolve_since

    with TrajectoryStore(settings=Settings(data_dir=tmp_path)) as store:
        assert resolve_since(store, "last") is None
        ok = store.create_training_run("grpo", {}, [])
        store.finish_training_run(ok.id, "done")
        bad = store.create_training_run("grpo", {}, [])
        store.finish_training_run(bad.id, "failed")
        assert resolve_since(store, "last") == ok.id  # the failed run hides nothing
        assert resolve_since(store, "all") is None and resolve_since(store, None) is None
        assert resolve_since(store, bad.id) == bad.id
        with pytest.raises(Exception, match="does not exist"):
            resolve_since(store, "no-such-run")


def test_a_new_tracking_store_never_collides_with_an_old_one(tmp_path: Path) -> None:
    with TrajectoryStore(settings=Settings(data_dir=tmp_path)) as store:
        a = store.record_model_version("reasoner", "vidra-reasoner", "1", "run-a", tracking_uri="A")
        b = store.record_model_version("reasoner", "vidra-reasoner", "1", "run-b", tracking_uri="B")
        assert a.id != b.id and (a.tracking_uri, b.tracking_uri) == ("A", "B")
        again = store.record_model_version(
            "reasoner", "vidra-reasoner", "1", "run-a", tracking_uri="A"
        )
        assert again.id == a.id  # a retried step is harmless
        with pytest.raises(StorageError, match="already recorded for another run"):
            store.record_model_version("reasoner", "vidra-reasoner", "1", "run-c", tracking_uri="A")
        store.set_alias("vidra-reasoner", "1", "champion", tracking_uri="B")
        assert store.champions("B")["reasoner"].mlflow_run_id == "run-b"
        assert store.champions("A") == {}


def test_a_choice_temperature_vllm_cannot_honour_is_named(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    settings.model.backend = "vllm"
    settings.agents.selector_choice_temperature = 4.0
    with pytest.raises(ConfigError, match=r"VIDRA_AGENTS__SELECTOR_CHOICE_TEMPERATURE.*backend hf"):
        check_settings(settings, model_path=False)
    settings.agents.selector_choice_temperature = 1.0
    check_settings(settings, model_path=False)
    settings.model.backend = "hf"
    settings.agents.selector_choice_temperature = 4.0
    check_settings(settings, model_path=False)
