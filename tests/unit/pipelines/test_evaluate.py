"""`vidra eval` end to end: real annotation formats, jobs in SQL tagged with the evaluation
run, intervals, resume (a killed evaluation continues; every question answered once),
compare, and one task per family (multiple choice, open-ended, grounding) on the tiny model."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from tests.unit.evals import formats
from tests.unit.evals.conftest import Videos
from tests.unit.graph.scripts import Team
from vidra.config import Settings
from vidra.pipelines.evaluate import EvalSpec, compare, evaluate
from vidra.storage import TrajectoryStore

ROOT = Path(__file__).resolve().parents[3]


def _nextqa(tmp_path: Path, videos: Videos) -> tuple[Path, Path]:
    ann = formats.nextqa(tmp_path)
    mapping = json.loads((tmp_path / "map_vid_vidorID.json").read_text())
    names = [f"{v}.mp4" for v in list(mapping.values())[:-1]]  # the last video is missing
    return ann, videos.add(*names)


def _tiny(tmp_path: Path, model: Path) -> Settings:
    s = Settings(data_dir=tmp_path / "home")
    s.model.path = str(model)
    s.agents.max_tokens = 24
    s.agents.strategy = "uniform"
    s.agents.max_frames, s.agents.max_rounds = 4, 1
    return s


def test_nextqa_on_the_tiny_model_is_recorded_scored_and_resumable(
    tmp_path: Path, videos: Videos, tiny_model_path: Path
) -> None:
    ann, root = _nextqa(tmp_path, videos)
    settings = _tiny(tmp_path, tiny_model_path)
    spec = EvalSpec("nextqa", annotations=ann, videos=root, out=tmp_path / "r.json", traces=True)
    report = evaluate(settings, spec)
    assert report["missing_videos"] and report["answered"] >= 2
    assert (
        report["answered"] + len(report["missing_videos"]) + len(report["failed"])
        == (report["questions"])
    )
    lo, hi = report["ci95"]
    assert lo <= report["accuracy"] <= hi
    assert any(k.startswith("type=") for k in report["by_category"])
    assert report["frames_shown_per_question"] > 0 and report["tokens_per_question"] > 0
    assert json.loads((tmp_path / "r.json").read_text())["run_id"] == report["run_id"]
    with TrajectoryStore(settings=settings) as store:
        rows = store.eval_questions(report["run_id"])
        jobs = [r.job_id for r in rows if r.status == "done"]
        assert len(jobs) == report["answered"] == len(set(jobs))  # a trajectory per answer
        assert all(store.episodes_of_job(j) for j in jobs)
        steps = {e.id: len(store.get_episode(e.id).steps) for j in jobs
                 for e in store.episodes_of_job(j)}  # fmt: skip
        n_jobs = len(store.jobs(limit=1000))
    again = evaluate(settings, spec)  # the same evaluation: nothing is asked twice
    assert again["run_id"] == report["run_id"] and again["accuracy"] == report["accuracy"]
    with TrajectoryStore(settings=settings) as store:
        assert len(store.jobs(limit=1000)) == n_jobs
    # the same weights in another folder, and another file beside the videos: the same run
    moved = shutil.copytree(tiny_model_path, tmp_path / "elsewhere" / "tiny")
    (root / "unrelated.mp4").write_bytes(b"not one of this evaluation's videos")
    settings.model.path = str(moved)
    assert evaluate(settings, replace(spec, out=None))["run_id"] == report["run_id"]
    # other weights are another evaluation
    (moved / "config.json").write_text((moved / "config.json").read_text() + "\n")
    assert evaluate(settings, replace(spec, out=None))["run_id"] != report["run_id"]
    settings.model.path = str(tiny_model_path)
    import mlflow

    mlflow.set_tracking_uri(settings.resolved_tracking_uri())
    run = mlflow.get_run(report["mlflow_run_id"])
    assert "accuracy" in run.data.metrics and run.data.params["task"] == "nextqa"
    traces = mlflow.search_traces(run_id=report["mlflow_run_id"], return_type="list")
    assert len(traces) == report["answered"]
    assert {s.attributes.get("role") for t in traces for s in t.data.spans} >= {"planner"}
    # one trace per answered question, named by it, a span per recorded step under its root
    names = {t.info.tags.get("mlflow.traceName") for t in traces}
    assert len(names) == len(traces) and all(n.startswith("nextqa:") for n in names)
    roots = {t.info.trace_id: [s for s in t.data.spans if s.parent_id is None] for t in traces}
    assert all(len(r) == 1 for r in roots.values())
    by_episode = {roots[t.info.trace_id][0].inputs["episode_id"]: t for t in traces}
    assert set(by_episode) == set(steps)
    for eid, t in by_episode.items():
        assert len(t.data.spans) == steps[eid] + 1
        assert t.info.state == "OK" and t.info.execution_time_ms is not None


def test_a_tracking_store_without_traces_keeps_the_run_and_skips_the_traces(
    tmp_path: Path,
    videos: Videos,
    tiny_model_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """MLflow's file store has no ``log_spans`` (like a tracking server older than 3.4): the
    evaluation still answers every question and logs its run; traces are skipped with one
    warning naming the fix."""
    import logging

    import mlflow

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    ann, root = _nextqa(tmp_path, videos)
    settings = _tiny(tmp_path, tiny_model_path)
    settings.mlflow.tracking_uri = f"file://{tmp_path / 'mlruns'}"
    spec = EvalSpec("nextqa", annotations=ann, videos=root, traces=True)
    with caplog.at_level(logging.WARNING, logger="vidra"):
        report = evaluate(settings, spec)
    assert report["answered"] >= 2 and report["mlflow_run_id"]
    warned = [r.getMessage() for r in caplog.records if "traces not written" in r.getMessage()]
    assert len(warned) == 1 and "MLflow >= 3.4" in warned[0]
    mlflow.set_tracking_uri(settings.resolved_tracking_uri())
    run = mlflow.get_run(report["mlflow_run_id"])
    assert run.data.metrics["accuracy"] == pytest.approx(report["accuracy"])


def test_open_ended_and_grounding_families_on_the_tiny_model(
    tmp_path: Path, videos: Videos, tiny_model_path: Path
) -> None:
    settings = _tiny(tmp_path, tiny_model_path)
    q, a = formats.activitynet(tmp_path)
    names = {json.loads(q.read_text())[0]["video_name"]}
    root = videos.add(*[f"v_{n}.mp4" for n in names])
    open_ended = evaluate(
        settings,
        EvalSpec("activitynet-qa", annotations=q, answers=a, videos=root, limit=2,
                 judge=str(tiny_model_path), mlflow=False),
    )  # fmt: skip
    assert open_ended["style"] == "open_ended" and open_ended["answered"] >= 1
    assert "exact_match" in open_ended
    assert all(r["answer"] for r in open_ended["per_question"])  # free text, never blank
    ground_root = videos.add("3MSZA.mp4", "AO8RW.mp4")
    grounding = evaluate(
        settings,
        EvalSpec("charades-sta", annotations=formats.charades(tmp_path), videos=ground_root,
                 mlflow=False),
    )  # fmt: skip
    g = grounding["grounding"]
    assert grounding["answered"] >= 2 and 0.0 <= g["miou"] <= 1.0 and "r@0.5" in g


DRIVER = """
import sys
from pathlib import Path
from tests.unit.graph.scripts import Team
from vidra.config import Settings
from vidra.pipelines.evaluate import EvalSpec, evaluate
import vidra.runtime as rt
real = rt.build_model
rt.build_model = lambda *a, **k: Team(Path(sys.argv[3]), latency_s=0.15)
evaluate(Settings(), EvalSpec("nextqa", annotations=Path(sys.argv[1]), videos=Path(sys.argv[2]),
         mlflow=False))
"""


def test_a_killed_evaluation_resumes_and_answers_every_question_once(
    tmp_path: Path, videos: Videos, monkeypatch: pytest.MonkeyPatch
) -> None:
    ann, root = _nextqa(tmp_path, videos)
    env = {**os.environ, "VIDRA_DATA_DIR": str(tmp_path / "home"), "VIDRA_RUNNER__LEASE_S": "1",
           "VIDRA_RUNNER__WORKERS": "1"}  # fmt: skip
    log = tmp_path / "calls.log"
    proc = subprocess.Popen([sys.executable, "-c", DRIVER, str(ann), str(root), str(log)],
                            cwd=ROOT, env=env, stderr=subprocess.PIPE)  # fmt: skip
    until = time.monotonic() + 120
    while time.monotonic() < until and (not log.exists() or log.read_text().count("\n") < 9):
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    time.sleep(1.5)  # the killed process's lease runs out
    import vidra.runtime

    monkeypatch.setattr(vidra.runtime, "build_model", lambda *a, **k: Team(log, latency_s=0.0))
    report = evaluate(Settings(), EvalSpec("nextqa", annotations=ann, videos=root, mlflow=False))
    with TrajectoryStore(settings=Settings()) as store:
        rows = store.eval_questions(report["run_id"])
        done = [r for r in rows if r.status == "done"]
        assert (
            len(done)
            == report["answered"]
            == report["questions"] - len(report["missing_videos"]) - len(report["failed"])
        )
        per_job = [len(store.episodes_of_job(r.job_id or "")) for r in done]
        assert per_job == [1] * len(done)  # one episode per question: none asked twice
        # no job submitted twice (when this fails, which runs and jobs the two processes made)
        runs = [(e.id, e.key[:8], e.status) for e in store.eval_runs()]
        jobs = [(j.id, j.status, str(j.created_at)) for j in store.jobs(limit=1000)]
        said = proc.stderr.read().decode()[-2000:] if proc.stderr else ""
        assert len(jobs) == len(done), (runs, jobs, said)


def test_compare_is_paired_on_shared_questions(tmp_path: Path, videos: Videos) -> None:
    ann, root = _nextqa(tmp_path, videos)
    settings = Settings(data_dir=tmp_path / "home")
    import vidra.runtime

    real = vidra.runtime.build_model
    try:
        vidra.runtime.build_model = lambda *a, **k: Team()  # type: ignore[assignment]
        a = evaluate(settings, EvalSpec("nextqa", annotations=ann, videos=root, mlflow=False,
                                        strategy="uniform"))  # fmt: skip
        b = evaluate(settings, EvalSpec("nextqa", annotations=ann, videos=root, mlflow=False,
                                        strategy="coarse_to_fine"))  # fmt: skip
    finally:
        vidra.runtime.build_model = real  # type: ignore[assignment]
    assert a["run_id"] != b["run_id"]  # another strategy is another evaluation
    out = compare(settings, a["run_id"], b["run_id"])
    assert out["shared_questions"] == a["answered"] and out["diff"] == 0.0  # Team answers "A"
    assert out["p_value"] == 1.0 and out["ci95"] == [0.0, 0.0]


def test_cli_eval_errors_are_one_line(tmp_path: Path) -> None:
    def vidra(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "vidra", *args], capture_output=True,
                              text=True, cwd=ROOT, timeout=120,
                              env={**os.environ, "VIDRA_DATA_DIR": str(tmp_path)})  # fmt: skip

    tasks = vidra("eval", "tasks")
    assert tasks.returncode == 0 and "nextqa" in tasks.stdout and "charades-sta" in tasks.stdout
    wrong = tmp_path / "wrong.json"
    wrong.write_text('[{"videoID": "x", "question": "q"}]')
    for args in (["nextqa", "--videos", str(tmp_path)], ["nextqa", "--annotations", str(wrong),
                 "--videos", str(tmp_path)], ["nosuchtask"], ["compare", "a"]):  # fmt: skip
        out = vidra("eval", *args)
        assert out.returncode == 2 and out.stderr.count("\n") == 1, (args, out.stderr)
        assert "Traceback" not in out.stderr
