"""The promotion gate's rule (`decide`) on hand-built gate reports: better beyond noise
promotes; a tie promotes only with ``promote_ties`` and a lower bound within the tolerance;
worse, or too few training samples, never does."""

from __future__ import annotations

from typing import Any

import pytest

from vidra.config import Settings
from vidra.pipelines.retrain import decide


def _report(right: set[int], n: int = 100) -> dict[str, Any]:
    return {"per_question": [{"qid": f"q{i}", "correct": float(i in right)} for i in range(n)]}


CHAMPION = _report(set(range(50)))  # 50 of 100


def _decide(cand: dict[str, Any], samples: int = 100, **train: Any) -> tuple[bool, str]:
    s = Settings()
    s.train = s.train.model_copy(update={"min_samples": 16, **train})
    promoted, line, stats = decide(s, samples, cand, CHAMPION)
    assert stats["n"] == 100 and stats["champion"] == pytest.approx(0.5)
    return promoted, line


def test_better_beyond_noise_is_promoted_unless_trained_on_too_few_samples() -> None:
    better = _report(set(range(70)))  # +20 points, every change one way
    promoted, line = _decide(better)
    assert promoted and "promoted: better beyond noise" in line
    promoted, line = _decide(better, samples=15)
    assert not promoted and "15 samples < min_samples" in line


def test_a_tie_is_promoted_only_when_asked_and_within_the_tolerance() -> None:
    # 8 answers changed, 4 each way: the difference is 0, its interval about +-4 points
    tie = _report((set(range(50)) - {0, 1, 2, 3}) | {50, 51, 52, 53})
    promoted, line = _decide(tie)
    assert not promoted and "a tie within noise (promote_ties is off)" in line
    promoted, line = _decide(tie, promote_ties=True, gate_tolerance=0.02)
    assert not promoted and "lower bound < -0.02" in line
    promoted, line = _decide(tie, promote_ties=True, gate_tolerance=0.10)
    assert promoted and "a tie within noise (promote_ties)" in line


def test_worse_is_never_promoted() -> None:
    worse = _report(set(range(35)))  # -15 points
    for ties in (False, True):
        promoted, line = _decide(worse, promote_ties=ties, gate_tolerance=1.0)
        assert not promoted and line.endswith("not promoted: worse")
