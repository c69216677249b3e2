"""A curriculum from the record: prefer questions whose pass rate is neither 0 nor 1
(ThinkLite, Curr-ReFT style), where a GRPO group has variance to learn from.

Pure functions over recorded pass rates; picking and asking questions is the caller's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

__all__ = ["informativeness", "order_by_curriculum"]

T = TypeVar("T")


def informativeness(rate: float | None, tries: int = 0, min_tries: int = 2) -> float:
    """``p (1 - p)`` of the pass rate (0.25 for a question not yet tried enough): highest
    for questions answered right about half of the time, 0 for always or never."""
    if rate is None or tries < min_tries:
        return 0.25
    return rate * (1.0 - rate)


def order_by_curriculum(
    items: Sequence[T],
    key: Callable[[T], str],
    rates: dict[str, tuple[float, int]],
    min_tries: int = 2,
) -> list[T]:
    """``items`` most informative first (ties: in their given order); items whose pass
    rate is 0 or 1 after ``min_tries`` come last."""
    scored = []
    for k, x in enumerate(items):
        rate, tries = rates.get(key(x), (None, 0))
        scored.append((informativeness(rate, tries, min_tries), k, x))
    return [x for _, _, x in sorted(scored, key=lambda s: (-s[0], s[1]))]
