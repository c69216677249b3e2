"""`Collector`: turns a loader's rows into a `LoadResult`, reporting instead of crashing.

It drops duplicate qids (first wins), lists missing videos, warns once about unknown
columns, aggregates repeated irregularities into one warning each, records malformed
rows, stops at ``limit``, and fails the load when no row fits the named format.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from vidra.errors import AnnotationError, ConfigError
from vidra.evals.files import Records
from vidra.evals.items import EvalItem, LoadRequest, LoadResult
from vidra.evals.resolve import SUBTITLE_EXTS, FileFinder

__all__ = ["Collector"]


class Collector:
    """Accumulate the items of one load.

    Args:
        request: what was asked for (limit, subtitles folder, task name).
        source: the annotation file (named in warnings and errors).
        known: every field the format defines; others are warned about once.
    """

    def __init__(self, request: LoadRequest, source: Path | None, known: Iterable[str]) -> None:
        self.request = request
        self.source = source
        self.known = set(known)
        self.result = LoadResult()
        self._seen: set[str] = set()
        self._notes: dict[str, list[str]] = {}
        self._unknown: set[str] = set()
        self._subs = FileFinder(request.subtitles, SUBTITLE_EXTS)
        self.rows_seen = 0

    @property
    def full(self) -> bool:
        """``limit`` items collected: loaders may stop reading."""
        limit = self.request.limit
        return limit is not None and len(self.result.items) >= limit

    def take(self, records: Records) -> None:
        """Carry over what the reader tolerated and the rows it could not parse."""
        self.result.warnings.extend(records.warnings)
        for row, reason in records.bad:
            self.skip(row, None, reason)

    def columns(self, keys: Iterable[str]) -> None:
        """Warn (once per new name) about fields the format does not define."""
        self._unknown.update(set(keys) - self.known)

    def note(self, kind: str, example: str) -> None:
        """Record an irregularity; repeated kinds become one warning with a count."""
        self._notes.setdefault(kind, []).append(example)

    def answer_form(self, found: str | None, expected: str, qid: str) -> None:
        """Note an answer written in another form than the format documents."""
        if found is not None and found != expected:
            names = {"index": "an index", "letter": "a letter", "text": "the option text"}
            self.note(f"answers given as {found} where {names[expected]} was expected", qid)

    def skip(self, row: int, qid: str | None, reason: str) -> None:
        """Leave a malformed row out, with why."""
        self.result.skipped.append({"row": row, "qid": qid, "reason": reason})

    def missing(self, rec: Mapping[str, Any], row: int, fields: Iterable[str]) -> bool:
        """Skip ``rec`` (and return ``True``) when it lacks one of ``fields``."""
        lacking = [f for f in fields if rec.get(f) in (None, "")]
        if lacking:
            self.skip(row, _qid_of(rec), f"missing {', '.join(lacking)}")
        return bool(lacking)

    def subtitles_for(self, *names: str) -> str | None:
        """The subtitle file for a video, found by relative path or stem under ``--subtitles``."""
        hit = self._subs.find(*[n for n in names if n])
        return str(hit) if hit is not None else None

    def add(self, item: EvalItem) -> bool:
        """Keep ``item`` unless its qid was seen (warned) or ``limit`` is reached."""
        self.rows_seen += 1
        if item.qid in self._seen:
            self.note("duplicate question ids dropped (first kept)", item.qid)
            return False
        if self.full:
            return False
        self._seen.add(item.qid)
        if item.path is None:
            self.result.missing_videos.append(item.qid)
        if item.subtitles is None and self.request.subtitles is not None:
            item = replace(item, subtitles=self.subtitles_for(item.video_id))
        self.result.items.append(item)
        return True

    def finish(self, expected: Iterable[str], fix: str) -> LoadResult:
        """The result; raises when rows were read but none fitted the format.

        Raises:
            AnnotationError: every row was malformed (names the first one).
        """
        res = self.result
        if not res.items and not self.rows_seen and res.skipped and self.source is not None:
            first = min(res.skipped, key=lambda s: s["row"] if isinstance(s["row"], int) else 0)
            raise AnnotationError(
                self.source, first["reason"], row=first["row"], expected=list(expected), fix=fix
            )
        if self._unknown:
            name = self.source.name if self.source is not None else self.request.task
            unknown = ", ".join(sorted(self._unknown))
            res.warnings.append(f"{name}: unknown columns ignored: {unknown}")
        for kind, examples in self._notes.items():
            shown = ", ".join(examples[:3]) + (", ..." if len(examples) > 3 else "")
            count = f"{len(examples)} times: " if len(examples) > 1 else ""
            res.warnings.append(f"{kind} ({count}{shown})")
        if self.request.videos is None and res.items and res.items[0].path is None:
            res.warnings.append("no --videos folder given: every video is reported missing")
        return res


def _qid_of(rec: Mapping[str, Any]) -> str | None:
    for key in ("qid", "question_id", "q_uid", "uid", "id"):
        if rec.get(key) not in (None, ""):
            return str(rec[key])
    return None


def require_columns(records: Records, required: Iterable[str], fmt: str, fix: str) -> None:
    """Fail at once when a CSV or Parquet header lacks columns the format needs.

    Raises:
        AnnotationError: names the file, the header row and the missing columns.
    """
    need = list(required)
    have = set(records.columns or [])
    lacking = [c for c in need if c not in have]
    if lacking:
        raise AnnotationError(
            records.path,
            f"not in the {fmt} format: the header lacks {', '.join(lacking)}",
            row="header" if records.columns is not None else None,
            expected=need,
            fix=fix,
        )


def require_list(records: Records, data: Any, fmt: str, expected: Iterable[str], fix: str) -> None:
    """Fail at once when a JSON document is not a list of objects.

    Raises:
        AnnotationError: names the file, what it holds instead and the expected fields.
    """
    if data is not None and not isinstance(data, list):
        raise AnnotationError(
            records.path,
            f"not in the {fmt} format: the JSON top level is a {type(data).__name__}, "
            "not a list of objects",
            expected=list(expected),
            fix=fix,
        )
    if not records.rows and records.bad:
        row, reason = records.bad[0]
        raise AnnotationError(
            records.path,
            f"not in the {fmt} format: {reason}",
            row=row,
            expected=list(expected),
            fix=fix,
        )


def annotations_of(request: LoadRequest, hint: str) -> Path:
    """The annotation file of a request that needs one.

    Raises:
        ConfigError: none was given (``hint`` says which file to pass).
    """
    if request.annotations is None:
        raise ConfigError(f"task {request.task!r} needs --annotations; fix: pass {hint}")
    return request.annotations
