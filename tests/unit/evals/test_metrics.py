"""Scoring with hand-computed numbers: accuracy, bootstrap bounds, paired tests, exact match,
span parsing, IoU / IoP, mIoU and R@k."""

from __future__ import annotations

import math

import pytest

from vidra.errors import InvalidInput
from vidra.evals.metrics import (
    accuracy,
    bootstrap_ci,
    by_category,
    grounded_accuracy,
    grounding_scores,
    iop,
    iou,
    normalise_open,
    normalised_match,
    paired_bootstrap,
    paired_from_maps,
    parse_choice,
    parse_span_text,
)


def test_accuracy() -> None:
    assert accuracy([1, 0, 1, 1]) == 0.75
    assert accuracy([0.5, 1.0]) == 0.75
    assert math.isnan(accuracy([]))


def test_bootstrap_degenerate_cases() -> None:
    assert all(math.isnan(v) for v in bootstrap_ci([]))
    assert bootstrap_ci([1, 1, 1]) == (1.0, 1.0)
    assert bootstrap_ci([0.5]) == (0.5, 0.5)
    with pytest.raises(InvalidInput, match="n_boot"):
        bootstrap_ci([0, 1], n_boot=0)


def test_bootstrap_bounds_derived_by_hand() -> None:
    # [0, 1]: a resample's mean is 0, 0.5 or 1 with probabilities 1/4, 1/2, 1/4, so the
    # 2.5% and 97.5% quantiles are 0 and 1.
    assert bootstrap_ci([0, 1], n_boot=4000) == (0.0, 1.0)
    # [0, 0, 0, 1]: mean 1.0 has probability 1/256 (< 2.5%), mean >= 0.75 has 5.1% (> 2.5%),
    # mean 0 has 31.6%: the interval is (0, 0.75).
    assert bootstrap_ci([0, 0, 0, 1]) == (0.0, 0.75)
    # 7 of 10 right: resampled means are Binomial(10, 0.7) / 10; P(X <= 3) = 1.1% and
    # P(X <= 4) = 4.7%, so the lower bound is 0.4.
    assert bootstrap_ci([1] * 7 + [0] * 3)[0] == 0.4


def test_bootstrap_is_pinned_by_seed_contains_the_mean_and_shrinks_with_n() -> None:
    small = [1] * 14 + [0] * 6  # mean 0.7
    assert bootstrap_ci(small, seed=0) == (0.5, 0.9)  # pinned: numpy default_rng(0)
    assert bootstrap_ci(small, seed=0) == bootstrap_ci(small, seed=0)
    big = [1] * 700 + [0] * 300
    lo_s, hi_s = bootstrap_ci(small)
    lo_b, hi_b = bootstrap_ci(big)
    assert lo_s < 0.7 < hi_s and lo_b < 0.7 < hi_b
    assert hi_b - lo_b < (hi_s - lo_s) / 4  # ~1/sqrt(50) of the width at 50x the questions
    # the normal approximation: +-1.96 * sqrt(0.21 / 1000) = +-0.0284
    assert abs((hi_b - lo_b) / 2 - 0.0284) < 0.004


def test_by_category_counts_multi_label_rows_once_per_label() -> None:
    rows = [
        {"correct": 1.0, "categories": {"type": "CW", "qt": "a|b"}},
        {"correct": 0.0, "categories": {"type": "CW", "qt": "b"}},
        {"correct": 1.0, "categories": {"type": "TN"}},
        {"correct": 1.0, "type": "TN"},  # the category at the top level also works
        {"correct": 0.0, "categories": {}},  # no category: left out
    ]
    out = by_category(rows, "type")
    assert list(out) == ["CW", "TN"]
    assert out["CW"]["n"] == 2 and out["CW"]["accuracy"] == 0.5
    assert out["TN"] == {"n": 2, "accuracy": 1.0, "ci95": (1.0, 1.0)}
    multi = by_category(rows, "qt")
    assert (multi["a"]["n"], multi["b"]["n"], multi["b"]["accuracy"]) == (1, 2, 0.5)
    assert by_category(rows, "qt", sep=None)["a|b"]["n"] == 1


def test_paired_identical_runs() -> None:
    runs = [1.0, 0.0, 1.0, 1.0, 0.0]
    d = paired_bootstrap(runs, runs)
    assert (d.n, d.diff, d.ci95, d.p_value) == (5, 0.0, (0.0, 0.0), 1.0)


def test_paired_clearly_better_run_and_sign() -> None:
    # 40 questions: A alone right on 16, B alone right on 2, both right on 18, both wrong on 4
    a = [1.0] * 16 + [0.0] * 2 + [1.0] * 18 + [0.0] * 4
    b = [0.0] * 16 + [1.0] * 2 + [1.0] * 18 + [0.0] * 4
    d = paired_bootstrap(a, b, n_boot=5000)
    assert d.n == 40 and d.mean_a == 34 / 40 and d.mean_b == 20 / 40
    assert d.diff == pytest.approx(0.35)
    assert 0 < d.ci95[0] < 0.35 < d.ci95[1]
    assert d.p_value < 0.05
    assert d.p_value == 2 * 3 / 5001  # pinned by seed: 2 of 5000 resampled differences <= 0
    r = paired_bootstrap(b, a, n_boot=5000)
    assert r.diff == pytest.approx(-0.35) and r.p_value == d.p_value
    assert r.ci95 == pytest.approx((-d.ci95[1], -d.ci95[0]))


def test_paired_no_difference_and_bad_input() -> None:
    a = [1.0, 0.0] * 10
    b = [0.0, 1.0] * 10  # each wins half: mean difference 0
    d = paired_bootstrap(a, b)
    assert d.diff == 0.0 and d.p_value > 0.5
    assert paired_bootstrap([1.0] * 5, [0.0] * 5, n_boot=99).p_value == 2 / 100
    with pytest.raises(InvalidInput, match="differ in length"):
        paired_bootstrap([1.0], [1.0, 0.0])
    assert paired_bootstrap([], []).n == 0


def test_paired_from_maps_uses_shared_qids() -> None:
    a = {"q1": 1.0, "q2": 0.0, "q3": 1.0}
    b = {"q2": 1.0, "q3": 1.0, "q4": 0.0}
    d = paired_from_maps(a, b)
    assert (d.n, d.mean_a, d.mean_b, d.diff) == (2, 0.5, 1.0, -0.5)


def test_open_ended_exact_match() -> None:
    assert normalise_open("The Two dogs.") == "2 dogs"
    assert normalise_open("3.5 metres, 1,000 people") == "3.5 metres 1000 people"
    assert normalised_match("Two", "2") == 1.0
    assert normalised_match("the dog.", "dog") == 1.0
    assert normalised_match("Yes, the athlete is indoors.", "yes") == 1.0
    assert normalised_match("yeah", "yes") == 1.0
    assert normalised_match("Nope", "no") == 1.0
    assert normalised_match("no", "yes") == 0.0
    assert normalised_match("blue", "dark blue") == 0.0
    assert normalised_match(None, "yes") == 0.0


def test_parse_choice() -> None:
    opts = ["roll the handle", "tap their feet", "strum the string", "hit with sticks"]
    assert parse_choice("B", opts) == 1
    assert parse_choice("(c)", opts) == 2
    assert parse_choice("C. strum the string", opts) == 2
    assert parse_choice("The answer is D.", opts) == 3
    assert parse_choice("They strum the string.", opts) == 2
    assert parse_choice("E", opts) is None
    assert parse_choice("no idea", opts) is None
    assert parse_choice("2", ["1", "2", "3"]) == 1  # option text, never a bare index


@pytest.mark.parametrize(
    ("text", "span"),
    [
        ("12.5-20", (12.5, 20.0)),
        ("12.5 to 20 s", (12.5, 20.0)),
        ("The event happens from 12.5s to 20s.", (12.5, 20.0)),
        ("0:12-0:20", (12.0, 20.0)),
        ("00:01:05 - 00:01:10", (65.0, 70.0)),
        ("[12.5, 20.0]", (12.5, 20.0)),
        ('{"start": 12.5, "end": 20}', (12.5, 20.0)),
        ('answer: {"start": "0:12", "end": "0:20"}', (12.0, 20.0)),
        ("20 - 12.5", (12.5, 20.0)),
        ("between 3 and 4 seconds", (3.0, 4.0)),
        ("no span here", None),
        ("", None),
    ],
)
def test_parse_span_text(text: str, span: tuple[float, float] | None) -> None:
    assert parse_span_text(text) == span


def test_iou_and_iop() -> None:
    assert iou((0, 10), (5, 15)) == pytest.approx(1 / 3)
    assert iou((0, 10), (0, 10)) == 1.0
    assert iou((0, 1), (2, 3)) == 0.0
    assert iou(None, (0, 1)) == 0.0
    assert iop((1, 2), (0, 10)) == 1.0
    assert iop((5, 15), (0, 10)) == 0.5
    assert iop((3, 3), (0, 10)) == 1.0


def test_grounding_scores_by_hand() -> None:
    preds = [(0.0, 10.0), (5.0, 15.0), "from 20 to 30 s", None]
    truths = [(0.0, 10.0), (0.0, 10.0), (25.0, 35.0), (0.0, 1.0)]
    # IoUs: 1, 1/3, 1/3, 0
    s = grounding_scores(preds, truths)
    assert s["n"] == 4
    assert s["miou"] == pytest.approx((1 + 1 / 3 + 1 / 3) / 4)
    assert (s["r@0.3"], s["r@0.5"], s["r@0.7"]) == (0.75, 0.25, 0.25)
    several = grounding_scores([(8.0, 12.0)], [[(0.0, 2.0), (8.0, 12.0)]], with_iop=True)
    assert several["miou"] == 1.0 and several["miop"] == 1.0 and several["iop@0.5"] == 1.0
    with pytest.raises(InvalidInput, match="one per question"):
        grounding_scores([None], [])


def test_grounded_accuracy() -> None:
    truths = [(0.0, 10.0)] * 3
    assert grounded_accuracy([1, 1, 0], [(1, 2), (20, 30), (1, 2)], truths) == pytest.approx(1 / 3)
