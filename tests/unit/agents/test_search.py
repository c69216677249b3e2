"""The search tools' ranking: a query listing alternatives gets each one's best hits in turn,
so a captioner's false hits for one option cannot crowd out another's only true hit."""

from __future__ import annotations

from collections.abc import Sequence

from vidra.agents.search import Clip, ToolRequest, interleave, merge_hits, run_tools


class Index:
    """A `VideoIndex` over fixed captions: a clip matches a query sharing a whole phrase."""

    def __init__(self, clips: Sequence[Clip]) -> None:
        self.all = list(clips)

    def search(self, video_id: str, query: str, k: int) -> list[Clip]:
        alts = [a.strip() for a in query.split(",")]
        hits = [c for c in self.all if any(a in c.caption for a in alts)]
        return sorted(hits, key=lambda c: -c.score)[:k]

    def window(self, video_id: str, t0: float, t1: float) -> list[Clip]:
        return [c for c in self.all if c.t1 > t0 and c.t0 < t1]

    def clips(self, ids: Sequence[int]) -> list[Clip]:
        return sorted((c for c in self.all if c.id in set(ids)), key=lambda c: c.t0)


def _clips() -> list[Clip]:
    # five false "red star" hits score above the one true "blue circle" hit
    reds = [Clip(k, 100.0 * k, 100.0 * k + 2, "red star top-left", 12.9) for k in range(1, 6)]
    return [*reds, Clip(9, 1500.0, 1502.0, "green square top-right; blue circle bottom-left", 12.1)]


def test_interleave_gives_each_alternative_its_best_segment_in_turn() -> None:
    segs = merge_hits(_clips())
    assert [s.caption for s in segs[:2]] == ["red star top-left"] * 2  # by score alone
    mixed = interleave(segs, "red star, blue circle")
    assert mixed[0].t0 == 100.0 and mixed[1].t0 == 1500.0  # the blue circle's only hit second
    assert sorted(s.t0 for s in mixed) == sorted(s.t0 for s in segs)  # nothing lost
    assert interleave(segs, "red star") == segs  # one alternative: order kept


def test_retrieve_inspects_every_option_despite_a_captioners_false_hits() -> None:
    req = ToolRequest("v", 1800.0, 4.0, "Which one appears?", ["red star", "blue circle"],
                      "", "", n=2, max_calls=4)  # fmt: skip
    out = run_tools(req, Index(_clips()))
    assert sorted(out.times) == [101.0, 1501.0]  # one moment per option
