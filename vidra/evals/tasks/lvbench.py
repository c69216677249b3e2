"""LVBench: four-way multiple choice on hour-long videos, with evidence time references.

Format (THUDM/LVBench, ``video_info.meta.jsonl``): one line per video ``{key, type?, qa:
[{uid, question, answer, question_type, time_reference}], video_info?}``. Options are written
inside the question as ``(A) ...`` lines; ``answer`` is a letter; ``question_type`` is a list
(categories join it with ``|``, and `vidra.evals.metrics.by_category` counts an item once per
label, as LVBench's ``compute_accuracy.py`` does); ``time_reference`` (``"00:15-00:19"``)
becomes the item's evidence ``span``. Videos ``<key>.mp4``.
"""

from __future__ import annotations

from typing import Any

from vidra.evals.choices import inline_options, resolve_answer
from vidra.evals.collect import Collector, annotations_of, require_list
from vidra.evals.files import read_records
from vidra.evals.items import EvalItem, LoadRequest, LoadResult
from vidra.evals.resolve import FileFinder
from vidra.video.subtitles import parse_clock

__all__ = ["load_lvbench", "parse_time_reference"]

VIDEO_FIELDS = ("key", "type", "qa", "video_info")
QA_FIELDS = ("uid", "question", "answer", "question_type", "time_reference")
_FIX = "pass LVBench's video_info.meta.jsonl"


def parse_time_reference(text: Any) -> tuple[float, float] | None:
    """``"00:15-00:19"`` or ``"1:02:03-1:02:30"`` to seconds; ``None`` when unreadable."""
    if not isinstance(text, str) or text.count("-") != 1:
        return None
    a, b = text.split("-")
    try:
        start, end = parse_clock(a), parse_clock(b)
    except ValueError:
        return None
    return (start, end) if end >= start else None


def load_lvbench(req: LoadRequest) -> LoadResult:
    """Load LVBench (categories ``question_type`` and ``video_type``)."""
    path = annotations_of(req, "LVBench's video_info.meta.jsonl")
    records, data = read_records(path, "jsonl")
    require_list(records, data, "LVBench", ("key", "qa"), _FIX)
    col = Collector(req, path, (*VIDEO_FIELDS, *QA_FIELDS))
    col.take(records)
    finder = FileFinder(req.videos)
    for row, rec in records.rows:
        if col.full:
            break
        col.columns(rec)
        if col.missing(rec, row, ("key", "qa")) or not isinstance(rec["qa"], list):
            continue
        key = str(rec["key"])
        video = finder.find(f"{key}.mp4", key)
        for qa in rec["qa"]:
            item = _item(req, col, row, rec, qa, str(video) if video else None)
            if item is not None:
                col.add(item)
    return col.finish(("key", "qa: [{uid, question, answer, question_type, time_reference}]"), _FIX)


def _item(
    req: LoadRequest, col: Collector, row: int, rec: dict[str, Any], qa: Any, path: str | None
) -> EvalItem | None:
    if not isinstance(qa, dict) or col.missing(qa, row, ("uid", "question")):
        if not isinstance(qa, dict):
            col.skip(row, None, "a qa entry is not an object")
        return None
    qid = str(qa["uid"])
    stem, options = inline_options(str(qa["question"]))
    if len(options) < 2:
        col.skip(row, qid, "no (A)/(B) options in the question text")
        return None
    idx = None
    if qa.get("answer") not in (None, ""):
        idx, form = resolve_answer(qa["answer"], options, "letter")
        if idx is None:
            col.skip(row, qid, f"answer {qa['answer']!r} names no option")
            return None
        col.answer_form(form, "letter", qid)
    span = parse_time_reference(qa.get("time_reference"))
    if qa.get("time_reference") and span is None:
        col.note("unreadable time_reference (no span)", qid)
    return EvalItem(
        task=req.task,
        qid=qid,
        video_id=str(rec["key"]),
        path=path,
        question=stem,
        options=options,
        answer=options[idx] if idx is not None else None,
        answer_index=idx,
        span=span,
        categories=_categories(rec, qa),
    )


def _categories(rec: dict[str, Any], qa: dict[str, Any]) -> dict[str, str]:
    types = qa.get("question_type")
    labels = [str(t) for t in types] if isinstance(types, list) else [str(types or "")]
    out = {"question_type": "|".join(t for t in labels if t)}
    if rec.get("type"):
        out["video_type"] = str(rec["type"])
    return {k: v for k, v in out.items() if v}
