"""``vidra eval``: a benchmark task run as normal vidra jobs, scored with intervals, resumable.

Every question is a job (local or Ray executor, concurrent), so every evaluated answer is a
trajectory in SQL, linked to its evaluation run. The run is keyed by task, data, model,
adapters and configuration: re-running the same evaluation skips finished questions and
continues interrupted ones. Scores come from `vidra.pipelines.scoring`; the report goes to a
JSON file, MLflow (metrics, config, the per-question table, one trace per episode) and back.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from vidra.config import Settings
from vidra.errors import JobFailed, VidraError
from vidra.evals import TASKS, EvalItem, LoadResult, load_task
from vidra.evals.spans import evidence_windows
from vidra.pipelines.scoring import aggregate, judge_answer, question_result, span_text

__all__ = ["EvalSpec", "Progress", "compare", "evaluate"]

log = logging.getLogger(__name__)
Progress = Callable[[int, int, dict[str, Any] | None], None]
"""``(questions finished, questions in all, the last result or None)``."""


@dataclass(frozen=True)
class EvalSpec:
    """One evaluation: which task and data, and how the agents run it."""

    task: str
    annotations: Path | None = None
    videos: Path | None = None
    answers: Path | None = None
    subtitles: Path | None = None
    split: str | None = None
    limit: int | None = None
    strategy: str | None = None
    max_frames: int | None = None
    rollouts: int = 1
    options: dict[str, Any] = field(default_factory=dict)
    judge: str | None = None  # a model path or hub id that grades open-ended answers
    mlflow: bool = True
    traces: bool = True
    out: Path | None = None


def _digest(path: Path) -> str:
    """A file's content hash, computed once per process for an unchanged file (a 7B model's
    weights take seconds to read)."""
    st = path.stat()
    return _digest_of(str(path.resolve()), st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=256)
def _digest_of(path: str, size: int, mtime_ns: int) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha1").hexdigest()


def _fingerprint(path: str) -> str:
    """A model's or an adapter's identity by content: its configuration and weights files, so
    the same weights in another checkout or folder are the same evaluation (a hub id, not a
    folder here, is its name)."""
    p = Path(path).expanduser()
    files = sorted([*p.glob("*.safetensors"), *p.glob("*config.json")]) if p.is_dir() else []
    if not files:
        return str(path)
    return hashlib.sha1(json.dumps([[f.name, _digest(f)] for f in files]).encode()).hexdigest()[:12]


def _file(path: Path | None) -> list[Any] | None:
    """An annotation, answers or subtitles file by content (a folder by its path and stat)."""
    if path is None:
        return None
    p = path.expanduser().resolve()
    if p.is_file():
        return [p.name, _digest(p)]
    st = p.stat() if p.exists() else None
    return [str(p), st.st_size if st else None, st.st_mtime_ns if st else None]


def _videos(root: Path | None, items: list[EvalItem]) -> str:
    """The questions' video files (relative name, size, mtime): what else the videos folder
    holds, and where it is, do not make another evaluation."""
    base = root.expanduser().resolve() if root is not None else None
    seen = []
    for path in sorted({i.path for i in items if i.path is not None}):
        p = Path(path).resolve()
        st = p.stat()
        name = p.relative_to(base) if base is not None and p.is_relative_to(base) else p
        seen.append([str(name), st.st_size, st.st_mtime_ns])
    return hashlib.sha1(json.dumps(seen).encode()).hexdigest()[:12]


def _config(
    spec: EvalSpec, settings: Settings, adapters: dict[str, str], items: list[EvalItem]
) -> dict[str, Any]:
    """What makes two evaluations the same (the run's key is its hash): files, the model and
    adapters by content, videos by the questions' files."""
    m = settings.model
    return {
        "task": spec.task, "annotations": _file(spec.annotations), "answers": _file(spec.answers),
        "videos": _videos(spec.videos, items), "subtitles": _file(spec.subtitles),
        "split": spec.split, "limit": spec.limit,
        "options": {k: str(v) for k, v in sorted(spec.options.items())},
        "strategy": spec.strategy or settings.agents.strategy, "max_frames": spec.max_frames,
        "rollouts": spec.rollouts, "judge": spec.judge,
        "model": {"backend": m.backend, "weights": _fingerprint(m.path),
                  "max_pixels": m.max_pixels, "dtype": m.dtype},
        "adapters": {r: _fingerprint(p) for r, p in sorted(adapters.items())},
        "agents": settings.agents.model_dump(mode="json"),
    }  # fmt: skip


def _key(config: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:40]


def _job_args(item: EvalItem) -> dict[str, Any]:
    """How an item is asked: its prompt style, ground truth and evidence spans."""
    spans = [*item.spans] or ([item.span] if item.span else [])
    args: dict[str, Any] = {"evidence": evidence_windows(spans, item.evidence),
                            "subtitles": item.subtitles}  # fmt: skip
    if item.style == "grounding":
        span = item.span or (item.spans[0] if item.spans else None)
        args["question"] = (
            f"During which time span does this happen: {item.question.rstrip('.?')}? "
            "Answer with the span as start-end in m:ss."
        )
        args["answer"] = span_text(span) if span else None
        return args
    args["question"] = item.question
    args["options"] = item.options if item.style == "multiple_choice" else None
    if item.style == "multiple_choice" and item.answer_index is not None and item.options:
        args["answer"] = item.options[item.answer_index]
    elif item.style == "open_ended":
        args["answer"] = item.answer
    return args


@dataclass
class _Run:
    """One evaluation's state while it runs."""

    spec: EvalSpec
    rt: Any
    run_id: str
    tracking: Any = None  # an EvalTracking while the MLflow run is open
    results: list[dict[str, Any]] = field(default_factory=list)
    failed: list[dict[str, str]] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


def _submit(r: _Run, item: EvalItem, job_id: str | None) -> str | None:
    from vidra import jobs

    if job_id is not None:  # answered before, or interrupted: the executor resumes it
        r.rt.executor.submit(job_id)
        return job_id
    budget = {"max_frames": r.spec.max_frames} if r.spec.max_frames else None
    try:
        # recorded linked to its question (one transaction), and before it runs: no crash can
        # leave an evaluation's job or episode that training would read
        job_id = jobs.submit(
            r.rt, item.path or "", rollouts=r.spec.rollouts, budget=budget,
            strategy=r.spec.strategy, run=False, eval_question=(r.run_id, item.qid),
            **_job_args(item),
        )  # fmt: skip
    except VidraError as exc:  # an undecodable video, options a job cannot take, ...
        r.failed.append({"qid": item.qid, "error": str(exc)})
        r.rt.store.put_eval_question(r.run_id, item.qid, "failed", result={"error": str(exc)})
        return None
    r.rt.executor.submit(job_id)
    return job_id


def _collect(r: _Run, item: EvalItem, job_id: str, judge: Any) -> dict[str, Any] | None:
    from vidra import jobs

    try:
        ans = jobs.wait(r.rt, job_id)
    except (JobFailed, VidraError) as exc:
        r.failed.append({"qid": item.qid, "error": str(exc)})
        r.rt.store.put_eval_question(r.run_id, item.qid, "failed", result={"error": str(exc)})
        return None
    traj = r.rt.store.get_episode(ans.episode_id)
    fps = r.rt.store.get_video(r.rt.store.get_job(job_id).video_id).fps
    result = question_result(item, traj, fps)
    if judge is not None and item.style == "open_ended":
        result["judged"] = judge_answer(judge, item, ans.text)
    r.rt.store.put_eval_question(r.run_id, item.qid, "done", result=result)
    r.results.append(result)
    if r.tracking is not None:
        r.tracking.add(result)
    return result


def _answer_all(r: _Run, load: LoadResult, judge: Any, progress: Progress | None) -> None:
    """Submit every unfinished question (all at once: the executor bounds concurrency),
    then collect them in order."""
    known = {q.qid: q for q in r.rt.store.eval_questions(r.run_id)}
    pending: list[tuple[EvalItem, str]] = []
    for item in load.items:
        rec = known.get(item.qid)
        if item.path is None:
            r.missing.append(item.qid)
            r.rt.store.put_eval_question(r.run_id, item.qid, "missing")
        elif rec is not None and rec.status == "done":
            r.results.append(rec.result)
            if r.tracking is not None:
                r.tracking.add(rec.result)
        elif rec is not None and rec.status == "failed":
            r.failed.append({"qid": item.qid, "error": rec.result.get("error", "")})
        elif (job_id := _submit(r, item, rec.job_id if rec else None)) is not None:
            pending.append((item, job_id))
    total = len(r.results) + len(pending)
    if progress:
        progress(len(r.results), total, None)
    for item, job_id in pending:
        result = _collect(r, item, job_id, judge)
        if progress:
            progress(len(r.results), total, result)


def _report(r: _Run, load: LoadResult, wall_s: float) -> dict[str, Any]:
    task = TASKS[r.spec.task]
    order = {item.qid: k for k, item in enumerate(load.items)}
    results = sorted(r.results, key=lambda x: order.get(x["qid"], 1 << 30))
    return {
        "task": r.spec.task,
        "style": task.style,
        "questions": len(load.items),
        "answered": len(results),
        "missing_videos": r.missing,
        "failed": r.failed,
        **aggregate(results, task.style),
        "run_id": r.run_id,
        "mlflow_run_id": None,
        "wall_s": round(wall_s, 2),
        "warnings": load.warnings,
        "skipped_rows": load.skipped,
        "spec": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(r.spec).items()},
        "per_question": results,
    }


def evaluate(
    settings: Settings,
    spec: EvalSpec,
    adapters: dict[str, str] | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Run ``spec`` and return its report (see the module docstring); resumable.

    Args:
        adapters: role -> adapter directory (default: configured, else the champions).
        progress: called as questions finish.
    """
    from vidra.runtime import Runtime, build_model

    t0 = time.perf_counter()
    task = TASKS.get(spec.task)
    if spec.videos is None and task is not None and not task.needs_annotations:
        # a generated task (synthetic, needle) renders its videos into the data dir by default
        spec = replace(spec, videos=Path(settings.data_dir) / "eval-videos" / spec.task)
    load = load_task(spec.task, spec.annotations, spec.videos, spec.answers, spec.subtitles,
                     spec.split, spec.limit, **spec.options)  # fmt: skip
    with Runtime(settings, adapters=adapters) as rt:
        config = _config(spec, settings, rt.adapters(), load.items)
        key = _key(config)
        found = rt.store.find_eval_run(key)
        run = found or rt.store.create_eval_run(spec.task, key, config)
        judge = None
        if spec.judge:
            judge = build_model(settings.model_copy(update={"model": settings.model.model_copy(
                update={"path": spec.judge, "adapters": {}})}), {})  # fmt: skip
        r = _Run(spec, rt, run.id)
        if spec.mlflow:
            from vidra.pipelines.eval_tracking import EvalTracking

            r.tracking = EvalTracking(settings, spec.task, rt.store, spec.traces)
        try:
            _answer_all(r, load, judge, progress)
        except BaseException:
            if r.tracking is not None:
                r.tracking.fail()
            raise
        report = _report(r, load, time.perf_counter() - t0)
        if r.tracking is not None:
            report["mlflow_run_id"] = r.tracking.finish(report)
        metrics = {k: v for k, v in report.items() if k not in ("per_question", "spec")}
        rt.store.finish_eval_run(run.id, "done", metrics, report["mlflow_run_id"])
    if spec.out is not None:
        spec.out.parent.mkdir(parents=True, exist_ok=True)
        spec.out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    return report


def compare(settings: Settings, a: str, b: str) -> dict[str, Any]:
    """Paired bootstrap difference (A - B) of two evaluation runs on their shared questions.

    ``a`` and ``b`` are evaluation run ids, or report JSON files written by ``--out``.
    """
    from vidra.evals.metrics import paired_from_maps
    from vidra.storage import TrajectoryStore

    def scores(ref: str, store: TrajectoryStore) -> tuple[str, dict[str, float]]:
        path = Path(ref)
        if path.suffix == ".json" and path.is_file():
            data = json.loads(path.read_text())
            rows, task = data.get("per_question", []), data.get("task", "?")
        else:
            run = store.get_eval_run(ref)
            rows = [q.result for q in store.eval_questions(run.id) if q.status == "done"]
            task = run.task
        return task, {x["qid"]: float(x["correct"]) for x in rows if x.get("correct") is not None}

    with TrajectoryStore(settings=settings) as store:
        (task_a, sa), (task_b, sb) = scores(a, store), scores(b, store)
    d = paired_from_maps(sa, sb)
    return {
        "a": a, "b": b, "task": task_a if task_a == task_b else f"{task_a} vs {task_b}",
        "shared_questions": d.n, "only_a": len(set(sa) - set(sb)), "only_b": len(set(sb) - set(sa)),
        "accuracy_a": d.mean_a, "accuracy_b": d.mean_b, "diff": d.diff, "ci95": list(d.ci95),
        "p_value": d.p_value,
    }  # fmt: skip
