"""NExT-QA (multiple choice) and NExT-GQA (the same questions with grounding windows).

Format (doc-doc/NExT-QA, dataset/nextqa/*.csv): ``video,frame_count,width,height,question,
answer,qid,type,a0..a4``; ``answer`` is the right option's index (NExT-GQA writes its text and
names the video column ``video_id``). Videos map through ``map_vid_vidorID.json``
(``{video: "folder/vidorID"}`` -> ``<videos>/folder/vidorID.mp4``). qids are ``<video>_<qid>``,
as NExT-QA's ``eval_mc.py`` keys them. NExT-GQA windows come from ``gsub_<split>.json``
(``{video: {duration, location: {qid: [[s, e], ...]}, fps}}``).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from vidra.errors import AnnotationError
from vidra.evals.choices import AnswerForm, resolve_answer
from vidra.evals.collect import Collector, annotations_of, require_columns
from vidra.evals.files import read_json, read_records
from vidra.evals.items import EvalItem, LoadRequest, LoadResult
from vidra.evals.params import opt_path
from vidra.evals.resolve import FileFinder

__all__ = ["load_nextgqa", "load_nextqa"]

FIELDS = (
    "video",
    "frame_count",
    "width",
    "height",
    "question",
    "answer",
    "qid",
    "type",
    "a0",
    "a1",
    "a2",
    "a3",
    "a4",
)
OPTIONS = ("a0", "a1", "a2", "a3", "a4")
MAP_NAME = "map_vid_vidorID.json"
_FIX = "pass a NExT-QA csv (dataset/nextqa/val.csv or test.csv), or choose the task for this file"


def _video_map(req: LoadRequest, csv_path: Path, col: Collector) -> dict[str, str] | None:
    """``map_vid_vidorID.json``: option ``map=``, else beside the csv, else under ``--videos``."""
    given = opt_path(req.options, "map")
    candidates = [given] if given is not None else [csv_path.parent / MAP_NAME]
    if given is None and req.videos is not None:
        candidates.append(req.videos / MAP_NAME)
    for path in candidates:
        if path is not None and path.is_file():
            data, warnings = read_json(path)
            col.result.warnings.extend(warnings)
            if not isinstance(data, dict):
                raise AnnotationError(
                    path,
                    "not a video map",
                    expected=["{video: folder/id}"],
                    fix="pass NExT-QA's map_vid_vidorID.json as map=PATH",
                )
            return {str(k): str(v) for k, v in data.items()}
    if given is not None:
        raise AnnotationError(given, "no such file", fix="check the map= path")
    return None


def _rows(req: LoadRequest, fmt: str) -> tuple[Any, Collector, str, tuple[FileFinder, Any]]:
    """Read and check the csv; returns records, collector, video column, (finder, video map)."""
    path = annotations_of(req, f"the {fmt} csv (e.g. dataset/nextqa/val.csv)")
    records, _ = read_records(path, "csv")
    video_col = "video_id" if "video_id" in (records.columns or []) else "video"
    required = (video_col, "question", "answer", "qid", *OPTIONS)
    require_columns(records, required, fmt, _FIX)
    col = Collector(req, path, (*FIELDS, video_col))
    col.take(records)
    col.columns(records.columns or [])
    return records, col, video_col, (FileFinder(req.videos), _video_map(req, path, col))


def _item(
    req: LoadRequest,
    col: Collector,
    row: int,
    rec: dict[str, str],
    video_col: str,
    found: tuple[FileFinder, dict[str, str] | None],
    expect: AnswerForm,
) -> EvalItem | None:
    finder, mapping = found
    video = rec[video_col].strip()
    qid = f"{video}_{rec['qid'].strip()}"
    options = [rec[o].strip() for o in OPTIONS]
    idx, form = resolve_answer(rec["answer"].strip(), options, expect)
    if idx is None:
        col.skip(row, qid, f"answer {rec['answer']!r} names none of a0..a4")
        return None
    col.answer_form(form, expect, qid)
    qtype = (rec.get("type") or "").strip()
    if qtype == "TP":  # eval_mc.py counts "previous" questions with "next" ones
        col.note("type TP counted as TN (as NExT-QA's eval_mc.py does)", qid)
        qtype = "TN"
    names = [f"{mapping[video]}.mp4"] if mapping and video in mapping else []
    path = finder.find(*names, f"{video}.mp4", video)
    return EvalItem(
        task=req.task,
        qid=qid,
        video_id=video,
        path=str(path) if path else None,
        question=rec["question"].strip(),
        options=options,
        answer=options[idx],
        answer_index=idx,
        categories={"type": qtype, "group": qtype[:1]} if qtype else {},
    )


def load_nextqa(req: LoadRequest) -> LoadResult:
    """Load a NExT-QA csv (multiple choice; categories ``type`` and ``group`` C/T/D)."""
    records, col, video_col, found = _rows(req, "NExT-QA")
    for row, rec in records.rows:
        if col.full:
            break
        if col.missing(rec, row, (video_col, "question", "answer", "qid", *OPTIONS)):
            continue
        item = _item(req, col, row, rec, video_col, found, "index")
        if item is not None:
            col.add(item)
    return col.finish(FIELDS, _FIX)


def _windows(req: LoadRequest, csv_path: Path, col: Collector) -> dict[str, Any]:
    """NExT-GQA's grounding json: ``--answers``, else ``gsub_<csv stem>.json`` beside the csv."""
    path = req.answers or csv_path.parent / f"gsub_{csv_path.stem}.json"
    if not path.is_file():
        if req.answers is not None:
            raise AnnotationError(path, "no such file", fix="check the --answers path")
        col.result.warnings.append(f"no grounding file ({path.name}): items have no span")
        return {}
    data, warnings = read_json(path)
    col.result.warnings.extend(warnings)
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise AnnotationError(
            path,
            "not a NExT-GQA grounding file",
            expected=["{video: {duration, location: {qid: [[s, e]]}}}"],
            fix="pass gsub_val.json or gsub_test.json as --answers",
        )
    return data


def _spans(windows: dict[str, Any], video: str, qid: str) -> tuple[tuple[float, float], ...]:
    loc = windows.get(video, {}).get("location", {}).get(qid) or []
    try:
        return tuple((float(a), float(b)) for a, b in loc)
    except (TypeError, ValueError):
        return ()


def load_nextgqa(req: LoadRequest) -> LoadResult:
    """Load NExT-GQA: NExT-QA-style csv (answer as text) plus its grounding windows."""
    records, col, video_col, found = _rows(req, "NExT-GQA")
    windows = _windows(req, records.path, col)
    for row, rec in records.rows:
        if col.full:
            break
        if col.missing(rec, row, (video_col, "question", "answer", "qid", *OPTIONS)):
            continue
        item = _item(req, col, row, rec, video_col, found, "text")
        if item is None:
            continue
        spans = _spans(windows, item.video_id, rec["qid"].strip())
        if windows and not spans:
            col.note("questions without a grounding window", item.qid)
        col.add(replace(item, span=spans[0] if spans else None, spans=spans))
    return col.finish(FIELDS, _FIX)
