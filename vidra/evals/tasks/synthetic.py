"""vidra's synthetic worlds as a benchmark: rendered 160x90 videos with exact ground truth.

Options ``worlds`` (10), ``duration`` (240 s), ``seed`` (0: worlds use seeds 0..worlds-1),
``per_kind`` (3), ``fps`` (4), ``needles`` (1 per world). Videos are rendered under
``--videos`` and reused when present (same names as `vidra.pipelines.heldout.synthetic_worlds`
for the default fps and needles).
"""

from __future__ import annotations

from pathlib import Path

from vidra.errors import ConfigError
from vidra.evals.collect import Collector
from vidra.evals.items import EvalItem, LoadRequest, LoadResult
from vidra.evals.params import opt_float, opt_int
from vidra.evals.spans import evidence_windows
from vidra.video.synthetic import Question, WorldSpec, generate_questions, make_world, render_world
from vidra.video.synthetic.questions import evidence_times, needle_questions

__all__ = ["evidence_spans", "load_synthetic", "output_dir"]


def output_dir(req: LoadRequest) -> Path:
    """``--videos``, created: generated tasks write their videos there.

    Raises:
        ConfigError: no ``--videos`` given.
    """
    if req.videos is None:
        raise ConfigError(
            f"task {req.task!r} renders its videos; fix: pass --videos DIR (reused on reruns)"
        )
    req.videos.mkdir(parents=True, exist_ok=True)
    return req.videos


def evidence_spans(q: Question) -> list[tuple[float, float]] | None:
    """The ground-truth evidence spans a job records for ``q``, as the evaluation harness
    records them for its item: the answer span, else a window around each evidence time.
    Per-step evidence credit is computed against them."""
    return evidence_windows([q.answer_span] if q.answer_span else [], evidence_times(q))


def _item(req: LoadRequest, q: Question, video: Path) -> EvalItem:
    return EvalItem(
        task=req.task,
        qid=q.id,
        video_id=video.stem,
        path=str(video),
        question=q.text,
        options=list(q.options),
        answer=q.answer,
        answer_index=q.answer_index,
        span=q.answer_span,
        evidence=evidence_times(q),
        categories={"kind": q.kind},
    )


def load_synthetic(req: LoadRequest) -> LoadResult:
    """Render (or reuse) the worlds and load their questions (category ``kind``)."""
    root = output_dir(req)
    o, name = req.options, req.task
    worlds, seed = opt_int(o, name, "worlds", 10, low=1), opt_int(o, name, "seed", 0)
    duration, fps = opt_float(o, name, "duration", 240.0), opt_float(o, name, "fps", 4.0)
    per_kind, needles = opt_int(o, name, "per_kind", 3, low=1), opt_int(o, name, "needles", 1)
    col = Collector(req, None, ())
    for s in range(seed, seed + worlds):
        if col.full:
            break
        spec = WorldSpec(duration=duration, fps=fps, width=160, height=90, seed=s, needles=needles)
        world = make_world(spec)
        extra = "" if (fps, needles) == (4.0, 1) else f"-{fps:g}fps-{needles}n"
        video = root / f"world-{s}-{duration:g}s{extra}.mp4"
        if not video.is_file():
            tmp = video.with_name(f".{video.stem}.part.mp4")
            render_world(world, tmp, gop_s=4)
            tmp.replace(video)
        questions = generate_questions(world, per_kind=per_kind)
        ids = {q.id for q in questions}
        questions += [q for q in needle_questions(world) if q.id not in ids]
        for q in questions:
            col.add(_item(req, q, video))
    return col.finish((), "")
