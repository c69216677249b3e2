"""Charades-STA: temporal grounding of a sentence in a Charades video.

Format (jiyanggao/TALL, ``charades_sta_{train,test}.txt``): lines ``vid start end##sentence``
(seconds). Also read: the JSON layout some toolkits write, ``{vid: {duration, timestamps:
[[s, e], ...], sentences: [...]}}``. The answer is the span; qids are ``<vid>_<k>``, ``k``
counting that video's queries in file order. Identical lines are duplicates (dropped, warned).
Videos ``<vid>.mp4``.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from vidra.errors import AnnotationError
from vidra.evals.collect import Collector, annotations_of
from vidra.evals.files import read_json, read_text
from vidra.evals.items import EvalItem, LoadRequest, LoadResult
from vidra.evals.resolve import FileFinder

__all__ = ["load_charades_sta"]

_LINE = re.compile(r"^\s*(\S+)\s+(\d+(?:\.\d+)?)\s+(\d+(?:\.\d+)?)\s*##\s*(.*?)\s*$")
FIELDS = ("vid start end##sentence",)
_FIX = "pass charades_sta_test.txt (lines 'vid start end##sentence')"

Query = tuple[int, str, float, float, str]  # row, vid, start, end, sentence


def _text_queries(path: Path, col: Collector) -> Iterator[Query]:
    for row, line in enumerate(read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        m = _LINE.match(line)
        if m is None:
            col.skip(row, None, "not 'vid start end##sentence'")
            continue
        yield row, m.group(1), float(m.group(2)), float(m.group(3)), m.group(4)


def _json_queries(path: Path, col: Collector) -> Iterator[Query]:
    data, warnings = read_json(path)
    col.result.warnings.extend(warnings)
    if not isinstance(data, dict):
        raise AnnotationError(
            path,
            "not a Charades-STA json (top level is not an object)",
            expected=["{vid: {timestamps, sentences}}"],
            fix=_FIX,
        )
    for row, (vid, rec) in enumerate(data.items(), start=1):
        stamps = rec.get("timestamps") if isinstance(rec, dict) else None
        sentences = rec.get("sentences") if isinstance(rec, dict) else None
        if not isinstance(stamps, list) or not isinstance(sentences, list):
            col.skip(row, str(vid), "missing timestamps or sentences")
            continue
        for span, sentence in zip(stamps, sentences, strict=False):
            try:
                yield row, str(vid), float(span[0]), float(span[1]), str(sentence).strip()
            except (TypeError, ValueError, IndexError):
                col.skip(row, str(vid), f"bad timestamp {span!r}")


def load_charades_sta(req: LoadRequest) -> LoadResult:
    """Load Charades-STA (grounding: ``span`` is the truth, ``answer`` is ``None``)."""
    path = annotations_of(req, "charades_sta_test.txt")
    col = Collector(req, path, ())
    queries = _json_queries if path.suffix.lower() == ".json" else _text_queries
    finder = FileFinder(req.videos)
    counts: Counter[str] = Counter()
    seen: set[tuple[str, float, float, str]] = set()
    for row, vid, start, end, sentence in queries(path, col):
        if col.full:
            break
        qid = f"{vid}_{counts[vid]}"
        if end < start or not sentence:
            col.skip(row, qid, "end before start" if end < start else "empty sentence")
            continue
        if (vid, start, end, sentence) in seen:
            col.note("duplicate queries dropped (first kept)", f"row {row}")
            continue
        seen.add((vid, start, end, sentence))
        counts[vid] += 1
        video = finder.find(f"{vid}.mp4", vid)
        col.add(_item(req, qid, vid, video, sentence, (start, end)))
    return col.finish(FIELDS, _FIX)


def _item(
    req: LoadRequest,
    qid: str,
    vid: str,
    video: Path | None,
    sentence: str,
    span: tuple[float, float],
) -> EvalItem:
    return EvalItem(
        task=req.task,
        qid=qid,
        video_id=vid,
        path=str(video) if video else None,
        question=sentence,
        options=None,
        answer=None,
        answer_index=None,
        span=span,
        style="grounding",
    )
