"""ActivityNet-QA: open-ended questions on ActivityNet videos.

Format (MILVLG/activitynet-qa, dataset/): ``*_q.json`` ``[{video_name, question, question_id}]``
and ``*_a.json`` ``[{answer, type, question_id}]``; ``type`` 0..8 names the question type
(0-2) or, for free questions, the answer type (3-8). Videos ``v_<video_name>.*`` or
``<video_name>.*`` (mp4, mkv, webm).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vidra.errors import AnnotationError
from vidra.evals.collect import Collector, annotations_of, require_list
from vidra.evals.files import read_records
from vidra.evals.items import EvalItem, LoadRequest, LoadResult
from vidra.evals.resolve import FileFinder

__all__ = ["TYPE_NAMES", "load_activitynet_qa"]

TYPE_NAMES = (
    "motion",
    "spatial relation",
    "temporal relation",
    "yes/no",
    "color",
    "object",
    "location",
    "number",
    "other",
)
Q_FIELDS = ("video_name", "question", "question_id")
A_FIELDS = ("answer", "type", "question_id")
_FIX = "pass ActivityNet-QA's <split>_q.json as --annotations and <split>_a.json as --answers"


def _answers_path(req: LoadRequest, q_path: Path) -> Path | None:
    if req.answers is not None:
        return req.answers
    name = q_path.name
    if "_q" in name:
        guess = q_path.with_name("_a".join(name.rsplit("_q", 1)))
        if guess.is_file():
            return guess
    return None


def _answers(path: Path, col: Collector) -> dict[str, dict[str, Any]]:
    records, data = read_records(path, "json")
    require_list(records, data, "ActivityNet-QA answers", A_FIELDS, _FIX)
    col.result.warnings.extend(records.warnings)
    out: dict[str, dict[str, Any]] = {}
    for row, rec in records.rows:
        if rec.get("question_id") is None or rec.get("answer") is None:
            col.note("answer rows without question_id or answer ignored", f"{path.name}:{row}")
            continue
        out.setdefault(str(rec["question_id"]), rec)
    if records.rows and not out:
        raise AnnotationError(
            path,
            "no answer row has question_id and answer",
            row=records.rows[0][0],
            expected=list(A_FIELDS),
            fix=_FIX,
        )
    return out


def _type_name(value: Any) -> str | None:
    try:
        k = int(value)
    except (TypeError, ValueError):
        return None
    return TYPE_NAMES[k] if 0 <= k < len(TYPE_NAMES) else None


def load_activitynet_qa(req: LoadRequest) -> LoadResult:
    """Load ActivityNet-QA (open-ended; category ``type`` by the published names)."""
    path = annotations_of(req, "ActivityNet-QA's <split>_q.json")
    records, data = read_records(path, "json")
    require_list(records, data, "ActivityNet-QA questions", Q_FIELDS, _FIX)
    col = Collector(req, path, Q_FIELDS)
    col.take(records)
    a_path = _answers_path(req, path)
    answers = _answers(a_path, col) if a_path is not None else {}
    if a_path is None:
        col.result.warnings.append("no answers file found: items have answer None")
    finder = FileFinder(req.videos)
    for row, rec in records.rows:
        if col.full:
            break
        col.columns(rec)
        if col.missing(rec, row, Q_FIELDS):
            continue
        qid, name = str(rec["question_id"]), str(rec["video_name"])
        truth = answers.get(qid)
        if answers and truth is None:
            col.note("questions without an answer (answer None)", qid)
        col.add(_item(req, rec, truth, finder.find(f"v_{name}", name)))
    return col.finish(Q_FIELDS, _FIX)


def _item(
    req: LoadRequest, rec: dict[str, Any], truth: dict[str, Any] | None, video: Path | None
) -> EvalItem:
    kind = _type_name(truth.get("type")) if truth else None
    return EvalItem(
        task=req.task,
        qid=str(rec["question_id"]),
        video_id=str(rec["video_name"]),
        path=str(video) if video else None,
        question=str(rec["question"]),
        options=None,
        answer=str(truth["answer"]) if truth else None,
        answer_index=None,
        categories={"type": kind} if kind else {},
        style="open_ended",
    )
