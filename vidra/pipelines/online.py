"""Online GRPO: answer fresh synthetic-world questions with G rollouts under the current
champions, train on exactly those episodes, repeat.

``overlap=True`` keeps collecting while the next version trains (verl's asynchronous mode,
on one machine): the questions of iteration k+1 are answered by the current champion while
cycle k trains, so cycle k+1 learns from episodes up to one version behind; the staleness
bound (``max_staleness``) drops anything older, and GRPO's ratio uses the recorded sampling
logprobs, so off-policy steps are corrected.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import zip_longest
from pathlib import Path
from typing import Any

from vidra.config import Settings
from vidra.errors import InvalidInput
from vidra.pipelines.retrain import RetrainResult, retrain

__all__ = ["ONLINE_ALGOS", "OnlineReport", "collect", "online"]

ONLINE_ALGOS = ("grpo", "sft", "sft+grpo")  # the recipes a cycle can train with
_EXTRA = 10**9  # seeds of an iteration's second and later fresh worlds start here
# questions of each kind one fresh world gives at most: a 5-minute world holds ~47 ordering and
# ~47 state questions but ~10 grounding, ~8 counting and one needle, so drawing many from a few
# worlds trained mostly on the two easy kinds; 3 per kind (as the benchmark's worlds) keeps a
# cycle's questions as balanced as the benchmark and spreads them over ~18 worlds for 232
_PER_KIND = 3

log = logging.getLogger(__name__)


@dataclass
class OnlineReport:
    """The cycles of an online run and where the time went."""

    results: list[RetrainResult] = field(default_factory=list)
    collect_s: list[float] = field(default_factory=list)
    asked: list[int] = field(default_factory=list)  # questions each collection asked
    train_s: list[float] = field(default_factory=list)
    wall_s: float = 0.0


def _pool(settings: Settings, seed: int, worlds: int) -> list[tuple[Path, Any]]:
    """Every question of a fixed set of training worlds (rendered once)."""
    from vidra.pipelines.heldout import synthetic_worlds

    root = Path(settings.data_dir) / "online" / "pool"
    seeds = [seed * 1000 + 500 + k for k in range(worlds)]
    return [(v, q) for v, qs in synthetic_worlds(root, seeds, 300, per_kind=4) for q in qs]


def _fresh_seed(seed: int, it: int, w: int) -> int:
    """World ``w`` of iteration ``it``: the first keeps the one-world seed of earlier runs
    (``seed * 1000 + it``), the others sit in a range of their own above ``_EXTRA`` (no
    iteration's first world collides with them, also at ``seed=0``)."""
    base = seed * 1000 + it
    return base if w == 0 else _EXTRA + base * 1000 + w


def _pick(settings: Settings, it: int, questions: int, seed: int, curriculum: bool) -> list[Any]:
    """``(video, question)`` pairs for iteration ``it``: fresh worlds' questions, at most
    ``_PER_KIND`` of each kind per 5-minute world and as many worlds as ``questions`` needs
    (one gives about 13), or (with ``curriculum``) the pool's most informative ones by their
    recorded pass rates."""
    from vidra.pipelines.heldout import synthetic_world
    from vidra.video.synthetic import KINDS, generate_questions, render_world

    if not curriculum:
        picked: list[Any] = []
        per_kind = min(_PER_KIND, questions // len(KINDS) + 1)
        for w in range(questions):  # every world gives at least one question
            if len(picked) >= questions:
                break
            world = synthetic_world(_fresh_seed(seed, it, w), 300)
            name = "video.mp4" if w == 0 else f"video-{w}.mp4"
            video = render_world(world, Path(settings.data_dir) / "online" / f"it{it}" / name)
            asked = generate_questions(world, per_kind=per_kind, seed=seed + it + w)
            # round robin over the kinds, so that a world asked only in part stays balanced
            by_kind = [[q for q in asked if q.kind == k] for k in KINDS]
            asked = [q for tier in zip_longest(*by_kind) for q in tier if q is not None]
            picked += [(video, q) for q in asked[: questions - len(picked)]]
        return picked
    from vidra.rl.curriculum import order_by_curriculum
    from vidra.storage import TrajectoryStore, question_key
    from vidra.video import content_hash

    pool = _pool(settings, seed, worlds=4)
    hashes = {v: content_hash(v) for v, _ in pool}

    def key(item: tuple[Path, Any]) -> str:
        return question_key(hashes[item[0]], item[1].text, item[1].options)

    with TrajectoryStore(settings=settings) as store:
        rates = store.pass_rates([key(x) for x in pool])
    return order_by_curriculum(pool, key, rates)[:questions]


def _collect(
    settings: Settings, it: int, questions: int, rollouts: int, seed: int, curriculum: bool
) -> tuple[float, int]:
    """Answer iteration ``it``'s questions with the current champions: seconds taken and
    questions asked."""
    from vidra import jobs
    from vidra.evals.tasks.synthetic import evidence_spans
    from vidra.runtime import Runtime

    t0 = time.perf_counter()
    picked = _pick(settings, it, questions, seed, curriculum)
    with Runtime(settings) as rt:  # a new runtime loads the latest champions
        ids = [
            jobs.submit(rt, v, q.text, q.options, q.answer, rollouts, evidence=evidence_spans(q))
            for v, q in picked
        ]
        for job_id in ids:
            jobs.wait(rt, job_id)
    return time.perf_counter() - t0, len(picked)


def collect(
    settings: Settings, questions: int, rollouts: int = 4, seed: int = 0, iteration: int = 0
) -> int:
    """Answer one online iteration's fresh questions ``rollouts`` times each with the current
    champions and record them, with their evidence spans, without training (the questions of
    iteration ``iteration`` of ``online`` with this ``seed`` and no curriculum: each iteration
    has worlds and videos of its own, so collections of several iterations add up); returns
    the number of questions asked. Training several variants from one collection
    (``retrain(..., since_run="all")``) compares them on the same episodes; GRPO needs
    ``rollouts >= 2``."""
    if rollouts < 1 or questions < 1 or iteration < 0:
        raise InvalidInput("collecting needs questions >= 1, rollouts >= 1 and iteration >= 0")
    settings = settings.model_copy(deep=True)
    settings.mlflow.use_champions = True
    return _collect(settings, iteration, questions, rollouts, seed, curriculum=False)[1]


def online(
    settings: Settings,
    iterations: int,
    questions: int = 4,
    rollouts: int = 4,
    roles: Sequence[str] | None = None,
    seed: int = 0,
    overlap: bool = False,
    max_staleness: int | None = None,
    curriculum: bool = False,
    algo: str = "grpo",
) -> OnlineReport:
    """``iterations`` cycles of collect-then-train (``overlap``: collect the next batch
    while the current one trains; ``curriculum``: ask the pool's questions whose recorded
    pass rate is nearest one half, instead of a fresh world's; ``algo``: each cycle's recipe,
    ``grpo``; ``sft``, rejection-sampling SFT on the cycle's right episodes; or ``sft+grpo``,
    that SFT and then GRPO from its adapters)."""
    if iterations <= 0 or rollouts < 2 or questions < 1:
        raise InvalidInput("online cycles need iterations >= 1, questions >= 1 and rollouts >= 2")
    if algo not in ONLINE_ALGOS:
        known = f"{', '.join(ONLINE_ALGOS[:-1])} or {ONLINE_ALGOS[-1]}"
        raise InvalidInput(f"online cycles train with {known}, not {algo!r}")
    staleness = max_staleness if max_staleness is not None else (1 if overlap else None)
    settings = settings.model_copy(deep=True)
    settings.mlflow.use_champions = True  # collect with the current champions, always
    report = OnlineReport()
    t0 = time.perf_counter()

    def gather(it: int) -> None:
        seconds, asked = _collect(settings, it, questions, rollouts, seed, curriculum)
        report.collect_s.append(seconds)
        report.asked.append(asked)

    gather(0)
    for it in range(iterations):
        trained: list[RetrainResult] = []
        started = time.perf_counter()

        def train(into: list[RetrainResult] = trained) -> None:
            into.append(retrain(settings, algo, roles, since_run="last",
                                max_staleness=staleness))  # fmt: skip

        worker = threading.Thread(target=train, name=f"vidra-online-{it}")
        worker.start()
        if overlap and it + 1 < iterations:  # the next batch, while this one trains
            gather(it + 1)
        worker.join()
        if not trained:
            raise InvalidInput(f"online iteration {it}: the retraining cycle failed (see log)")
        report.train_s.append(time.perf_counter() - started)
        report.results.append(trained[0])
        log.info("online iteration %d: %s", it, trained[0].summary())
        if not overlap and it + 1 < iterations:
            gather(it + 1)
    report.wall_s = time.perf_counter() - t0
    return report
