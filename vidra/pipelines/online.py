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
from pathlib import Path
from typing import Any

from vidra.config import Settings
from vidra.errors import InvalidInput
from vidra.pipelines.retrain import RetrainResult, retrain

__all__ = ["ONLINE_ALGOS", "OnlineReport", "online"]

ONLINE_ALGOS = ("grpo", "sft+grpo")  # the recipes a cycle can train with

log = logging.getLogger(__name__)


@dataclass
class OnlineReport:
    """The cycles of an online run and where the time went."""

    results: list[RetrainResult] = field(default_factory=list)
    collect_s: list[float] = field(default_factory=list)
    train_s: list[float] = field(default_factory=list)
    wall_s: float = 0.0


def _pool(settings: Settings, seed: int, worlds: int) -> list[tuple[Path, Any]]:
    """Every question of a fixed set of training worlds (rendered once)."""
    from vidra.pipelines.heldout import synthetic_worlds

    root = Path(settings.data_dir) / "online" / "pool"
    seeds = [seed * 1000 + 500 + k for k in range(worlds)]
    return [(v, q) for v, qs in synthetic_worlds(root, seeds, 300, per_kind=4) for q in qs]


def _pick(settings: Settings, it: int, questions: int, seed: int, curriculum: bool) -> list[Any]:
    """``(video, question)`` pairs for iteration ``it``: a fresh world's questions, or (with
    ``curriculum``) the pool's most informative ones by their recorded pass rates."""
    from vidra.video.synthetic import WorldSpec, generate_questions, make_world, render_world

    if not curriculum:
        world = make_world(
            WorldSpec(duration=300, fps=4, width=160, height=90, seed=seed * 1000 + it)
        )
        video = render_world(world, Path(settings.data_dir) / "online" / f"it{it}" / "video.mp4")
        asked = generate_questions(world, per_kind=max(1, questions // 5 + 1), seed=seed + it)
        return [(video, q) for q in asked[:questions]]
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
) -> float:
    """Answer iteration ``it``'s questions with the current champions; seconds taken."""
    from vidra import jobs
    from vidra.runtime import Runtime

    t0 = time.perf_counter()
    picked = _pick(settings, it, questions, seed, curriculum)
    with Runtime(settings) as rt:  # a new runtime loads the latest champions
        ids = [jobs.submit(rt, v, q.text, q.options, q.answer, rollouts) for v, q in picked]
        for job_id in ids:
            jobs.wait(rt, job_id)
    return time.perf_counter() - t0


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
    ``grpo`` or ``sft+grpo``, rejection-sampling SFT on the cycle's best episodes first)."""
    if iterations <= 0 or rollouts < 2:
        raise InvalidInput("online GRPO needs iterations >= 1 and rollouts >= 2")
    if algo not in ONLINE_ALGOS:
        raise InvalidInput(f"online cycles train with {' or '.join(ONLINE_ALGOS)}, not {algo!r}")
    staleness = max_staleness if max_staleness is not None else (1 if overlap else None)
    settings = settings.model_copy(deep=True)
    settings.mlflow.use_champions = True  # collect with the current champions, always
    report = OnlineReport()
    t0 = time.perf_counter()

    def collect(it: int) -> None:
        report.collect_s.append(_collect(settings, it, questions, rollouts, seed, curriculum))

    collect(0)
    for it in range(iterations):
        trained: list[RetrainResult] = []
        started = time.perf_counter()

        def train(into: list[RetrainResult] = trained) -> None:
            into.append(retrain(settings, algo, roles, since_run="last",
                                max_staleness=staleness))  # fmt: skip

        worker = threading.Thread(target=train, name=f"vidra-online-{it}")
        worker.start()
        if overlap and it + 1 < iterations:  # the next batch, while this one trains
            report.collect_s.append(
                _collect(settings, it + 1, questions, rollouts, seed, curriculum)
            )
        worker.join()
        if not trained:
            raise InvalidInput(f"online iteration {it}: the retraining cycle failed (see log)")
        report.train_s.append(time.perf_counter() - started)
        report.results.append(trained[0])
        log.info("online iteration %d: %s", it, trained[0].summary())
        if not overlap and it + 1 < iterations:
            report.collect_s.append(
                _collect(settings, it + 1, questions, rollouts, seed, curriculum)
            )
    report.wall_s = time.perf_counter() - t0
    return report
