"""Frame selector strategies on a real synthetic video: the budget/seen/range contract,
where each strategy looks, and the ``model`` strategy's storyboard step and fallbacks.

The video is a 60 s, 4 fps synthetic world with five background-colour scenes and no
objects, so its shots are known; frames are read through `vidra.video.open_reader`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from vidra.agents import Plan, SelectRequest, SelectResult, VideoFacts, select_frames
from vidra.agents.selector import STRATEGIES
from vidra.errors import ConfigError
from vidra.models.protocol import ChatRequest, SamplingParams
from vidra.models.scripted import ScriptedChatModel
from vidra.video import CachedReader, Segment, detect_shots, open_reader, uniform_indices
from vidra.video.synthetic import WorldSpec, make_world, render_world

FPS = 4.0
DURATION = 60.0


class Video:
    """The test video, its reader, facts and detected shots."""

    def __init__(self, path: Path, reader: CachedReader) -> None:
        info = reader.probe(path)
        self.path = path
        self.reader = reader
        self.facts = VideoFacts("vid", str(path), info.duration, info.fps, info.frame_count)
        self.shots: list[Segment] = detect_shots(reader, path)


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Video:
    spec = WorldSpec(
        duration=DURATION,
        fps=FPS,
        width=64,
        height=36,
        seed=2,
        min_scene_s=8,
        max_scene_s=16,
        objects_per_minute=0,
        needles=0,
    )
    world = make_world(spec)
    path = render_world(world, tmp_path_factory.mktemp("selector") / "scenes.mp4", gop_s=4)
    v = Video(path, open_reader())
    assert v.facts.frame_count == 240 and v.facts.fps == FPS
    assert len(world.scenes) >= 4 and len(v.shots) == len(world.scenes)
    return v


def request(video: Video, model: ScriptedChatModel | None = None, **kw: Any) -> SelectRequest:
    fields: dict[str, Any] = {
        "facts": video.facts,
        "question": "What colour is the background when the scene changes?",
        "plan": Plan(),
        "seen": set(),
        "n": 8,
        "round": 0,
        "model": model if model is not None else ScriptedChatModel([]),
        "reader": video.reader,
        "sampling": SamplingParams(),
    }
    fields.update(kw)
    return SelectRequest(**fields)


def selection(times: list[float | str], segments: list[list[float]] | None = None) -> str:
    return json.dumps({"times": times, "segments": segments or []})


def fixed(text: str) -> Callable[[ChatRequest], str]:
    return lambda _req: text


def window(video: Video, t: float, seen: int, n: int) -> range:
    """The frames `coarse_to_fine` may pick around ``t`` (same formula as the selector)."""
    facts = video.facts
    width = max(4.0, facts.duration / max(8, seen + n))
    a = facts.index_at(max(0.0, t - width / 2))
    b = facts.index_at(min(facts.duration, t + width / 2)) + 1
    return range(a, b)


# -- the contract every strategy keeps ------------------------------------------------------

SEEN_CASES = {
    "nothing": set(),
    "uniform16": set(uniform_indices(240, 16)),
    "first_half": set(range(0, 120)),
    "scattered": {0, 1, 2, 30, 31, 100, 101, 102, 200, 239},
}


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
@pytest.mark.parametrize("seen_name", sorted(SEEN_CASES))
@pytest.mark.parametrize(("n", "rnd"), [(1, 0), (5, 1), (12, 2)])
def test_contract(video: Video, strategy: str, seen_name: str, n: int, rnd: int) -> None:
    seen = SEEN_CASES[seen_name]
    model = ScriptedChatModel(fixed(selection([1.0, 7.5, 30.0, 59.0], [[20, 26]])))
    req = request(
        video,
        model,
        seen=set(seen),
        n=n,
        round=rnd,
        evidence=[30.0, 45.5] if rnd else [],
        plan=Plan(hints=[(10.0, 14.0)]) if rnd == 2 else Plan(),
    )
    out = select_frames(strategy, req).indices
    assert len(out) == n  # never more; here never fewer, as >= 120 frames are unseen
    assert len(set(out)) == len(out)
    assert not set(out) & seen
    assert all(0 <= i < video.facts.frame_count for i in out)
    assert out == sorted(out)
    assert req.seen == seen  # the request's seen set is not modified


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_returns_exactly_the_unseen_remainder(video: Video, strategy: str) -> None:
    left = {3, 117, 238}
    seen = set(range(video.facts.frame_count)) - left
    model = ScriptedChatModel(fixed(selection([0.25, 29.25])))  # both already seen
    out = select_frames(strategy, request(video, model, seen=seen, n=8, round=1)).indices
    assert out == sorted(left)


def test_a_last_unseen_frame_is_found_with_n_1(video: Video) -> None:
    seen = set(range(video.facts.frame_count)) - {1}
    assert select_frames("uniform", request(video, seen=seen, n=1)).indices == [1]


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
@pytest.mark.parametrize("n", [0, -3])
def test_no_budget_no_frames_and_no_model_call(video: Video, strategy: str, n: int) -> None:
    model = ScriptedChatModel(fixed(selection([10.0])))
    result = select_frames(strategy, request(video, model, n=n))
    assert result.indices == [] and result.steps == [] and not result.fallback
    assert model.calls == []


def test_unknown_strategy_is_a_config_error(video: Video) -> None:
    with pytest.raises(ConfigError, match=r"unknown selector strategy 'random'.*uniform"):
        select_frames("random", request(video))


# -- uniform ------------------------------------------------------------------------------


def test_uniform_spreads_over_the_whole_video(video: Video) -> None:
    out = select_frames("uniform", request(video, n=8)).indices
    assert out == [15, 45, 75, 105, 135, 165, 195, 225]  # slot centres of 8 x 30 frames
    assert {i // 30 for i in out} == set(range(8)) and largest_gap(out, 240) == 30


def largest_gap(indices: list[int], frame_count: int) -> int:
    return max(b - a for a, b in zip([0, *indices], [*indices, frame_count], strict=True))


def test_uniform_with_seen_frames_still_covers_the_video(video: Video) -> None:
    seen = set(uniform_indices(240, 8))
    out = select_frames("uniform", request(video, seen=seen, n=8)).indices
    assert len(out) == 8
    assert largest_gap(out, 240) <= 60, out


# -- coarse_to_fine ------------------------------------------------------------------------


def test_coarse_to_fine_round_zero_without_hints_is_uniform(video: Video) -> None:
    coarse = select_frames("coarse_to_fine", request(video, n=8, evidence=[30.0]))
    assert coarse.indices == select_frames("uniform", request(video, n=8)).indices


def test_coarse_to_fine_round_zero_looks_inside_the_hint(video: Video) -> None:
    req = request(video, n=8, plan=Plan(hints=[(20.0, 24.0)]))
    out = select_frames("coarse_to_fine", req).indices
    win = window(video, 22.0, 0, 8)
    assert len(out) == 8 and all(i in win for i in out)
    assert (win.start, win.stop) == (73, 104)  # 22 s +- 3.75 s at 4 fps


@pytest.mark.parametrize(
    ("evidence", "seen"),
    [([30.0], set()), ([30.0], set(range(200, 216))), ([5.0, 50.0], {0, 60, 61, 239})],
)
def test_coarse_to_fine_later_rounds_concentrate_on_the_evidence(
    video: Video, evidence: list[float], seen: set[int]
) -> None:
    req = request(video, n=8, round=1, evidence=evidence, seen=seen)
    out = select_frames("coarse_to_fine", req).indices
    windows = [window(video, t, len(seen), 8) for t in evidence]
    assert len(out) == 8
    assert all(any(i in w for w in windows) for i in out)
    for w in windows:  # each evidence time gets its share
        assert sum(i in w for i in out) == 8 // len(evidence)


def test_coarse_to_fine_evidence_wins_over_hints(video: Video) -> None:
    req = request(video, n=6, round=1, evidence=[50.0], plan=Plan(hints=[(0.0, 8.0)]))
    out = select_frames("coarse_to_fine", req).indices
    assert all(i in window(video, 50.0, 0, 6) for i in out)


def test_coarse_to_fine_without_evidence_or_hints_later_is_uniform(video: Video) -> None:
    out = select_frames("coarse_to_fine", request(video, n=8, round=2)).indices
    assert out == select_frames("uniform", request(video, n=8)).indices


@pytest.mark.parametrize(
    ("evidence", "seen"),
    [
        ([10.0, 30.0, 50.0], set()),  # 8 frames, 3 times: 2 + 2 + 2, then 2 anywhere
        ([30.0], set(uniform_indices(240, 16))),  # frame 127 of the window grid was seen
    ],
    ids=["remainder", "seen-in-window"],
)
def test_coarse_to_fine_keeps_every_frame_near_the_evidence(
    video: Video, evidence: list[float], seen: set[int]
) -> None:
    req = request(video, n=8, round=1, evidence=evidence, seen=seen)
    out = select_frames("coarse_to_fine", req).indices
    windows = [window(video, t, len(seen), 8) for t in evidence]
    assert sum(len(w) for w in windows) - len(seen & set().union(*windows)) >= 8
    assert all(any(i in w for w in windows) for i in out), out


def test_coarse_to_fine_follows_critic_feedback(video: Video) -> None:
    req = request(video, n=8, round=1, feedback="look again near 0:40")
    out = select_frames("coarse_to_fine", req).indices
    assert all(i in window(video, 40.0, 0, 8) for i in out), out


# -- shots ----------------------------------------------------------------------------------


def shot_of(video: Video, index: int) -> int:
    return next(k for k, s in enumerate(video.shots) if s.start_index <= index < s.end_index)


def test_shots_one_frame_inside_each_shot(video: Video) -> None:
    shots = video.shots
    out = select_frames("shots", request(video, n=len(shots))).indices
    assert [shot_of(video, i) for i in out] == list(range(len(shots)))
    assert out == [(s.start_index + s.end_index) // 2 for s in shots]  # the middle of each


def test_shots_with_spare_budget_still_cover_every_shot(video: Video) -> None:
    n = len(video.shots) + 3
    out = select_frames("shots", request(video, n=n)).indices
    assert len(out) == n
    assert {shot_of(video, i) for i in out} == set(range(len(video.shots)))


def test_shots_with_a_small_budget_take_distinct_shots(video: Video) -> None:
    out = select_frames("shots", request(video, n=3)).indices
    assert len(out) == 3 and len({shot_of(video, i) for i in out}) == 3


def test_shots_spare_budget_is_shared_and_avoids_cut_frames(video: Video) -> None:
    shots = video.shots
    out = select_frames("shots", request(video, n=2 * len(shots))).indices
    per_shot = [sum(s.start_index <= i < s.end_index for i in out) for s in shots]
    cuts = {s.start_index for s in shots[1:]}
    assert per_shot == [2] * len(shots) and not cuts & set(out), out


# -- model ----------------------------------------------------------------------------------


def test_model_returns_the_frames_at_the_named_times_and_segments(video: Video) -> None:
    model = ScriptedChatModel([selection([10.0, "0:20.5"], [[40, 42]])])
    result = select_frames("model", request(video, model, n=8))
    assert not result.fallback
    # times at 4 fps: 10 s -> 40, 20.5 s -> 82; the segment gets the other 6 frames
    assert result.indices[:2] == [40, 82]
    assert len(result.indices) == 8 and all(160 <= i <= 168 for i in result.indices[2:])


def test_model_skips_seen_times_and_tops_up_to_n(video: Video) -> None:
    model = ScriptedChatModel([selection([10.0, 30.0])])
    result = select_frames("model", request(video, model, n=4, seen={40}))
    assert not result.fallback and 120 in result.indices and 40 not in result.indices
    assert len(result.indices) == 4


def test_model_records_a_selector_step_over_the_storyboard(video: Video) -> None:
    model = ScriptedChatModel([selection([10.0])])
    req = request(video, model, n=4, feedback="look at the end", storyboard_size=6)
    result = select_frames("model", req)
    _, times = video.reader.thumbnails(video.path, 6, size=112)
    assert [step["role"] for step in result.steps] == ["selector"]
    step = result.steps[0]
    assert step["parse_ok"] and step["parsed"] == {"times": [10.0], "segments": []}
    assert step["frames"] == [["vid", video.facts.index_at(t)] for t in times]
    assert len(step["frames"]) >= 4
    assert step["prompt"].count("<image t=") == len(times)
    assert "Critic feedback: look at the end" in step["prompt"]
    assert "at most 4 frames" in step["prompt"]


def test_model_repaired_output_is_used(video: Video) -> None:
    model = ScriptedChatModel(["I would look around the middle.", selection([30.0])])
    result = select_frames("model", request(video, model, n=1))
    assert result.indices == [120] and not result.fallback
    assert [s["parse_ok"] for s in result.steps] == [False, True]
    assert len(model.calls) == 2 and model.calls[1].messages[-1].role == "user"


@pytest.mark.parametrize(
    "outputs",
    [
        ["no idea", "still no idea"],
        [selection([999.0]), '{"segments": [[70, 80]]}'],  # all outside the 60 s video
    ],
)
def test_model_falls_back_to_uniform_after_a_failed_repair(
    video: Video, outputs: list[str]
) -> None:
    model = ScriptedChatModel(outputs)
    result = select_frames("model", request(video, model, n=8))
    assert result.fallback
    assert result.indices == select_frames("uniform", request(video, n=8)).indices
    assert [s["parse_ok"] for s in result.steps] == [False, False]


def test_model_naming_only_seen_frames_falls_back_to_uniform(video: Video) -> None:
    seen = {40, 41, 42, 120}
    model = ScriptedChatModel([selection([10.0, 10.25, 30.0], [[10.4, 10.5]])])
    result: SelectResult = select_frames("model", request(video, model, n=6, seen=seen))
    assert result.fallback
    assert [s["parse_ok"] for s in result.steps] == [True]  # parsed fine, but nothing new
    uniform = select_frames("uniform", request(video, n=6, seen=seen)).indices
    assert result.indices == uniform and not set(uniform) & seen
