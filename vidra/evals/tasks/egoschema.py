"""EgoSchema: five-way multiple choice on three-minute egocentric clips.

Format (egoschema/EgoSchema): ``questions.json`` ``[{q_uid, google_drive_id?, question,
"option 0".."option 4"}]`` and ``subset_answers.json`` ``{q_uid: index}`` (answers are public
for 500 questions only). ``split=subset`` (default) keeps the answered questions; ``full``
keeps all, with ``answer=None`` where the answer is withheld. Videos ``<q_uid>.mp4``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vidra.errors import AnnotationError
from vidra.evals.choices import resolve_answer
from vidra.evals.collect import Collector, annotations_of, require_list
from vidra.evals.files import read_json, read_records
from vidra.evals.items import EvalItem, LoadRequest, LoadResult
from vidra.evals.resolve import FileFinder

__all__ = ["load_egoschema"]

OPTIONS = tuple(f"option {k}" for k in range(5))
FIELDS = ("q_uid", "google_drive_id", "question", *OPTIONS)
REQUIRED = ("q_uid", "question", *OPTIONS)
_FIX = "pass EgoSchema's questions.json as --annotations (subset_answers.json as --answers)"


def _answers(req: LoadRequest, q_path: Path, col: Collector) -> dict[str, Any]:
    path = req.answers or q_path.parent / "subset_answers.json"
    if not path.is_file():
        if req.answers is not None:
            raise AnnotationError(path, "no such file", fix="check the --answers path")
        col.result.warnings.append("no subset_answers.json found: every answer is None")
        return {}
    data, warnings = read_json(path)
    col.result.warnings.extend(warnings)
    if not isinstance(data, dict):
        raise AnnotationError(
            path,
            f"not EgoSchema answers: JSON top level is a {type(data).__name__}",
            expected=["{q_uid: option index}"],
            fix="pass subset_answers.json as --answers",
        )
    return {str(k): v for k, v in data.items()}


def load_egoschema(req: LoadRequest) -> LoadResult:
    """Load EgoSchema (``split=subset|full``)."""
    path = annotations_of(req, "EgoSchema's questions.json")
    records, data = read_records(path, "json")
    require_list(records, data, "EgoSchema", REQUIRED, _FIX)
    col = Collector(req, path, FIELDS)
    col.take(records)
    answers = _answers(req, path, col)
    subset = (req.split or "subset") == "subset"
    finder = FileFinder(req.videos)
    for row, rec in records.rows:
        if col.full:
            break
        col.columns(rec)
        if col.missing(rec, row, REQUIRED):
            continue
        qid = str(rec["q_uid"])
        if subset and qid not in answers:
            continue
        item = _item(req, col, row, rec, answers.get(qid), finder.find(f"{qid}.mp4", qid))
        if item is not None:
            col.add(item)
    if subset and answers and not col.result.items and not col.result.skipped:
        col.result.warnings.append(
            "no question has an answer in the answers file: pass the matching "
            "subset_answers.json, or split=full for predictions only"
        )
    return col.finish(REQUIRED, _FIX)


def _item(
    req: LoadRequest,
    col: Collector,
    row: int,
    rec: dict[str, Any],
    answer: Any,
    video: Path | None,
) -> EvalItem | None:
    qid = str(rec["q_uid"])
    options = [str(rec[o]).strip() for o in OPTIONS]
    idx = None
    if answer is not None:
        idx, form = resolve_answer(answer, options, "index")
        if idx is None:
            col.skip(row, qid, f"answer {answer!r} names none of the five options")
            return None
        col.answer_form(form, "index", qid)
    return EvalItem(
        task=req.task,
        qid=qid,
        video_id=qid,
        path=str(video) if video else None,
        question=str(rec["question"]),
        options=options,
        answer=options[idx] if idx is not None else None,
        answer_index=idx,
    )
