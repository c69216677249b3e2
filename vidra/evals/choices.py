"""Multiple-choice plumbing shared by the benchmarks: option letters, "A. text" prefixes,
options written inside the question text, and answers given as index, letter or text.

Pure string work; it does not read files or score predictions.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from typing import Any, Literal

__all__ = [
    "LETTERS",
    "AnswerForm",
    "inline_options",
    "letter_of",
    "resolve_answer",
    "split_prefix",
    "strip_prefixes",
]

LETTERS = "ABCDEFGHIJ"
AnswerForm = Literal["index", "letter", "text"]

_PREFIX = re.compile(r"^\s*\(?([A-J])\s*[.):]\s*(.*)$", re.S)
_LETTER = re.compile(r"^\s*\(?([A-Ja-j])\s*[.):]?\s*$")
_INLINE = re.compile(r"\(([A-J])\)\s*")


def letter_of(index: int) -> str:
    """``0 -> "A"``."""
    return LETTERS[index]


def split_prefix(text: str) -> tuple[str | None, str]:
    """``"A. Apples."`` -> ``("A", "Apples.")``; ``"(B) x"`` -> ``("B", "x")``; else no letter."""
    m = _PREFIX.match(text)
    if m is None:
        return None, text.strip()
    return m.group(1), m.group(2).strip()


def strip_prefixes(options: Sequence[str]) -> tuple[list[str], bool]:
    """Drop ``"A. "``-style prefixes when every option has them, in order A, B, C, ...

    Returns:
        The option texts and whether prefixes were stripped. Options without a full,
        ordered set of prefixes are returned unchanged (``"A man walks"`` stays whole).
    """
    parts = [split_prefix(o) for o in options]
    if parts and all(letter == LETTERS[k] for k, (letter, _) in enumerate(parts)):
        return [text for _, text in parts], True
    return [str(o).strip() for o in options], False


def inline_options(question: str) -> tuple[str, list[str]]:
    """Split ``"Which? (A) red (B) blue"`` (LVBench's layout, often one option per line)
    into the question stem and the option texts; no options -> ``(question, [])``."""
    marks = list(_INLINE.finditer(question))
    expected = 0
    kept: list[re.Match[str]] = []
    for m in marks:
        if m.group(1) == LETTERS[expected]:
            kept.append(m)
            expected += 1
            if expected == len(LETTERS):
                break
    if len(kept) < 2:
        return question.strip(), []
    stem = question[: kept[0].start()].strip()
    bounds = [m.end() for m in kept]
    ends = [m.start() for m in kept[1:]] + [len(question)]
    return stem, [question[a:b].strip() for a, b in zip(bounds, ends, strict=True)]


def _norm(text: str) -> str:
    t = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(re.sub(r"[^\w\s]", " ", t).split())


def _as_index(value: Any, n: int) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float) and float(value).is_integer():
        k = int(value)
        return k if 0 <= k < n else None
    if isinstance(value, str) and value.strip().isdigit():
        k = int(value.strip())
        return k if 0 <= k < n else None
    return None


def _as_letter(value: Any, n: int) -> int | None:
    if not isinstance(value, str):
        return None
    m = _LETTER.match(value) or _PREFIX.match(value)
    if m is None:
        return None
    k = LETTERS.index(m.group(1).upper())
    return k if k < n else None


def _as_text(value: Any, options: Sequence[str]) -> int | None:
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        return None
    want = _norm(str(value))
    hits = [k for k, o in enumerate(options) if _norm(o) == want]
    return hits[0] if len(hits) == 1 else None


def resolve_answer(
    value: Any, options: Sequence[str], expect: AnswerForm
) -> tuple[int | None, AnswerForm | None]:
    """Find which option ``value`` names, trying the ``expect``-ed form first.

    ``value`` may be an index (``2``, ``"2"``), a letter (``"C"``, ``"(C)"``, ``"C. text"``)
    or an option's text (compared case- and punctuation-insensitively).

    Returns:
        ``(index, form it was found in)``, or ``(None, None)`` when nothing matches.
    """
    n = len(options)
    tries: dict[AnswerForm, Any] = {
        "index": lambda: _as_index(value, n),
        "letter": lambda: _as_letter(value, n),
        "text": lambda: _as_text(value, options),
    }
    order: list[AnswerForm] = [expect, *(f for f in tries if f != expect)]
    for form in order:
        k = tries[form]()
        if k is not None:
            return k, form
    return None, None
