"""What vidra-tiny's video index says against what is on screen: the captions of every clip
of the held-out synthetic worlds and needle haystacks of `bench/eval.py`, compared with the
worlds' ground truth.

Per clip (its captioned frame): object precision and recall of ``colour shape place`` items,
as `vidra-tiny`'s own ``caption_accuracy``. Per needle question, what a search of the index
can offer the agents: how many of the needle's clips name its look, and how many moments
(clips naming a look, merged as the agents merge them) each option has: the needle's true
one, false ones of its look elsewhere, and those of the three options absent from the video
(all false). "Singled out": the needle's look has a true moment and no absent option has
any; "fewest": its look has a true moment and fewer moments than every absent option that
has one (the option a reader of the findings would take for "the one brief moment").

Usage: ``python bench/index_quality.py [--needles 8] [--worlds 24]
[--out bench/results/index_quality.json]``
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from eval import _settings
from report import emit, header


def _clips(rt: Any, path: Path) -> tuple[list[Any], float]:
    """Every clip of the video's index (built first if needed), in time order, and its fps."""
    from vidra import jobs

    vid = jobs.register_video(rt, path)
    rec = rt.index.ensure(vid)
    return rt.store.clips_between(rec.id, 0.0, float("inf")), rt.store.get_video(vid).fps


def _pairs(clips: list[Any], fps: float, world: Any) -> list[tuple[str, str]]:
    """Each clip's caption with the ground truth at its captioned frame."""
    from vidra.pipelines.oracle import ground_caption

    return [(c.caption, ground_caption(world, c.frames[0] / fps)) for c in clips]


def _rates(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    from vidra.pipelines.drills import caption_scores

    scores = caption_scores(pairs)
    return {"clips": scores.pop("moments"), **scores}


def _needle_row(clips: list[Any], fps: float, h: Any) -> dict[str, Any]:
    from vidra.agents.findings import Clip, find_moments
    from vidra.phrases import contains

    n = h.needle
    shows = [c for c in clips if n.start <= c.frames[0] / fps < n.end]
    hits = [Clip(c.id, c.t0, c.t1, c.caption) for c in clips]
    found = {f.alternative: f.moments for f in find_moments(", ".join(h.options), hits)}
    moments = {o: found[o] for o in h.options}
    true = [m for m in moments[n.name] if m.t0 < n.end and n.start < m.t1]
    absent = {o: len(ms) for o, ms in moments.items() if o != n.name}
    return {
        "tag": h.tag,
        "needle": n.name,
        "span": [n.start, n.end],
        "needle_clips": len(shows),
        "needle_clips_named": sum(contains(c.caption, n.name) for c in shows),
        "needle_look_moments": {"true": len(true), "false": len(moments[n.name]) - len(true)},
        "absent_option_moments": absent,
        "singled_out": bool(true) and not any(absent.values()),
        "fewest": bool(true) and all(k == 0 or len(moments[n.name]) < k for k in absent.values()),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--needles", type=int, default=8, help="haystacks per length (30, 60 min)")
    ap.add_argument("--worlds", type=int, default=24, help="4-minute worlds (seed 100...)")
    ap.add_argument("--home", type=Path, default=None, help="work dir (default: a temp dir)")
    ap.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    args = ap.parse_args()

    import torch
    import transformers

    import vidra
    from vidra.evals.needle import render_with_needle, with_needle
    from vidra.evals.tasks.needle import synthetic_haystacks, synthetic_video
    from vidra.pipelines.heldout import synthetic_world, synthetic_worlds
    from vidra.runtime import Runtime

    torch.set_num_threads(2)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        home = args.home or Path(tmp)
        videos = home / "videos"
        videos.mkdir(parents=True, exist_ok=True)
        short: list[tuple[str, str]] = []
        long: list[tuple[str, str]] = []
        needles = []
        settings = _settings(home, 16)
        with Runtime(settings, executor_ok=False) as rt:
            seeds = list(range(100, 100 + args.worlds))
            for seed, (video, _) in zip(seeds, synthetic_worlds(videos, seeds, 240.0), strict=True):
                clips, fps = _clips(rt, video)
                short += _pairs(clips, fps, synthetic_world(seed, 240.0))
            for h in synthetic_haystacks(100, (30.0, 60.0), args.needles):
                video = render_with_needle(h.world, h.needle, synthetic_video(videos, h))
                clips, fps = _clips(rt, video)
                long += _pairs(clips, fps, with_needle(h.world, h.needle))
                needles.append(_needle_row(clips, fps, h))
                print(f"{h.tag}: {needles[-1]}", file=sys.stderr, flush=True)

    absent = [k for r in needles for k in r["absent_option_moments"].values()]
    report = header("index_quality", vidra=vidra.__version__, torch=torch.__version__,
                    transformers=transformers.__version__)  # fmt: skip
    report |= {
        "model": str(settings.model.path),
        "short_worlds": {"worlds": args.worlds, "seed": 100, "duration": 240, **_rates(short)},
        "needle_haystacks": {
            "minutes": [30, 60],
            "count": args.needles,
            "seed": 100,
            **_rates(long),
        },
        "needles": {
            "questions": len(needles),
            "needle_clips": sum(r["needle_clips"] for r in needles),
            "needle_clips_named": sum(r["needle_clips_named"] for r in needles),
            "needle_look_true_moment": sum(r["needle_look_moments"]["true"] > 0 for r in needles),
            "needle_look_false_moments_mean": round(
                statistics.fmean(r["needle_look_moments"]["false"] for r in needles), 2
            ),
            "absent_option_moments_mean": round(statistics.fmean(absent), 2),
            "absent_options_without_moment": round(sum(k == 0 for k in absent) / len(absent), 3),
            "singled_out": sum(r["singled_out"] for r in needles),
            "fewest": sum(r["fewest"] for r in needles),
        },
        "per_needle": needles,
        "seconds": round(time.perf_counter() - t0),
        "command": " ".join(["python bench/index_quality.py", *sys.argv[1:]]),
    }
    emit(report, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
