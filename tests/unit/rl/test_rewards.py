"""Reward components with hand-computed values, and the registry against the components an
episode actually records (`vidra.graph.nodes.finalize_node`).
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

import pytest
from langgraph.runtime import Runtime

from vidra.graph.deps import Deps
from vidra.graph.nodes import finalize_node
from vidra.graph.state import initial_state
from vidra.rl.rewards import (
    DEFAULT_WEIGHTS,
    REWARDS,
    STEP_REWARDS,
    accuracy,
    critic_reward,
    format_reward,
    frame_cost,
    normalise_answer,
    parse_span,
    temporal_iou,
)
from vidra.runtime import reward_records

OPTS = ["red circle", "blue square", "green triangle"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The Red Circle!", "red circle"),
        ("  a   blue\tsquare. ", "blue square"),
        ("Café au lait", "cafe au lait"),
        ("An apple, the end.", "apple end"),
        ("0:05.0-0:12.5", "0:05.0-0:12.5"),
        ("Theatre", "theatre"),  # an article inside a word stays
        ("", ""),
    ],
)
def test_normalise_answer(text: str, expected: str) -> None:
    assert normalise_answer(text) == expected


@pytest.mark.parametrize(
    ("answer", "truth", "options", "choice", "expected"),
    [
        ("blue square", "blue square", OPTS, 1, 1.0),
        ("red circle", "blue square", OPTS, 1, 1.0),  # the choice index decides
        ("blue square", "blue square", OPTS, 0, 0.0),
        ("The Blue Square.", "blue square", OPTS, None, 1.0),  # no index: normalised text
        ("blue", "blue square", OPTS, None, 0.0),
        ("blue square", "blue square", OPTS, 7, 1.0),  # index out of range: text decides
        ("Two", "two", None, None, 1.0),  # free form, normalised
        ("the two.", "Two", None, None, 1.0),
        ("three", "two", None, None, 0.0),
        (None, "two", None, None, 0.0),
        (None, "blue square", OPTS, 1, 1.0),
    ],
)
def test_accuracy(
    answer: str | None, truth: str, options: list[str] | None, choice: int | None, expected: float
) -> None:
    assert accuracy(answer, truth, options, choice) == expected


def test_format_reward() -> None:
    assert format_reward([True, True, True]) == 1.0
    assert format_reward([True, False, True]) == 0.0
    assert format_reward([False]) == 0.0


@pytest.mark.parametrize(
    ("used", "budget", "expected"),
    [(0, 32, 0.0), (8, 32, -0.25), (32, 32, -1.0), (64, 32, -1.0), (5, 0, 0.0), (5, -4, 0.0)],
)
def test_frame_cost(used: int, budget: int, expected: float) -> None:
    cost = frame_cost(used, budget)
    assert cost == expected and -1.0 <= cost <= 0.0


@pytest.mark.parametrize(
    ("pred", "truth", "expected"),
    [
        ((0.0, 5.0), (10.0, 20.0), 0.0),  # disjoint
        ((0.0, 10.0), (10.0, 20.0), 0.0),  # touching
        ((12.0, 14.0), (10.0, 20.0), 0.2),  # nested: 2 / 10
        ((10.0, 20.0), (12.0, 14.0), 0.2),
        ((10.0, 20.0), (10.0, 20.0), 1.0),  # identical
        ((5.0, 15.0), (10.0, 20.0), 5.0 / 15.0),  # overlap 5 of 15
        ((15.0, 5.0), (10.0, 20.0), 5.0 / 15.0),  # reversed spans are ordered
        ((7.0, 7.0), (7.0, 7.0), 1.0),  # zero-length, same instant
        ((7.0, 7.0), (8.0, 8.0), 0.0),  # zero-length, different instants
        ((7.0, 7.0), (5.0, 10.0), 0.0),  # zero-length inside a span
        (None, (10.0, 20.0), 0.0),
    ],
)
def test_temporal_iou(
    pred: tuple[float, float] | None, truth: tuple[float, float], expected: float
) -> None:
    assert temporal_iou(pred, truth) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("score", "expected"), [(None, 0.0), (0.4, 0.4), (1.7, 1.0), (-0.2, 0.0), (1, 1.0)]
)
def test_critic_reward_clamps(score: float | None, expected: float) -> None:
    assert critic_reward(score) == expected


@pytest.mark.parametrize(
    ("text", "span"),
    [
        ("0:05.0-0:12.5", (5.0, 12.5)),
        ("1:02.5 - 2:00", (62.5, 120.0)),
        ("from 10:00-10:30.25 s", (600.0, 630.25)),
        ("0:40-0:10", (40.0, 10.0)),  # as written; temporal_iou orders it
        ("5-12", None),
        ("0:05", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_span(text: str | None, span: tuple[float, float] | None) -> None:
    assert parse_span(text) == span


def _episode(
    answer: str, truth: str, options: list[str], tools: int = 0
) -> dict[str, Any]:  # fmt: skip
    """A finished episode's state with ``tools`` tool calls (steps noting what they surfaced)."""
    state = initial_state(
        job_id="j",
        rollout=0,
        video_id="vid",
        video_path="/videos/v.mp4",
        duration=60.0,
        fps=4.0,
        frame_count=240,
        question="When does the red circle appear?",
        options=options,
        truth=truth,
        budget={"max_rounds": 3, "max_frames": 32, "frames_per_round": 8, "deadline_s": 60.0},
        now=0.0,
    )
    state["seen"] = list(range(8))
    state["answers"] = [
        {"answer": answer, "choice": options.index(answer), "confidence": 0.8, "evidence": []}
    ]
    state["critiques"] = [{"score": 0.7, "accept": True}]
    calls = [{"parse_ok": True, "parsed": {"tool": "search", "surfaced": [[1.0, 2.0]]}}] * tools
    state["steps"] = [{"parse_ok": True}, *calls, {"parse_ok": False}]
    runtime = SimpleNamespace(context=SimpleNamespace(rewards=reward_records))
    return finalize_node(state, cast(Runtime[Deps], runtime))  # only the context's rewards


def test_registry_names_exactly_what_an_episode_records() -> None:
    spans = ["0:05.0-0:15.0", "0:10.0-0:20.0", "0:40.0-0:50.0"]
    out = _episode(spans[0], spans[1], spans, tools=2)
    recorded = {r["name"]: r["value"] for r in out["rewards"] if r.get("step_order") is None}
    per_step = {(r["name"], r["step_order"]): r["value"] for r in out["rewards"]
                if r.get("step_order") is not None}  # fmt: skip
    # the two calls (steps 1 and 2) cost two and one to go; no evidence spans: no credit
    assert per_step == {("tool_cost_to_go", 1): -2.0, ("tool_cost_to_go", 2): -1.0}
    assert {name for name, _ in per_step} <= set(STEP_REWARDS)
    assert set(recorded) == set(REWARDS)
    assert set(DEFAULT_WEIGHTS) <= set(REWARDS)
    assert recorded == {
        "format": 0.0,
        "frame_cost": -0.25,
        "tool_cost": -2.0,  # minus one per tool call
        "critic": 0.7,
        "accuracy": 0.0,
        "temporal_iou": pytest.approx(5.0 / 15.0),
    }


def test_an_episode_without_a_span_truth_records_no_temporal_iou() -> None:
    out = _episode("blue square", "blue square", OPTS)
    names = [r["name"] for r in out["rewards"]]
    assert sorted(names) == ["accuracy", "critic", "format", "frame_cost"]  # no tool call made
    assert {r["name"]: r["value"] for r in out["rewards"]}["accuracy"] == 1.0
