"""The planner with a scripted model: the frame budget cap, hints clipped to the video,
the fallback plan after garbage and a failed repair, and one step per model call.
"""

from __future__ import annotations

import json

import pytest

from vidra.agents import AgentResult, Plan, VideoFacts, plan
from vidra.models.protocol import SamplingParams
from vidra.models.scripted import ScriptedChatModel

FACTS = VideoFacts("vid", "/videos/v.mp4", duration=60.0, fps=4.0, frame_count=240)
QUESTION = "In which scene does the red circle appear?"
OPTS = ["the first", "the second"]


def ask(replies: list[str], budget: int = 32) -> tuple[AgentResult[Plan], ScriptedChatModel]:
    model = ScriptedChatModel(replies)
    return plan(model, FACTS, QUESTION, OPTS, SamplingParams(), budget), model


def plan_json(**fields: object) -> str:
    return json.dumps({"look_for": "a red circle", **fields})


@pytest.mark.parametrize(
    ("asked", "budget", "expected"),
    [(100, 32, 32), (12, 32, 12), (32, 32, 32), (None, 32, 32), ("7", 16, 7), (1, 1, 1)],
)
def test_frame_budget_is_capped_at_the_budget(asked: object, budget: int, expected: int) -> None:
    fields = {} if asked is None else {"frame_budget": asked}
    result, _ = ask([plan_json(**fields)], budget)
    assert result.value.frame_budget == expected and not result.fallback
    assert result.value.look_for == "a red circle"


def test_hints_are_clipped_to_the_video_and_late_ones_dropped() -> None:
    hints = [[50, 90], [70, 80], [10, 20], [60, 65], [0, "0:05"], [30, 25], [59.5, 60]]
    result, _ = ask([plan_json(hints=hints)])
    assert result.value.hints == [
        (50.0, 60.0),  # ends past 60 s: clipped
        (10.0, 20.0),
        (0.0, 5.0),
        (25.0, 30.0),  # given backwards: ordered
        (59.5, 60.0),
    ]  # [70, 80] and [60, 65] start at or after the end: dropped
    assert all(0.0 <= a <= b <= FACTS.duration for a, b in result.value.hints)


def test_the_plan_keeps_its_sub_questions() -> None:
    result, _ = ask([plan_json(sub_questions=["where is red?", "", "which scene?"])])
    assert result.value.sub_questions == ["where is red?", "which scene?"]


def test_fallback_plan_after_garbage_and_a_failed_repair() -> None:
    result, model = ask(["I will look everywhere.", "Still not JSON."], budget=24)
    assert result.fallback
    assert result.value == Plan(look_for=QUESTION, frame_budget=24)
    assert [s["parse_ok"] for s in result.steps] == [False, False]
    assert [s["role"] for s in result.steps] == ["planner", "planner"]
    assert len(model.calls) == 2
    repair = model.calls[1].messages
    assert [m.role for m in repair] == ["user", "assistant", "user"]
    assert repair[1].content == "I will look everywhere."
    assert "could not be used (no JSON object found)" in str(repair[2].content)


def test_invalid_fields_are_repaired() -> None:
    """A frame budget of 0 is rejected by the schema; the repaired reply is used."""
    result, _ = ask([plan_json(frame_budget=0), plan_json(frame_budget=5, hints=[[1, 2]])])
    assert not result.fallback
    assert (result.value.frame_budget, result.value.hints) == (5, [(1.0, 2.0)])
    assert [s["parse_ok"] for s in result.steps] == [False, True]
    assert result.steps[1]["parsed"]["frame_budget"] == 5


def test_one_step_per_model_call() -> None:
    result, model = ask([f"Sure:\n```json\n{plan_json(frame_budget=8)}\n```"])
    assert len(model.calls) == 1 and len(result.steps) == 1
    step = result.steps[0]
    assert step["role"] == "planner" and step["parse_ok"] and step["frames"] == []
    assert step["prompt"].startswith("[user] [planner/v1]")
    assert "Video: 60 s at 4 fps." in step["prompt"] and "A. the first" in step["prompt"]
    assert step["completion"].startswith("Sure:")
    assert step["parsed"]["look_for"] == "a red circle"
