"""Scoring as pure functions: accuracy with bootstrap intervals, per-category breakdowns,
paired comparisons of two runs, open-ended exact match, choice parsing, and temporal
grounding (mIoU, R@k; from `vidra.evals.spans`).

Everything here is hand-checkable and deterministic by seed; nothing reads files or models.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from vidra.errors import InvalidInput
from vidra.evals.choices import resolve_answer
from vidra.evals.spans import (
    grounded_accuracy,
    grounding_scores,
    iop,
    iou,
    max_iou,
    parse_span_text,
)

__all__ = [
    "PairedDiff",
    "accuracy",
    "bootstrap_ci",
    "by_category",
    "grounded_accuracy",
    "grounding_scores",
    "iop",
    "iou",
    "max_iou",
    "normalise_open",
    "normalised_match",
    "paired_bootstrap",
    "paired_from_maps",
    "parse_choice",
    "parse_span_text",
]

_CHUNK = 1 << 21  # resampled values held at once (bootstrap memory bound)


def _array(values: Iterable[float]) -> np.ndarray:
    return np.asarray([float(v) for v in values], dtype=np.float64)


def accuracy(values: Iterable[float]) -> float:
    """Mean of per-question scores (1.0 right, 0.0 wrong); ``nan`` for none."""
    arr = _array(values)
    return float(arr.mean()) if arr.size else math.nan


def _boot_means(arr: np.ndarray, n_boot: int, seed: int) -> np.ndarray:
    """``[n_boot]`` means of resamples (with replacement) of ``arr``, in bounded chunks."""
    rng = np.random.default_rng(seed)
    n = arr.size
    rows = max(1, _CHUNK // n)
    out = np.empty(n_boot)
    for lo in range(0, n_boot, rows):
        hi = min(n_boot, lo + rows)
        out[lo:hi] = arr[rng.integers(0, n, size=(hi - lo, n))].mean(axis=1)
    return out


def bootstrap_ci(
    values: Iterable[float], n_boot: int = 2000, seed: int = 0, alpha: float = 0.05
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean.

    Resamples the values ``n_boot`` times with replacement (numpy ``default_rng(seed)``)
    and returns the ``alpha/2`` and ``1 - alpha/2`` quantiles (numpy's linear rule) of the
    resampled means. No values -> ``(nan, nan)``; all values equal -> ``(v, v)``.

    Raises:
        InvalidInput: ``n_boot < 1`` or ``alpha`` outside ``(0, 1)``.
    """
    if n_boot < 1 or not 0 < alpha < 1:
        raise InvalidInput(f"n_boot={n_boot}, alpha={alpha}; fix: n_boot >= 1 and 0 < alpha < 1")
    arr = _array(values)
    if arr.size == 0:
        return (math.nan, math.nan)
    if np.all(arr == arr[0]):
        return (float(arr[0]), float(arr[0]))
    means = _boot_means(arr, n_boot, seed)
    lo, hi = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    return (float(lo), float(hi))


def by_category(
    rows: Iterable[Mapping[str, Any]],
    key: str,
    score: str = "correct",
    sep: str | None = "|",
    n_boot: int = 2000,
    seed: int = 0,
) -> dict[str, dict[str, Any]]:
    """Accuracy per value of category ``key``: ``{name: {n, accuracy, ci95}}``, sorted by name.

    Each row is a mapping with a ``score`` field and the category either at
    ``row["categories"][key]`` (as `EvalItem` carries them) or at ``row[key]``. Rows without
    the category are left out. With ``sep``, a value like ``"a|b"`` counts the row once
    under each label (LVBench's multi-label question types).
    """
    groups: dict[str, list[float]] = {}
    for row in rows:
        cats = row.get("categories")
        value = cats.get(key) if isinstance(cats, Mapping) else None
        value = row.get(key) if value is None else value
        if value in (None, ""):
            continue
        labels = str(value).split(sep) if sep else [str(value)]
        if row.get(score) is None:
            raise InvalidInput(f"a row has no {score!r} field; fix: add it, or pass score=NAME")
        for label in dict.fromkeys(label.strip() for label in labels if label.strip()):
            groups.setdefault(label, []).append(float(row[score]))
    return {
        name: {
            "n": len(v),
            "accuracy": accuracy(v),
            "ci95": bootstrap_ci(v, n_boot=n_boot, seed=seed),
        }
        for name, v in sorted(groups.items())
    }


@dataclass(frozen=True)
class PairedDiff:
    """Run A against run B on the same questions: ``diff = mean_a - mean_b``."""

    n: int
    mean_a: float
    mean_b: float
    diff: float
    ci95: tuple[float, float]
    p_value: float


def paired_bootstrap(
    a: Sequence[float], b: Sequence[float], n_boot: int = 10000, seed: int = 0, alpha: float = 0.05
) -> PairedDiff:
    """Paired bootstrap of the mean difference of per-question scores ``a[i] - b[i]``.

    Questions are resampled together (the pairing is kept). ``ci95`` is the percentile
    interval of the resampled mean differences. ``p_value`` is two-sided, read off the same
    bootstrap distribution ``d*`` with a +1 correction:
    ``min(1, 2 * min((#{d* <= 0} + 1) / (B + 1), (#{d* >= 0} + 1) / (B + 1)))``; identical
    runs give 1.0, and the smallest possible value is ``2 / (B + 1)``.

    Raises:
        InvalidInput: ``a`` and ``b`` differ in length.
    """
    xa, xb = _array(a), _array(b)
    if xa.size != xb.size:
        raise InvalidInput(
            f"paired runs differ in length ({xa.size} vs {xb.size}); fix: score both runs on "
            "the same questions, or use paired_from_maps to keep the shared ones"
        )
    if xa.size == 0:
        return PairedDiff(0, math.nan, math.nan, math.nan, (math.nan, math.nan), math.nan)
    d = xa - xb
    diff = float(d.mean())
    if np.all(d == d[0]):
        return PairedDiff(
            xa.size,
            float(xa.mean()),
            float(xb.mean()),
            diff,
            (diff, diff),
            1.0 if d[0] == 0 else 2 / (n_boot + 1),
        )
    boot = _boot_means(d, n_boot, seed)
    lo, hi = np.quantile(boot, [alpha / 2, 1 - alpha / 2])
    below = (np.count_nonzero(boot <= 0) + 1) / (n_boot + 1)
    above = (np.count_nonzero(boot >= 0) + 1) / (n_boot + 1)
    p = float(min(1.0, 2 * min(below, above)))
    return PairedDiff(xa.size, float(xa.mean()), float(xb.mean()), diff, (float(lo), float(hi)), p)


def paired_from_maps(
    a: Mapping[str, float], b: Mapping[str, float], n_boot: int = 10000, seed: int = 0
) -> PairedDiff:
    """`paired_bootstrap` on the qids both runs scored (sorted by qid); others are ignored."""
    shared = sorted(set(a) & set(b))
    return paired_bootstrap([a[q] for q in shared], [b[q] for q in shared], n_boot, seed)


_NUMBERS = {
    w: str(k)
    for k, w in enumerate(
        [
            "zero",
            "one",
            "two",
            "three",
            "four",
            "five",
            "six",
            "seven",
            "eight",
            "nine",
            "ten",
            "eleven",
            "twelve",
            "thirteen",
            "fourteen",
            "fifteen",
            "sixteen",
            "seventeen",
            "eighteen",
            "nineteen",
            "twenty",
        ]
    )
}
_NUMBERS.update({"thirty": "30", "forty": "40", "fifty": "50", "hundred": "100", "none": "0"})
_YES = {"yes", "yeah", "yep", "yup", "true", "correct", "right"}
_NO = {"no", "nope", "nah", "false", "incorrect", "wrong"}


def normalise_open(text: str) -> str:
    """Lower-case ASCII, punctuation and articles dropped, number words as digits, spaces
    collapsed: ``"The Two dogs."`` -> ``"2 dogs"``."""
    t = unicodedata.normalize("NFKD", str(text)).encode("ascii", "ignore").decode().lower()
    t = re.sub(r"(?<=\d),(?=\d{3}\b)", "", t)  # 1,000 -> 1000
    t = re.sub(r"[^a-z0-9. ]+", " ", t)
    t = re.sub(r"\.(?!\d)", " ", t)  # keep decimal points only
    words = [_NUMBERS.get(w, w) for w in t.split() if w not in ("a", "an", "the")]
    return " ".join(words)


def _yes_no(text: str) -> str | None:
    words = text.split()
    if not words:
        return None
    if words[0] in _YES:
        return "yes"
    return "no" if words[0] in _NO else None


def normalised_match(pred: str | None, truth: str) -> float:
    """Open-ended exact match after `normalise_open` (reported as ``exact_match``).

    When the truth is yes/no, a prediction counts by its leading yes/no word
    (``"Yes, indoors."`` matches ``"yes"``; ``"yeah"`` and ``"true"`` count as yes).
    """
    if pred is None:
        return 0.0
    p, t = normalise_open(pred), normalise_open(truth)
    if p == t:
        return 1.0
    t_yn = _yes_no(t) if len(t.split()) == 1 else None
    return float(t_yn is not None and _yes_no(p) == t_yn)


_LETTER_ANSWER = re.compile(
    r"(?:^|answer\s*(?:is)?\s*[:\-]?\s*|option\s*)\(?([A-J])\)?(?=$|[\s.:),])", re.I
)


def parse_choice(text: str | None, options: Sequence[str]) -> int | None:
    """The option a free-text reply picks: a letter (``"B"``, ``"(B)"``, ``"The answer is
    B."``), an index, or an option's text; ``None`` when it names none."""
    if not text or not options:
        return None
    stripped = text.strip()
    for form in ("letter", "text"):  # never a bare index: "2" is an option's text or nothing
        idx, found = resolve_answer(stripped, options, form)
        if idx is not None and found == form:
            return idx
    m = _LETTER_ANSWER.search(stripped)
    if m is not None and "ABCDEFGHIJ".index(m.group(1).upper()) < len(options):
        return "ABCDEFGHIJ".index(m.group(1).upper())
    hits = [k for k, o in enumerate(options) if normalise_open(o) in normalise_open(stripped)]
    return hits[0] if len(hits) == 1 else None
