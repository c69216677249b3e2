"""The critic: each rule of `check_rules`, and `critique`'s accept decision table with a
scripted model (model verdict x rules x threshold), its fallback and its feedback.
"""

from __future__ import annotations

import numpy as np
import pytest

from vidra.agents import Answer, Verdict, VideoFacts, check_rules, critique
from vidra.models.protocol import SamplingParams
from vidra.models.scripted import ScriptedChatModel

OPTS = ["red circle", "blue square", "green triangle"]
FACTS = VideoFacts("vid", "/videos/v.mp4", duration=60.0, fps=4.0, frame_count=240)
TIMES = [10.0, 20.0, 30.25]
FRAMES = np.zeros((len(TIMES), 8, 8, 3), np.uint8)
GARBAGE = "The answer looks fine to me."


def answer(text: str = "blue square", evidence: list[float] | None = None) -> Answer:
    return Answer(answer=text, choice=None, confidence=0.7, evidence=evidence or [])


def run(
    replies: list[str],
    ans: Answer,
    *,
    previous: Answer | None = None,
    seen_times: list[float] = TIMES,
    threshold: float = 0.5,
    options: list[str] | None = OPTS,
) -> tuple[Verdict, ScriptedChatModel]:
    model = ScriptedChatModel(replies)
    verdict = critique(
        model,
        FACTS,
        "Which shape appears first?",
        options,
        ans,
        FRAMES,
        TIMES,
        seen_times,
        previous,
        SamplingParams(),
        threshold,
    )
    return verdict, model


def reply(score: float, accept: bool, feedback: str = "") -> str:
    verdict = "true" if accept else "false"
    return f'{{"score": {score}, "accept": {verdict}, "feedback": "{feedback}"}}'


# -- rules ----------------------------------------------------------------------------------


def test_rules_all_pass() -> None:
    assert check_rules(answer(evidence=[10.2, 29.9]), OPTS, TIMES, answer()) == []
    assert check_rules(answer("two"), None, TIMES, None) == []  # free form: any answer


def test_rule_answer_not_among_the_options() -> None:
    assert check_rules(answer("purple hexagon"), OPTS, TIMES, None) == [
        "answer is not one of the options"
    ]
    assert check_rules(answer("Blue Square"), OPTS, TIMES, None) == [
        "answer is not one of the options"
    ]  # exact option text only


def test_rule_empty_answer() -> None:
    assert check_rules(answer(""), None, TIMES, None) == ["answer is empty"]
    assert check_rules(answer(""), OPTS, TIMES, None) == [
        "answer is not one of the options",
        "answer is empty",
    ]


@pytest.mark.parametrize(
    ("evidence", "ok"),
    [
        ([10.0], True),
        ([10.5, 19.5], True),  # exactly half a second away still counts as seen
        ([30.75], True),
        ([10.51], False),
        ([25.0], False),
        ([10.0, 45.0], False),
    ],
)
def test_rule_evidence_within_half_a_second_of_a_seen_frame(
    evidence: list[float], ok: bool
) -> None:
    failures = check_rules(answer(evidence=evidence), OPTS, TIMES, None)
    bad = next((t for t in evidence if min(abs(t - s) for s in TIMES) > 0.5), None)
    assert failures == ([] if ok else [f"evidence at {bad:.1f}s was never seen"])


def test_rule_evidence_with_nothing_seen_and_reported_once() -> None:
    assert check_rules(answer(evidence=[5.0]), OPTS, [], None) == [
        "evidence at 5.0s was never seen"
    ]
    assert check_rules(answer(), OPTS, [], None) == []  # no evidence: nothing to check
    many = check_rules(answer(evidence=[1.0, 2.0, 3.0]), OPTS, TIMES, None)
    assert many == ["evidence at 1.0s was never seen"]


def test_rule_answer_changed() -> None:
    assert check_rules(answer(), OPTS, TIMES, answer("red circle")) == [
        "answer changed from 'red circle'"
    ]
    assert check_rules(answer(), OPTS, TIMES, answer()) == []


# -- critique -------------------------------------------------------------------------------

RULES = {
    "pass": (answer(evidence=[10.0]), None),
    "not-an-option": (answer("purple hexagon"), None),
    "unseen-evidence": (answer(evidence=[50.0]), None),
    "changed": (answer(), answer("red circle")),
}


@pytest.mark.parametrize(
    ("rules", "score", "model_accept", "threshold", "accepted"),
    [
        ("pass", 0.9, True, 0.5, True),
        ("pass", 0.5, True, 0.5, True),  # the threshold is inclusive
        ("pass", 0.49, True, 0.5, False),  # model accepts, score below threshold
        ("pass", 0.8, True, 0.85, False),
        ("pass", 0.9, False, 0.5, False),  # high score, model rejects
        ("not-an-option", 0.95, True, 0.5, False),  # a blocking rule overrides the model
        # an unseen citation and a flip are reported to the model critic, which decides
        ("unseen-evidence", 0.95, True, 0.5, True),
        ("unseen-evidence", 0.95, False, 0.5, False),
        ("changed", 0.9, True, 0.5, True),
        ("changed", 0.9, False, 0.5, False),
    ],
)
def test_critique_decision_table(
    rules: str, score: float, model_accept: bool, threshold: float, accepted: bool
) -> None:
    ans, previous = RULES[rules]
    verdict, _ = run(
        [reply(score, model_accept, "ok")], ans, previous=previous, threshold=threshold
    )
    assert verdict.accept is accepted
    assert verdict.score == score and not verdict.fallback
    assert verdict.rule_failures == check_rules(ans, OPTS, TIMES, previous)
    assert verdict.feedback == "ok"


def test_critique_shows_rules_frames_and_records_one_step() -> None:
    ans, previous = RULES["unseen-evidence"]
    verdict, model = run([reply(0.9, True)], ans, previous=previous)
    assert len(model.calls) == 1
    step = verdict.steps[0]
    assert step["role"] == "critic" and step["parse_ok"]
    assert step["frames"] == [["vid", 40], ["vid", 80], ["vid", 121]]
    assert step["prompt"].count("<image t=") == 3
    assert "Rule checks: evidence at 50.0s was never seen." in step["prompt"]
    assert "Proposed answer: blue square (confidence 0.70; evidence at [50.0])" in step["prompt"]


@pytest.mark.parametrize(("rules", "accepted"), [("pass", True), ("not-an-option", False)])
def test_critique_fallback_on_garbage(rules: str, accepted: bool) -> None:
    ans, previous = RULES[rules]
    verdict, model = run([GARBAGE, '{"accept": true}'], ans, previous=previous)
    assert verdict.fallback and verdict.score == 0.5
    assert verdict.accept is accepted
    assert [s["parse_ok"] for s in verdict.steps] == [False, False]
    assert len(model.calls) == 2


def test_critique_repaired_reply_is_used() -> None:
    verdict, _ = run([GARBAGE, reply(0.2, False, "look at 0:40")], answer())
    assert not verdict.fallback and not verdict.accept and verdict.score == 0.2
    assert verdict.feedback == "look at 0:40"
    assert [s["parse_ok"] for s in verdict.steps] == [False, True]


@pytest.mark.parametrize("rules", ["changed", "unseen-evidence"])
def test_critique_fallback_does_not_block_on_a_flip_or_a_citation(rules: str) -> None:
    ans, previous = RULES[rules]
    verdict, _ = run([GARBAGE, GARBAGE], ans, previous=previous)
    assert verdict.fallback and verdict.accept and verdict.rule_failures


@pytest.mark.parametrize(
    ("replies", "rules", "feedback"),
    [
        ([GARBAGE, GARBAGE], "not-an-option", "answer is not one of the options"),
        ([reply(0.9, True)], "changed", "answer changed from 'red circle'"),
        ([reply(0.9, True)], "pass", ""),
        ([reply(0.1, False, "check the last scene")], "changed", "check the last scene"),
    ],
)
def test_critique_feedback_falls_back_to_the_rule_failures(
    replies: list[str], rules: str, feedback: str
) -> None:
    ans, previous = RULES[rules]
    verdict, _ = run(replies, ans, previous=previous)
    assert verdict.feedback == feedback


def test_critique_joins_several_rule_failures_into_feedback() -> None:
    verdict, _ = run([GARBAGE, GARBAGE], answer("", [50.0]), previous=answer())
    assert verdict.feedback == (
        "answer is not one of the options; answer is empty; "
        "evidence at 50.0s was never seen; answer changed from 'blue square'"
    )
    assert not verdict.accept
