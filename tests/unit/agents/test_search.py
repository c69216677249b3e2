"""The search tools: what a search found, per alternative of the query (moments merged from
consecutive clips, in order of first appearance), what gets inspected, and what the reasoner
is told; a captioner's false hits for one option cannot crowd out another's only true hit."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace

import pytest

from vidra.agents.findings import (
    Clip,
    find_moments,
    index_context,
    inspect_order,
    merge_clips,
    render_findings,
)
from vidra.agents.search import (
    ToolCall,
    ToolRequest,
    ToolSettings,
    call_kind,
    explored,
    parse_tool,
    retrieve_plan,
    run_tools,
    tool_calls,
)
from vidra.models.protocol import ChatRequest, SamplingParams, TextPart
from vidra.models.scripted import ScriptedChatModel
from vidra.phrases import alternatives, contains, match_rank


class Index:
    """A `VideoIndex` over fixed captions: a clip matches a query sharing a word."""

    def __init__(self, clips: Sequence[Clip]) -> None:
        self.all = list(clips)

    def search(self, video_id: str, query: str, k: int) -> list[Clip]:
        hits = [c for c in self.all if sum(match_rank(query, c.caption))]
        return sorted(hits, key=lambda c: -c.score)[:k]

    def window(self, video_id: str, t0: float, t1: float) -> list[Clip]:
        return [c for c in self.all if c.t1 > t0 and c.t0 < t1]

    def clips(self, ids: Sequence[int]) -> list[Clip]:
        return sorted((c for c in self.all if c.id in set(ids)), key=lambda c: c.t0)


def _clips() -> list[Clip]:
    # five false "red star" hits score above the one true "blue circle" hit
    reds = [Clip(k, 100.0 * k, 100.0 * k + 2, "red star top-left", 12.9) for k in range(1, 6)]
    return [*reds, Clip(9, 1500.0, 1502.0, "green square top-right; blue circle bottom-left", 12.1)]


def test_phrases_match_whole_words_in_order() -> None:
    assert alternatives("Red star;  blue circle, red star") == ["red star", "blue circle"]
    assert contains("a blue circle bottom-left", "blue circle")
    assert not contains("blue circles", "blue circle") and not contains(
        "circle blue", "blue circle"
    )
    assert match_rank("red star, blue circle", "blue circle; red square") == (1, 3)


def test_moments_merge_consecutive_clips_and_tolerate_one_missed_caption() -> None:
    clips = [Clip(k, 2.0 * k, 2.0 * k + 2, "red circle") for k in (3, 4, 6, 10, 11)]
    moments = merge_clips(clips)
    assert [(m.t0, m.t1) for m in moments] == [(6.0, 14.0), (20.0, 24.0)]  # clip 5 missed
    assert moments[0].ids == (3, 4, 6) and moments[0].at == 9.0  # the middle clip's middle
    assert len(merge_clips(clips, tolerance=0)) == 3


def test_findings_list_alternatives_by_first_appearance_then_the_missing() -> None:
    clips = [
        Clip(1, 30.0, 32.0, "blue square top-left"),
        Clip(2, 32.0, 34.0, "blue square top-left; red circle bottom-right"),
        Clip(3, 90.0, 92.0, "red circle top-right"),
    ]
    found = find_moments("red circle, blue square, green star", clips)
    assert [f.alternative for f in found] == ["blue square", "red circle", "green star"]
    assert [len(f.moments) for f in found] == [1, 2, 0]
    assert render_findings(found).splitlines() == [
        "blue square: 1 moment: 0:30.0-0:34.0",
        "red circle: 2 moments: 0:32.0-0:34.0, 1:30.0-1:32.0",
        "green star: no moment",
    ]
    # a query naming nothing whole lists the best clips with their captions instead
    other = render_findings(find_moments("square", [Clip(1, 30.0, 32.0, "blue box", 1.0)]))
    assert other == "square: no moment\n0:31.0 blue box (0:30.0-0:32.0)"


def test_inspect_order_gives_each_alternative_its_first_moment_in_turn() -> None:
    found = find_moments("red star, blue circle", _clips())
    assert [len(f.moments) for f in found] == [5, 1]
    assert inspect_order(found)[:2] == [101.0, 1501.0]  # the blue circle's only hit second
    assert sorted(inspect_order(found)) == [101.0, 201.0, 301.0, 401.0, 501.0, 1501.0]


def test_retrieve_inspects_every_option_despite_a_captioners_false_hits() -> None:
    req = ToolRequest("v", 1800.0, 4.0, "Which one appears?", ["red star", "blue circle"],
                      "", "", n=2, tools=ToolSettings(max_calls=4))  # fmt: skip
    out = run_tools(req, Index(_clips()))
    assert out.times[:2] == [101.0, 1501.0]  # one moment per option first
    assert out.searches == ["red star, blue circle"] and 9 in out.clips


def test_options_that_name_nothing_to_look_for_are_not_searched() -> None:
    req = ToolRequest("v", 60.0, 4.0, "How many red objects?", ["0", "1", "2", "3"],
                      "red objects", "", n=4, tools=ToolSettings(max_calls=2))  # fmt: skip
    assert retrieve_plan(req) == ["red objects"]  # the look-for, not "0, 1, 2, 3"
    req.options = ["red circle", "nothing", "2:10.0-2:14.0"]
    assert retrieve_plan(req) == ["red circle"]


def test_a_bare_inspect_is_a_valid_call_and_inspects_what_was_found() -> None:
    assert parse_tool('{"tool": "inspect"}', 60.0).times == ()
    assert parse_tool('{"tool": "inspect", "times": ["0:12.5", 99]}', 60.0).times == (12.5,)
    with pytest.raises(ValueError, match="tool call"):
        parse_tool('{"tool": "inspect", "times": ["soon"]}', 60.0)
    replies = iter(['{"tool": "search", "query": "blue circle"}', '{"tool": "inspect"}'])
    model = ScriptedChatModel(lambda req: next(replies))
    req = ToolRequest("v", 1800.0, 4.0, "Where is the blue circle?", None, "", "", n=4,
                      tools=ToolSettings(max_calls=3))  # fmt: skip
    out = run_tools(req, Index(_clips()), model, SamplingParams())
    assert out.times == [1501.0] and out.searches == ["blue circle"] and not out.fallback
    assert [s["parsed"]["tool"] for s in out.steps] == ["search", "inspect"]
    assert out.steps[0]["parsed"]["surfaced"] == [[1500.0, 1502.0]]  # for step credit


def test_the_reasoner_reads_the_findings_and_the_captions_at_its_frames() -> None:
    text = index_context(Index(_clips()), "v", ["red star, blue circle"], [1501.0, 250.0])
    found, at = text.split("Captions at these frames:\n")
    assert found.splitlines() == [
        "Found in the index:",
        "red star: 5 moments: 1:40.0-1:42.0, 3:20.0-3:22.0, 5:00.0-5:02.0, 6:40.0-6:42.0, "
        "8:20.0-8:22.0",
        "blue circle: 1 moment: 25:00-25:02",
    ]
    # 250 s lies in no clip of this index: no caption for it
    assert at.splitlines() == ["25:01 green square top-right; blue circle bottom-left"]
    assert index_context(Index(_clips()), "v", [], []) == ""


def test_a_bare_inspect_looks_at_the_moment_the_question_names() -> None:
    replies = iter(['{"tool": "inspect"}'])
    model = ScriptedChatModel(lambda req: next(replies))
    req = ToolRequest("v", 1800.0, 4.0, "At 25:01, what is in the top-left part?",
                      ["red star", "blue circle"], "", "", n=4,
                      tools=ToolSettings(max_calls=2))  # fmt: skip
    out = run_tools(req, Index(_clips()), model, SamplingParams())
    assert out.times == [1501.0] and out.searches == ["red star, blue circle"]
    # without a model the baseline does the same; a time past the end is not a moment
    assert run_tools(req, Index(_clips())).times == [1501.0]
    req.question = "At 59:00, what is in the top-left part?"
    assert run_tools(req, Index(_clips())).times[:2] == [101.0, 1501.0]


def test_constrained_replies_are_the_well_formed_calls_on_the_question() -> None:
    question = "How many times does a blue object appear in the video?"
    req = ToolRequest("v", 240.0, 4.0, question, ["2", "1", "0", "3"], "",
                      "look near 1:40 for blue", n=4, tools=ToolSettings(max_calls=2))  # fmt: skip
    calls = tool_calls(req)
    assert calls[:3] == ['{"tool": "inspect"}', '{"tool": "zoom", "start": ',
                         '{"tool": "inspect", "times": [']  # fmt: skip
    queries = [parse_tool(c, 240.0).query for c in calls[3:]]
    # words and two-word phrases of the question and the feedback; no function words,
    # numbers or repeats; counts are not searched
    assert queries == ["times", "blue", "object", "appear", "blue object", "object appear",
                       "look"]  # fmt: skip
    req.options = ["red star", "nothing", "blue circle"]
    assert parse_tool(tool_calls(req)[3], 240.0).query == "red star, blue circle"
    req.question = " ".join(f"w{i} x{i}" for i in range(80))
    assert len(tool_calls(req)) == 64  # a backend's limit


def test_the_selector_requests_carry_the_calls_unless_free() -> None:
    model = ScriptedChatModel(lambda req: '{"tool": "inspect"}')
    req = ToolRequest("v", 1800.0, 4.0, "When is the red star visible?", None, "", "",
                      n=4, tools=ToolSettings(max_calls=2))  # fmt: skip
    run_tools(req, Index(_clips()), model, SamplingParams())
    assert model.calls[0].sampling.prefixes == tool_calls(req)
    req.tools = replace(req.tools, constrain=False)
    run_tools(req, Index(_clips()), model, SamplingParams())
    assert model.calls[1].sampling.prefixes == []


def _prompt(req: ChatRequest) -> str:
    return "".join(p.text for m in req.messages if not isinstance(m.content, str)
                   for p in m.content if isinstance(p, TextPart))  # fmt: skip


def test_find_searches_and_inspects_what_it_found_in_one_call() -> None:
    """``find`` is a search and then a bare inspect in one tool call: the same moments as the
    two calls, one step. It is among the constrained replies only when asked, and the prompt
    never names it (naming it changes which other call vidra-tiny picks)."""
    assert parse_tool('{"tool": "find", "query": "blue circle"}', 60.0) == ToolCall(
        tool="find", query="blue circle"
    )
    with pytest.raises(ValueError, match="tool call"):
        parse_tool('{"tool": "find"}', 60.0)  # nothing to search
    req = ToolRequest("v", 1800.0, 4.0, "Where is the blue circle?", None, "", "", n=4,
                      tools=ToolSettings(max_calls=3, find=True))  # fmt: skip
    model = ScriptedChatModel(lambda r: '{"tool": "find", "query": "blue circle"}')
    found = run_tools(req, Index(_clips()), model, SamplingParams())
    replies = iter(['{"tool": "search", "query": "blue circle"}', '{"tool": "inspect"}'])
    two = run_tools(req, Index(_clips()), ScriptedChatModel(lambda r: next(replies)),
                    SamplingParams())  # fmt: skip
    assert found.times == two.times == [1501.0] and found.searches == two.searches
    assert [s["parsed"]["tool"] for s in found.steps] == ["find"] and not found.fallback
    assert found.steps[0]["parsed"]["surfaced"] == [[1501.0, 1501.0]]  # what it inspected
    prompt, calls = _prompt(model.calls[0]), model.calls[0].sampling.prefixes
    assert prompt.startswith("[search/v3]") and '"find"' not in prompt
    # each phrase's find right after its search, so a cut at 64 keeps both for the first
    i = calls.index('{"tool": "search", "query": "blue circle"}')
    assert calls[i + 1] == '{"tool": "find", "query": "blue circle"}'
    assert len(calls) == 3 + 2 * len([c for c in calls if '"search"' in c])
    # not asked for: not among the replies, the same prompt
    req.tools = replace(req.tools, find=False)
    run_tools(req, Index(_clips()), model, SamplingParams())
    assert _prompt(model.calls[1]) == prompt
    calls = model.calls[1].sampling.prefixes
    assert not [c for c in calls if '"find"' in c] and calls == tool_calls(req)


def test_a_query_already_searched_is_not_offered_again() -> None:
    """The index gives a query the same moments each time, so the constrained replies leave
    out a search of a query already searched in the round (the options' search made before
    the first call included); its find stays. A trained selector searched one query four
    times on six long questions of the learning benchmark. ``repeat`` offers it again."""
    replies = iter(['{"tool": "search", "query": "blue circle"}', '{"tool": "inspect"}'])
    model = ScriptedChatModel(lambda r: next(replies))
    req = ToolRequest("v", 1800.0, 4.0, "When is the blue circle near the red star?",
                      ["red star", "blue circle"], "", "", n=4,
                      tools=ToolSettings(max_calls=3, find=True))  # fmt: skip
    out = run_tools(req, Index(_clips()), model, SamplingParams())
    assert out.searches == ["red star, blue circle", "blue circle"]
    first, second = (c.sampling.prefixes for c in model.calls)

    def search(q: str) -> str:
        return json.dumps({"tool": "search", "query": q})

    assert search("red star, blue circle") not in first and search("blue circle") in first
    assert search("blue circle") not in second and search("red star") in second
    assert json.dumps({"tool": "find", "query": "blue circle"}) in second
    assert set(first) - set(second) == {search("blue circle")}
    req.tools = replace(req.tools, repeat=True)
    assert tool_calls(req, out.searches) == tool_calls(req)
    assert search("blue circle") in tool_calls(req)


def test_exploring_turns_choose_among_one_kind_of_call() -> None:
    """``explore``: a sampled turn's replies are, that often, those of one kind drawn
    uniformly (so find, which vidra-tiny thinks 48 nats less likely than the search it picks,
    gets tried); all of them otherwise, and always when greedy."""
    req = ToolRequest("v", 240.0, 4.0, "When does the red star appear?", None, "", "", n=4,
                      tools=ToolSettings(max_calls=2, find=True, explore=0.5))  # fmt: skip
    calls = tool_calls(req)
    kinds = {call_kind(c) for c in calls}
    assert kinds == {'{"tool": "inspect"}', '{"tool": "zoom", "start": ',
                     '{"tool": "inspect", "times": [', '{"tool": "search", ',
                     '{"tool": "find", '}  # fmt: skip
    picks = [explored(req, calls, seed, 0) for seed in range(400)]
    narrowed = [p for p in picks if p != calls]
    assert all(len({call_kind(c) for c in p}) == 1 for p in narrowed)
    assert 0.4 < len(narrowed) / len(picks) < 0.6  # half the turns, each kind about as often
    assert {call_kind(p[0]) for p in narrowed} == kinds
    assert explored(req, calls, 7, 0) == explored(req, calls, 7, 0)  # a resumed rollout
    assert explored(req, calls, None, 0) == calls  # greedy
    req.tools = replace(req.tools, explore=0.0)
    assert all(explored(req, calls, seed, 0) == calls for seed in range(50))
