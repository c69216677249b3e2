"""Lenient readers for annotation files: JSON (trailing commas tolerated), JSON Lines, CSV,
Parquet, each turned into numbered records.

They report what they tolerated; they do not know any benchmark's fields.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vidra.errors import AnnotationError

__all__ = ["Records", "read_json", "read_records", "read_text"]


@dataclass
class Records:
    """Rows of one file: ``(row number, record)`` pairs, 1-based (CSV: data rows, header is 0;
    JSON Lines: lines; JSON: list items).

    ``bad`` holds rows that could not be parsed at all: ``(row, reason)``.
    """

    path: Path
    rows: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    bad: list[tuple[int, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    columns: list[str] | None = None  # CSV and Parquet headers


def read_text(path: Path) -> str:
    """The file as text (BOM dropped).

    Raises:
        AnnotationError: missing or unreadable.
    """
    try:
        return path.read_bytes().decode("utf-8-sig", errors="replace")
    except FileNotFoundError as exc:
        raise AnnotationError(path, "no such file", fix="check the --annotations path") from exc
    except OSError as exc:
        raise AnnotationError(path, f"cannot be read ({exc.strerror})", fix="check it") from exc


def _drop_trailing_commas(text: str) -> tuple[str, int]:
    """Remove commas that directly precede ``]`` or ``}`` outside strings; count them."""
    out: list[str] = []
    in_str = escaped = False
    pending: int | None = None  # index in ``out`` of a comma that may be trailing
    dropped = 0
    for ch in text:
        if in_str:
            out.append(ch)
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_str = False
            continue
        if ch in "]}" and pending is not None:
            out[pending] = ""
            dropped += 1
        if not ch.isspace():
            pending = None
        if ch == ",":
            pending = len(out)
        in_str = ch == '"'
        out.append(ch)
    return "".join(out), dropped


def read_json(path: Path) -> tuple[Any, list[str]]:
    """Parse a JSON file, tolerating trailing commas (the Video-MME template has them).

    Returns:
        The data and the warnings (one when trailing commas were dropped).

    Raises:
        AnnotationError: not JSON even without trailing commas (names the line).
    """
    text = read_text(path)
    try:
        return json.loads(text), []
    except json.JSONDecodeError:
        fixed, dropped = _drop_trailing_commas(text)
    try:
        data = json.loads(fixed)
    except json.JSONDecodeError as exc:
        raise AnnotationError(
            path, f"not valid JSON ({exc.msg})", row=None, fix=f"fix line {exc.lineno}"
        ) from exc
    return data, [f"{path.name}: {dropped} trailing comma(s) tolerated"] if dropped else []


def _records_from_list(path: Path, data: list[Any], out: Records) -> Records:
    for k, rec in enumerate(data, start=1):
        if isinstance(rec, dict):
            out.rows.append((k, rec))
        else:
            out.bad.append((k, f"not an object ({type(rec).__name__})"))
    return out


def _read_jsonl(path: Path, text: str) -> Records:
    out = Records(path)
    for k, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            out.bad.append((k, f"not a JSON line ({exc.msg})"))
            continue
        if isinstance(rec, dict):
            out.rows.append((k, rec))
        else:
            out.bad.append((k, f"not an object ({type(rec).__name__})"))
    return out


def _read_csv(path: Path, text: str) -> Records:
    reader = csv.DictReader(io.StringIO(text), restkey="\0extra")
    k = 0
    out = Records(path, columns=[])
    try:
        out.columns = [c.strip() for c in reader.fieldnames or []]
        for k, row in enumerate(reader, start=1):
            if "\0extra" in row or any(v is None for v in row.values()):
                out.bad.append((k, "wrong number of fields for the header"))
                continue
            out.rows.append((k, {str(key).strip(): v for key, v in row.items()}))
    except csv.Error as exc:  # binary or broken quoting: keep what was read, report the row
        out.bad.append((k + 1, f"not CSV ({exc})"))
    return out


def _read_parquet(path: Path) -> Records:
    try:
        import pyarrow.parquet as pq

        table = pq.read_table(path)
    except ImportError as exc:  # pragma: no cover - pyarrow is a dependency here
        raise AnnotationError(
            path, "reading parquet needs pyarrow", fix="pip install pyarrow"
        ) from exc
    except Exception as exc:  # pyarrow raises ArrowInvalid, OSError, ...
        raise AnnotationError(
            path, f"not a readable parquet file ({exc})", fix="re-download it, or pass JSON rows"
        ) from exc
    out = Records(path, columns=list(table.column_names))
    return _records_from_list(path, table.to_pylist(), out)


def read_records(path: Path, kind: str | None = None) -> tuple[Records, Any]:
    """Read ``path`` into numbered records by its suffix (or ``kind``: json, jsonl, csv, parquet).

    Returns:
        The records (for JSON: the items of a top-level list) and, for JSON, the parsed
        document itself (so a loader can accept other top-level shapes); else ``None``.

    Raises:
        AnnotationError: missing file, unparseable JSON or parquet.
    """
    kind = kind or {".jsonl": "jsonl", ".csv": "csv", ".parquet": "parquet"}.get(
        path.suffix.lower(), "json"
    )
    if kind == "parquet":
        return _read_parquet(path), None
    if kind == "csv":
        return _read_csv(path, read_text(path)), None
    text = read_text(path)
    if kind == "jsonl" and not text.lstrip().startswith("["):
        return _read_jsonl(path, text), None
    data, warnings = read_json(path)
    out = Records(path, warnings=warnings)
    if isinstance(data, list):
        _records_from_list(path, data, out)
    return out, data
