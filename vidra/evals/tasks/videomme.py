"""Video-MME: four-way multiple choice on short, medium and long YouTube videos.

Format (lmms-lab/Video-MME parquet, read by lmms-eval's videomme task): flat rows ``video_id,
duration, domain, sub_category, url, videoID, question_id, task_type, question, options,
answer`` with ``options`` like ``["A. ...", "B. ..."]`` and ``answer`` a letter. Also read:
the same rows as JSON/JSONL, and the nested layout of the repository's
``output_test_template.json`` (``[{video_id, duration, ..., questions: [...]}]``, trailing
commas and all). Videos ``<videoID>.mp4``; subtitles ``<subtitles>/<videoID>.srt``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from vidra.evals.choices import resolve_answer, strip_prefixes
from vidra.evals.collect import Collector, annotations_of, require_columns, require_list
from vidra.evals.files import read_records
from vidra.evals.items import EvalItem, LoadRequest, LoadResult
from vidra.evals.resolve import FileFinder

__all__ = ["load_videomme"]

VIDEO_FIELDS = ("video_id", "videoID", "duration", "domain", "sub_category", "url")
QUESTION_FIELDS = ("question_id", "task_type", "question", "options", "answer", "response")
FIELDS = (*VIDEO_FIELDS, *QUESTION_FIELDS, "questions")
REQUIRED = ("question_id", "question", "options")
CATEGORIES = ("duration", "domain", "sub_category", "task_type")
_FIX = "pass Video-MME's test parquet (or its rows as JSON/JSONL)"


def _flatten(rows: list[tuple[int, dict[str, Any]]]) -> Iterator[tuple[int, dict[str, Any]]]:
    """Rows as they are, or one row per question of the nested template layout."""
    for row, rec in rows:
        if isinstance(rec.get("questions"), list):
            head = {k: v for k, v in rec.items() if k != "questions"}
            for q in rec["questions"]:
                yield row, {**head, **q} if isinstance(q, dict) else {**head}
        else:
            yield row, rec


def _options(value: Any) -> list[str] | None:
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except json.JSONDecodeError:
                return None
        else:
            value = [line for line in text.splitlines() if line.strip()]
    if not isinstance(value, list | tuple) or len(value) < 2:
        return None
    return [str(v) for v in value]


def load_videomme(req: LoadRequest) -> LoadResult:
    """Load Video-MME (categories ``duration``, ``domain``, ``sub_category``, ``task_type``)."""
    path = annotations_of(req, "Video-MME's test-*.parquet (or a JSON/JSONL of its rows)")
    records, data = read_records(path)
    if records.columns is not None and path.suffix.lower() == ".parquet":
        require_columns(records, REQUIRED, "Video-MME", _FIX)
    require_list(records, data, "Video-MME", REQUIRED, _FIX)
    col = Collector(req, path, FIELDS)
    col.take(records)
    finder = FileFinder(req.videos)
    for row, rec in _flatten(records.rows):
        if col.full:
            break
        col.columns(rec)
        if col.missing(rec, row, REQUIRED):
            continue
        item = _item(req, col, row, rec, finder)
        if item is not None:
            col.add(item)
    return col.finish(REQUIRED, _FIX)


def _item(
    req: LoadRequest, col: Collector, row: int, rec: dict[str, Any], finder: FileFinder
) -> EvalItem | None:
    qid = str(rec["question_id"])
    raw = _options(rec["options"])
    if raw is None:
        col.skip(row, qid, "options is not a list of at least two options")
        return None
    options, stripped = strip_prefixes(raw)
    if not stripped:
        col.note("options without 'A. ' prefixes taken as written", qid)
    idx = form = None
    if rec.get("answer") not in (None, ""):
        idx, form = resolve_answer(rec["answer"], options, "letter")
        if idx is None:
            col.skip(row, qid, f"answer {rec['answer']!r} names no option")
            return None
        col.answer_form(form, "letter", qid)
    video_id = str(rec.get("videoID") or rec.get("video_id") or "")
    video = finder.find(f"{video_id}.mp4", video_id) if video_id else None
    cats = {k: str(rec[k]) for k in CATEGORIES if rec.get(k) not in (None, "")}
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
        subtitles=col.subtitles_for(f"{video_id}.srt", video_id, str(rec.get("video_id", ""))),
    )
