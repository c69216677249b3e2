"""Held-out evaluation on synthetic worlds: real jobs with the configured model and agents,
greedy; accuracy (overall and by question kind), frames, rounds and latency per question,
per-role format rate and selector hit rate (the reasoner was shown a frame within 2 s of a
time that shows the answer). Used by `vidra model train-tiny`, the demo and
`bench/learning.py`.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vidra.config import Settings
from vidra.video.synthetic import (
    Question,
    WorldSpec,
    generate_questions,
    make_world,
    render_world,
)
from vidra.video.synthetic import World as SyntheticWorld
from vidra.video.synthetic.questions import evidence_times

if TYPE_CHECKING:
    from vidra.runtime import Runtime

__all__ = ["evaluate", "synthetic_world", "synthetic_worlds"]

World = tuple[Path, list[Question]]


def synthetic_world(seed: int, duration: float, fps: float = 4) -> SyntheticWorld:
    """The 160x90 world `synthetic_worlds` renders for ``seed``."""
    return make_world(WorldSpec(duration=duration, fps=fps, width=160, height=90, seed=seed))


def synthetic_worlds(
    root: Path, seeds: Sequence[int], duration: float, per_kind: int = 3, fps: float = 4
) -> list[World]:
    """Render (or reuse) one 160x90 world video per seed under ``root`` with its questions."""
    out = []
    for seed in seeds:
        world = synthetic_world(seed, duration, fps)
        video = root / f"world-{seed}-{duration:g}s.mp4"
        if not video.is_file():
            render_world(world, video, gop_s=4)
        out.append((video, generate_questions(world, per_kind=per_kind)))
    return out


def _mean(xs: Sequence[float]) -> float:
    return round(sum(xs) / max(1, len(xs)), 4)


def evaluate(
    settings: Settings,
    worlds: Sequence[World],
    adapters: dict[str, str] | None = None,
    limit: int | None = None,
) -> dict[str, Any]:
    """Answer every question of ``worlds`` (at most ``limit``) in a scratch store, removed
    afterwards, with ``settings``' model and agents plus ``adapters`` (no champion lookup)."""
    from vidra.runtime import Runtime

    s = settings.model_copy(deep=True)
    s.model.adapters = dict(adapters or {})
    s.mlflow.use_champions = False
    with tempfile.TemporaryDirectory(prefix="vidra-eval-") as tmp:
        s.database_url = f"sqlite:///{Path(tmp) / 'eval.db'}"
        with Runtime(s) as rt:
            return _answer(rt, worlds, limit)


def _answer(rt: Runtime, worlds: Sequence[World], limit: int | None) -> dict[str, Any]:
    from vidra import jobs

    s = rt.settings
    by_kind: dict[str, list[float]] = {}
    frames, rounds, latency, hits = [], [], [], []
    fmt: dict[str, list[float]] = {}
    per_question: list[dict[str, Any]] = []
    left = limit if limit is not None else 10**9
    for video, questions in worlds:
        if left <= 0:
            break
        fps = rt.reader.probe(video).fps
        submitted = [
            (q, jobs.submit(rt, video, q.text, options=q.options, answer=q.answer))
            for q in questions[:left]
        ]
        left -= len(submitted)
        for q, job_id in submitted:
            ans = jobs.wait(rt, job_id, timeout=900)
            t = rt.store.get_episode(ans.episode_id)
            by_kind.setdefault(q.kind, []).append(ans.rewards.get("accuracy", 0.0))
            frames.append(t.episode.frames_used)
            rounds.append(t.episode.rounds)
            latency.append(t.episode.latency_s)
            seen = {i for st in t.steps if st.role == "reasoner" for _, i in st.frames}
            targets = evidence_times(q)
            hits.append(float(any(abs(i / fps - e) <= 2.0 for i in seen for e in targets)))
            for st in t.steps:
                fmt.setdefault(st.role, []).append(float(st.parse_ok))
            per_question.append(
                {
                    "id": q.id,
                    "kind": q.kind,
                    "video": str(video),
                    "correct": ans.rewards.get("accuracy", 0.0),
                    "frames": t.episode.frames_used,
                }
            )
    everything = [x for v in by_kind.values() for x in v]
    return {
        "questions": len(everything),
        "accuracy": _mean(everything),
        "accuracy_by_kind": {k: _mean(v) for k, v in sorted(by_kind.items())},
        "frames_per_question": _mean(frames),
        "rounds_per_question": _mean(rounds),
        "latency_s": _mean(latency),
        "selector_hit_rate": _mean(hits),
        "format_rate": {k: _mean(v) for k, v in sorted(fmt.items())},
        "strategy": s.agents.strategy,
        "per_question": per_question,
    }
