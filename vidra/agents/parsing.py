"""Tolerant parsing of model output: JSON inside prose or code fences, trailing text,
single quotes, option letters or option text, times written as seconds or m:ss.

Pure functions; the agents decide what to do when parsing fails (repair, then fallback).
"""

from __future__ import annotations

import ast
import json
import re
import warnings
from collections.abc import Sequence
from typing import Any

__all__ = ["extract_json", "match_option", "named_times", "parse_time", "parse_times"]

_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _candidates(text: str) -> list[str]:
    """Balanced ``{...}`` substrings of ``text``, outermost first, in order of appearance."""
    out = []
    for start in [m.start() for m in re.finditer(r"\{", text)]:
        depth, quote, escape = 0, "", False
        for k in range(start, len(text)):
            ch = text[k]
            if quote:
                if escape:
                    escape = False
                elif ch == "\\":
                    escape = True
                elif ch == quote:
                    quote = ""
            elif ch in "\"'":
                quote = ch
            elif ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
                if depth == 0:
                    out.append(text[start : k + 1])
                    break
    return out


def extract_json(text: str) -> dict[str, Any] | None:
    """The first JSON object found in ``text`` (prose, fences, trailing text tolerated)."""
    for cand in _candidates(text):
        for attempt in (cand, re.sub(r",\s*([}\]])", r"\1", cand)):
            try:
                value = json.loads(attempt)
            except (json.JSONDecodeError, RecursionError):
                try:  # single-quoted, Python-style dicts
                    with warnings.catch_warnings():  # garbage such as "3.0s" warns as it parses
                        warnings.simplefilter("ignore", SyntaxWarning)
                        value = ast.literal_eval(attempt)
                except (ValueError, SyntaxError, MemoryError, RecursionError, TypeError):
                    continue
            if isinstance(value, dict):
                return value
    return None


def match_option(value: Any, options: Sequence[str]) -> int | None:
    """Index of the option ``value`` names: an index, a letter (``B``, ``(b)``, ``option C``),
    the option's text, or text that contains exactly one option. ``None`` if unclear."""
    if value is None or not options:
        return None
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 0 <= value < len(options) else None
    text = str(value).strip()
    lowered = [o.strip().lower() for o in options]
    if text.lower() in lowered:
        return lowered.index(text.lower())
    m = re.fullmatch(r"(?:option\s*)?[\(\[]?([A-Za-z])[\)\]\.:]?", text, flags=re.I)
    if m and _LETTERS.index(m.group(1).upper()) < len(options):
        return _LETTERS.index(m.group(1).upper())
    if text.isdigit() and str(text) not in lowered and 1 <= int(text) <= len(options):
        return None  # a bare number that is not an option's text is ambiguous
    hits = [
        k for k, o in enumerate(lowered) if o and re.search(rf"\b{re.escape(o)}\b", text.lower())
    ]
    return hits[0] if len(hits) == 1 else None


_TIME = re.compile(r"(?:(\d+):)?(\d+):(\d+(?:\.\d+)?)|(\d+(?:\.\d+)?)\s*s?")


def parse_time(value: Any) -> float | None:
    """Seconds from ``12.5``, ``"12.5s"``, ``"1:02.5"`` or ``"1:02:03"``; None if not a time."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value) if value >= 0 else None
    m = _TIME.fullmatch(str(value).strip())
    if m is None:
        return None
    if m.group(4) is not None:
        return float(m.group(4))
    hours = int(m.group(1) or 0)
    return hours * 3600 + int(m.group(2)) * 60 + float(m.group(3))


def parse_times(value: Any) -> list[float]:
    """A list of times from a list (or a single value); unparseable items are dropped."""
    items = value if isinstance(value, list | tuple) else [value]
    out = []
    for item in items:
        t = parse_time(item)
        if t is not None:
            out.append(t)
    return out


_NAMED = re.compile(r"\b(?:\d+:)?\d+:\d+(?:\.\d+)?\b|\b\d+(?:\.\d+)?\s*s\b")


def named_times(text: str, until: float = float("inf")) -> list[float]:
    """The times a text names (``"look again near 0:40"``, ``"at 12.5s"``), in order; only
    those up to ``until`` (a video's duration: a later time is no moment of it)."""
    times = (parse_time(m.group(0)) for m in _NAMED.finditer(text))
    return [t for t in times if t is not None and t <= until]
