"""MLVU: multiple choice on long videos, one JSON file per task type.

Format (JUNJIE99/MLVU, data/*.json): ``[{video, duration, question, candidates, answer,
question_type}]``; ``answer`` is the right candidate's text; ``video`` is the file name (the
repository keeps each task's videos in its own folder, found here by name under
``--videos``). ``--annotations`` may be one file or the folder of them. Generation tasks
(``subPlot``, ``summary``: no candidates, judged by an LLM upstream) are skipped, with a reason.
MLVU has no question ids: qids are ``<question_type>/<video stem>/<k>``, ``k`` counting that
video's questions in file order.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from vidra.evals.choices import resolve_answer
from vidra.evals.collect import Collector, annotations_of, require_list
from vidra.evals.files import Records, read_records
from vidra.evals.items import EvalItem, LoadRequest, LoadResult
from vidra.evals.resolve import FileFinder

__all__ = ["load_mlvu"]

FIELDS = ("video", "duration", "question", "candidates", "answer", "question_type")
REQUIRED = ("video", "question", "answer")
_FIX = "pass an MLVU json (e.g. data/1_plotQA.json) or the folder of them"


def _files(path: Path) -> list[Path]:
    return sorted(path.glob("*.json")) if path.is_dir() else [path]


def load_mlvu(req: LoadRequest) -> LoadResult:
    """Load MLVU (category ``question_type``)."""
    root = annotations_of(req, "an MLVU json (data/1_plotQA.json) or the data/ folder")
    col = Collector(req, root, FIELDS)
    finder = FileFinder(req.videos)
    counts: Counter[str] = Counter()
    for path in _files(root):
        records, data = read_records(path, "json")
        require_list(records, data, "MLVU", FIELDS, _FIX)
        col.take(records)
        _load_file(req, col, records, finder, counts)
        if col.full:
            break
    return col.finish(FIELDS, _FIX)


def _load_file(
    req: LoadRequest, col: Collector, records: Records, finder: FileFinder, counts: Counter[str]
) -> None:
    for row, rec in records.rows:
        if col.full:
            return
        col.columns(rec)
        if col.missing(rec, row, REQUIRED):
            continue
        video = str(rec["video"])
        qtype = str(rec.get("question_type") or records.path.stem)
        key = f"{qtype}/{Path(video).stem}"
        qid = f"{key}/{counts[key]}"
        counts[key] += 1
        item = _item(req, col, row, rec, qid, finder.find(video, Path(video).stem))
        if item is not None:
            col.add(item)


def _item(
    req: LoadRequest, col: Collector, row: int, rec: dict[str, Any], qid: str, path: Path | None
) -> EvalItem | None:
    candidates = rec.get("candidates")
    if not isinstance(candidates, list) or len(candidates) < 2:
        col.skip(row, qid, "no candidates: a generation question (MLVU judges those with an LLM)")
        return None
    options = [str(c).strip() for c in candidates]
    idx, form = resolve_answer(rec["answer"], options, "text")
    if idx is None:
        col.skip(row, qid, f"answer {rec['answer']!r} is none of the candidates")
        return None
    col.answer_form(form, "text", qid)
    return EvalItem(
        task=req.task,
        qid=qid,
        video_id=str(rec["video"]),
        path=str(path) if path else None,
        question=str(rec["question"]).strip(),
        options=options,
        answer=options[idx],
        answer_index=idx,
        categories={"question_type": qid.split("/")[0]},
    )
