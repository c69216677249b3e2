"""The reasoner with a scripted model: answers parsed into options, constrained prefixes,
self-consistency voting, the fallback answer, free form, reflection, and step frame refs.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from vidra.agents import AgentResult, Answer, VideoFacts, reason, reflect, render_prompt, vote
from vidra.agents.reasoner import STANCES, answer_prefixes
from vidra.models.protocol import SamplingParams
from vidra.models.scripted import ScriptedChatModel

OPTS = ["red circle", "blue square", "green triangle"]
FACTS = VideoFacts("vid", "/videos/v.mp4", duration=60.0, fps=4.0, frame_count=240)
TIMES = [0.0, 2.5, 10.1]
FRAMES = np.zeros((len(TIMES), 8, 8, 3), np.uint8)
QUESTION = "Which shape appears first?"
GARBAGE = "It is hard to say."


def ask(
    replies: list[str],
    options: list[str] | None = OPTS,
    *,
    samples: int = 1,
    constrain: bool = True,
    feedback: str = "",
) -> tuple[AgentResult[Answer], ScriptedChatModel]:
    model = ScriptedChatModel(replies)
    result = reason(
        model,
        FACTS,
        QUESTION,
        options,
        FRAMES,
        TIMES,
        SamplingParams(temperature=0.7),
        feedback,
        samples,
        constrain,
    )
    return result, model


def reply(ans: object, conf: float = 0.8, evidence: list[object] | None = None) -> str:
    return json.dumps({"answer": ans, "confidence": conf, "evidence": evidence or []})


def a(text: str, conf: float) -> Answer:
    return Answer(answer=text, choice=OPTS.index(text) if text in OPTS else None, confidence=conf)


# -- parsing into the options --------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "choice"),
    [
        (reply("B"), 1),
        (reply("(c)"), 2),
        (reply("green triangle"), 2),
        (reply("Red Circle"), 0),
        (reply(1), 1),  # an index
        ('{"choice": 2, "answer": "?"}', 2),
        (f"My answer: {reply('option A')} -- done.", 0),
    ],
)
def test_reason_parses_letter_text_and_index_answers(text: str, choice: int) -> None:
    result, _ = ask([text])
    assert not result.fallback
    assert (result.value.answer, result.value.choice) == (OPTS[choice], choice)


def test_reason_keeps_confidence_and_evidence_times() -> None:
    result, _ = ask([reply("B", 0.65, ["0:02.5", 10.1, "soon", "1:00"])])
    assert result.value.confidence == 0.65
    assert result.value.evidence == [2.5, 10.1, 60.0]


# -- constrained answers -------------------------------------------------------------------


def test_answer_prefixes() -> None:
    assert answer_prefixes(OPTS) == [
        '{"answer": "red circle',
        '{"answer": "blue square',
        '{"answer": "green triangle',
    ]
    assert answer_prefixes(['say "hi"']) == ['{"answer": "say \\"hi\\"']
    assert answer_prefixes(None) == [] and answer_prefixes([]) == []


def test_constrained_mode_passes_the_prefixes_in_every_request() -> None:
    result, model = ask([GARBAGE, reply("A")])
    assert result.value.answer == "red circle"
    assert [c.sampling.prefixes for c in model.calls] == [answer_prefixes(OPTS)] * 2
    assert model.calls[0].sampling.temperature == 0.7  # the rest of the sampling is kept


def test_unconstrained_mode_and_free_form_pass_no_prefixes() -> None:
    _, model = ask([reply("A")], constrain=False)
    assert model.calls[0].sampling.prefixes == []
    _, model = ask([reply("two")], None)
    assert model.calls[0].sampling.prefixes == []


# -- self-consistency ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answers", "winner"),
    [
        ([a("red circle", 0.9), a("blue square", 0.6), a("blue square", 0.5)], 1),
        # 2-2 tie: blue's mean confidence 0.55 beats red's 0.5 (though red has the top 0.9)
        (
            [
                a("red circle", 0.9),
                a("blue square", 0.6),
                a("red circle", 0.1),
                a("blue square", 0.5),
            ],
            1,
        ),
        ([a("green triangle", 0.3)], 0),
        ([a("red circle", 0.2), a("blue square", 0.4), a("green triangle", 0.3)], 1),
    ],
)
def test_vote_majority_then_mean_confidence(answers: list[Answer], winner: int) -> None:
    expected = max(
        (x for x in answers if x.answer == answers[winner].answer), key=lambda x: x.confidence
    )
    assert vote(answers) is expected  # the most confident answer of the winning option


def test_reason_samples_and_votes() -> None:
    replies = [reply("A", 0.9), reply("B", 0.6), GARBAGE, reply("blue square", 0.7)]
    result, model = ask(replies, samples=4)
    assert len(model.calls) == 1 and model.calls[0].sampling.n == 4
    assert (result.value.answer, result.value.confidence) == ("blue square", 0.7)
    assert [s.answer for s in result.samples] == ["red circle", "blue square", "blue square"]
    assert [s["parse_ok"] for s in result.steps] == [True, True, False, True]
    assert not result.fallback


def test_all_samples_garbage_repairs_once_with_one_sample() -> None:
    result, model = ask([GARBAGE, GARBAGE, GARBAGE, reply("C", 0.4)], samples=3)
    assert [c.sampling.n for c in model.calls] == [3, 1]
    assert model.calls[1].sampling.prefixes == answer_prefixes(OPTS)
    assert result.value.answer == "green triangle" and not result.fallback
    assert len(result.steps) == 4


# -- fallback and free form ------------------------------------------------------------------


def test_fallback_is_the_first_option_with_zero_confidence() -> None:
    result, model = ask([reply("purple hexagon"), GARBAGE])
    assert result.fallback and len(model.calls) == 2
    assert result.value == Answer(answer="red circle", choice=0, confidence=0.0)
    assert [s["parse_ok"] for s in result.steps] == [False, False]
    assert "one of the options" in str(model.calls[1].messages[-1].content)


def test_free_form_answer() -> None:
    result, _ = ask([reply("two", 0.6, [12])], None)
    assert result.value == Answer(answer="two", choice=None, confidence=0.6, evidence=[12.0])
    assert "Answer in a few words." in result.steps[0]["prompt"]


def test_free_form_prose_is_the_answer() -> None:
    """An open-ended reply that is not JSON is still an answer (its first line)."""
    result, _ = ask([GARBAGE], None)
    assert not result.fallback and result.value.answer == "It is hard to say."


def test_free_form_blank_replies_fall_back_to_an_empty_answer() -> None:
    result, _ = ask(["   ", reply("")], None)
    assert result.fallback and not any(s["parse_ok"] for s in result.steps)
    assert result.value == Answer(answer="", choice=None, confidence=0.0)


# -- steps ------------------------------------------------------------------------------------


def test_steps_carry_frame_refs_computed_from_times() -> None:
    result, _ = ask([GARBAGE, reply("B")], feedback="look at the end")
    for step in result.steps:
        assert step["role"] == "reasoner"
        assert step["frames"] == [["vid", 0], ["vid", 10], ["vid", 40]]  # 4 fps
    first = result.steps[0]["prompt"]
    assert "<image t=0.00s>" in first and "<image t=10.10s>" in first
    assert "Critic feedback on the last answer: look at the end" in first
    layout = result.steps[0]["messages"][0]["content"]
    assert [p["frame"] for p in layout if p["type"] == "image"] == [0, 1, 2]


# -- reflection -------------------------------------------------------------------------------


def run_reflect(
    replies: list[str], previous: Answer
) -> tuple[AgentResult[Answer], ScriptedChatModel]:
    model = ScriptedChatModel(replies)
    result = reflect(model, FACTS, QUESTION, OPTS, FRAMES, TIMES, SamplingParams(), previous)
    return result, model


def test_reflect_makes_three_stance_calls_and_votes_with_the_previous_answer() -> None:
    previous = a("red circle", 0.9)
    result, model = run_reflect([reply("A", 0.2), reply("B", 0.8), reply("C", 0.7)], previous)
    assert len(model.calls) == 3
    for call, stance in zip(model.calls, STANCES, strict=True):
        text = render_prompt(call.messages)
        assert f"Think as a {stance} reviewer" in text and "'red circle'" in text
        assert call.sampling.prefixes == answer_prefixes(OPTS)
    # red: previous + conservative (2 votes) beats blue and green (1 each)
    assert result.value is previous
    assert [x.answer for x in result.samples] == [
        "red circle",
        "red circle",
        "blue square",
        "green triangle",
    ]
    assert len(result.steps) == 3 and not result.fallback


def test_reflect_can_overturn_the_previous_answer() -> None:
    previous = a("red circle", 0.9)
    result, _ = run_reflect([reply("B", 0.5), reply("B", 0.6), reply("A", 0.1)], previous)
    # 2-2 tie; blue's mean 0.55 beats red's 0.5
    assert (result.value.answer, result.value.confidence) == ("blue square", 0.6)


def test_reflect_drops_a_stance_that_fell_back() -> None:
    previous = a("green triangle", 0.3)
    replies = [GARBAGE, GARBAGE, reply("B", 0.9), reply("blue square", 0.4)]
    result, model = run_reflect(replies, previous)
    assert len(model.calls) == 4  # the conservative stance was repaired, then fell back
    assert [x.answer for x in result.samples] == ["green triangle", "blue square", "blue square"]
    assert result.value.answer == "blue square" and result.value.confidence == 0.9
    assert [s["parse_ok"] for s in result.steps] == [False, False, True, True]
    assert all(s["frames"] == [["vid", 0], ["vid", 10], ["vid", 40]] for s in result.steps)
