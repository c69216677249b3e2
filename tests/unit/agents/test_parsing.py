import pytest

from vidra.agents.parsing import extract_json, match_option, parse_time, parse_times
from vidra.agents.schemas import parse_answer, parse_critique, parse_plan, parse_selection

OPTS = ["red circle", "blue square", "green triangle"]


@pytest.mark.parametrize(
    "text",
    [
        '{"answer": "B"}',
        'Sure! Here it is:\n```json\n{"answer": "B"}\n```\nHope that helps.',
        "The answer: {'answer': 'B'} and more text {not json}",
        '{"answer": "B",}',
        'prefix {"x": {"answer": "nested"}} {"answer": "B"}',
    ],
)
def test_extract_json_from_messy_text(text: str) -> None:
    data = extract_json(text)
    assert data is not None and ("answer" in data or "x" in data)


def test_extract_json_none() -> None:
    assert extract_json("no json here") is None
    assert extract_json("{broken: ") is None


def test_garbage_parses_without_warnings() -> None:
    """A model's garbage (``4.0and 3``: a number run into a keyword) is no object, and it
    leaves nothing on stderr (Python's parser warns of it)."""
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert extract_json("{'answer': 1if 2, 'evidence': [4.0and 3]}") is None
    assert not caught, [str(w.message) for w in caught]


@pytest.mark.parametrize(
    ("value", "index"),
    [
        ("B", 1),
        ("(b)", 1),
        ("option C", 2),
        ("C.", 2),
        (0, 0),
        ("Blue Square", 1),
        ("I think it is the green triangle.", 2),
        ("red circle or blue square", None),
        ("Z", None),
        (7, None),
        (True, None),
        (None, None),
    ],
)
def test_match_option(value: object, index: int | None) -> None:
    assert match_option(value, OPTS) == index


def test_times() -> None:
    assert parse_time("12.5s") == 12.5
    assert parse_time("1:02.5") == 62.5
    assert parse_time("1:00:03") == 3603
    assert parse_time(-1) is None and parse_time("soon") is None
    assert parse_times(["1s", "x", 3]) == [1.0, 3.0]


def test_schema_parsers() -> None:
    a = parse_answer('{"answer": "b", "confidence": "0.8", "evidence": ["0:12", 30]}', OPTS)
    assert (a.answer, a.choice, a.confidence, a.evidence) == ("blue square", 1, 0.8, [12.0, 30.0])
    with pytest.raises(ValueError, match="one of the options"):
        parse_answer('{"answer": "purple"}', OPTS)
    assert parse_answer('{"answer": "two"}', None).answer == "two"
    c = parse_critique('{"score": 1.7, "accept": "yes", "feedback": "ok"}')
    assert c.score == 1.0 and c.accept
    with pytest.raises(ValueError, match="score"):
        parse_critique('{"accept": true}')
    p = parse_plan('{"look_for": "x", "hints": [["0:10", "0:20"], [5]], "frame_budget": "12"}')
    assert p.hints == [(10.0, 20.0)] and p.frame_budget == 12
    s = parse_selection('{"segments": [[10, 20], [900, 950]], "times": [5, 700]}', 600.0)
    assert s.segments == [(10.0, 20.0)] and s.times == [5.0]
    with pytest.raises(ValueError, match="inside the video"):
        parse_selection('{"times": [999]}', 600.0)


def test_answer_field_survives_a_garbled_tail() -> None:
    """A constrained reply starts with a whole answer field; a small model may break the JSON
    after it. The answer is read; anything short of a closed answer field or a whole option
    is still an error."""
    a = parse_answer('{"answer": "blue square", "confidence": 0.9, "evidence": [12.5, 1', OPTS)
    assert (a.answer, a.choice, a.confidence, a.evidence) == ("blue square", 1, 0.5, [])
    assert parse_answer('{"answer": "say \\"hi\\"", "conf', None).answer == 'say "hi"'
    for bad in ('{"answer": "blue squ', 'x {"answer": "blue square" ...', '{"answer": 3,'):
        with pytest.raises(ValueError):
            parse_answer(bad, OPTS)
    with pytest.raises(ValueError, match="one of the options"):
        parse_answer('{"answer": "purple", "confidence": 0.', OPTS)


def test_an_unclosed_answer_that_opens_with_an_option_is_that_option() -> None:
    """A constrained reply's prefix is an option with its quote open; when the model's own
    tokens never close it (seen on time-span options), the option chosen is still read
    (before: a format failure, and the fallback answered the first option)."""
    spans = ["3:07.2-3:53.8", "1:50.2-2:28.5", "2:11.5-2:26.2", "2:11.5-2:26.2 or later"]
    for reply, choice in [
        ('{"answer": "2:11.5-2:26.2-2:29.0]}', 2),
        ('{"answer": "1:50.2-2:28.5]}', 1),
        ('{"answer": "2:11.5-2:26.2 or later, 0.9', 3),  # the longest option that opens it
    ]:
        a = parse_answer(reply, spans)
        assert (a.answer, a.choice, a.confidence) == (spans[choice], choice, 0.5)
    for bad in ('{"answer": "2:11.5-2:2', '{"answer": "4:00.0-4:10.0]}', '"2:11.5-2:26.2'):
        with pytest.raises(ValueError):
            parse_answer(bad, spans)
