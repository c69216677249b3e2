"""LongVideoBench: multiple choice with referring queries on long videos, with subtitles.

Format (longvideobench/LongVideoBench, ``lvb_val.json`` / ``lvb_test_wo_gt.json``, and the
parquet lmms-eval reads): records with ``id, video_id, video_path, question, candidates``
(or ``option0..option4``), ``correct_choice`` (an index; a letter is tolerated),
``duration_group, question_category, subtitle_path, duration,
starting_timestamp_for_subtitles``. ``split=test`` has no answers. Videos
``<videos>/<video_path>``; subtitles ``<subtitles>/<subtitle_path>``. Subtitle times are
those of the source video: subtract ``starting_timestamp_for_subtitles`` (not carried
on the item) before matching them to frame times.
"""

from __future__ import annotations

from typing import Any

from vidra.evals.choices import resolve_answer
from vidra.evals.collect import Collector, annotations_of, require_list
from vidra.evals.files import read_records
from vidra.evals.items import EvalItem, LoadRequest, LoadResult
from vidra.evals.resolve import FileFinder

__all__ = ["load_longvideobench"]

OPTION_KEYS = tuple(f"option{k}" for k in range(5))
FIELDS = (
    "id",
    "video_id",
    "video_path",
    "question",
    "candidates",
    *OPTION_KEYS,
    "correct_choice",
    "duration_group",
    "question_category",
    "subtitle_path",
    "duration",
    "starting_timestamp_for_subtitles",
    "position",
    "topic_category",
    "level",
    "question_wo_referring_query",
    "view_count",
)
REQUIRED = ("question",)
_FIX = "pass LongVideoBench's lvb_val.json (or lvb_test_wo_gt.json with split=test)"


def _candidates(rec: dict[str, Any]) -> list[str] | None:
    raw = rec.get("candidates")
    if raw is None:
        raw = [rec[k] for k in OPTION_KEYS if rec.get(k) not in (None, "")]
    if not isinstance(raw, list | tuple) or len(raw) < 2:
        return None
    return [str(c).strip() for c in raw]


def load_longvideobench(req: LoadRequest) -> LoadResult:
    """Load LongVideoBench (``split=val|test``; categories ``duration_group``,
    ``question_category``)."""
    path = annotations_of(req, "LongVideoBench's lvb_val.json")
    records, data = read_records(path)
    require_list(records, data, "LongVideoBench", (*REQUIRED, "candidates"), _FIX)
    col = Collector(req, path, FIELDS)
    col.take(records)
    finder = FileFinder(req.videos)
    for row, rec in records.rows:
        if col.full:
            break
        col.columns(rec)
        if col.missing(rec, row, REQUIRED):
            continue
        if not (rec.get("video_path") or rec.get("video_id")):
            col.skip(row, rec.get("id"), "missing video_path and video_id")
            continue
        item = _item(req, col, row, rec, finder)
        if item is not None:
            col.add(item)
    return col.finish((*REQUIRED, "candidates", "correct_choice"), _FIX)


def _item(
    req: LoadRequest, col: Collector, row: int, rec: dict[str, Any], finder: FileFinder
) -> EvalItem | None:
    video_id = str(rec.get("video_id") or rec["video_path"]).removesuffix(".mp4")
    qid = str(rec.get("id") or f"{video_id}_{row}")
    options = _candidates(rec)
    if options is None:
        col.skip(row, qid, "fewer than two candidates")
        return None
    idx = None
    if req.split != "test" and rec.get("correct_choice") not in (None, ""):
        idx, form = resolve_answer(rec["correct_choice"], options, "index")
        if idx is None:
            col.skip(row, qid, f"correct_choice {rec['correct_choice']!r} names no candidate")
            return None
        col.answer_form(form, "index", qid)
    video = finder.find(*[str(rec[k]) for k in ("video_path", "video_id") if rec.get(k)])
    keys = ("duration_group", "question_category")
    cats: dict[str, str] = {k: str(rec[k]) for k in keys if rec.get(k) is not None}
    sub = rec.get("subtitle_path")
    return EvalItem(
        task=req.task,
        qid=qid,
        video_id=video_id,
        path=str(video) if video else None,
        question=str(rec["question"]),
        options=options,
        answer=options[idx] if idx is not None else None,
        answer_index=idx,
        categories=cats,
        subtitles=col.subtitles_for(str(sub), video_id) if sub else None,
    )
