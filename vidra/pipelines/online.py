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

from vidra.config import Settings
from vidra.errors import InvalidInput
from vidra.pipelines.retrain import RetrainResult, retrain

__all__ = ["OnlineReport", "online"]

log = logging.getLogger(__name__)


@dataclass
class OnlineReport:
    """The cycles of an online run and where the time went."""

    results: list[RetrainResult] = field(default_factory=list)
    collect_s: list[float] = field(default_factory=list)
    train_s: list[float] = field(default_factory=list)
    wall_s: float = 0.0


def _collect(settings: Settings, it: int, questions: int, rollouts: int, seed: int) -> float:
    """Answer iteration ``it``'s questions with the current champions; seconds taken."""
    from vidra import jobs
    from vidra.runtime import Runtime
    from vidra.video.synthetic import WorldSpec, generate_questions, make_world, render_world

    t0 = time.perf_counter()
    world = make_world(WorldSpec(duration=300, fps=4, width=160, height=90, seed=seed * 1000 + it))
    video = render_world(world, Path(settings.data_dir) / "online" / f"it{it}" / "video.mp4")
    asked = generate_questions(world, per_kind=max(1, questions // 5 + 1), seed=seed + it)
    with Runtime(settings) as rt:  # a new runtime loads the latest champions
        ids = [jobs.submit(rt, video, q.text, q.options, q.answer, rollouts)
               for q in asked[:questions]]  # fmt: skip
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
) -> OnlineReport:
    """``iterations`` cycles of collect-then-train (``overlap``: collect the next batch
    while the current one trains)."""
    if iterations <= 0 or rollouts < 2:
        raise InvalidInput("online GRPO needs iterations >= 1 and rollouts >= 2")
    staleness = max_staleness if max_staleness is not None else (1 if overlap else None)
    report = OnlineReport()
    t0 = time.perf_counter()
    report.collect_s.append(_collect(settings, 0, questions, rollouts, seed))
    for it in range(iterations):
        trained: list[RetrainResult] = []
        started = time.perf_counter()

        def train(into: list[RetrainResult] = trained) -> None:
            into.append(retrain(settings, "grpo", roles, since_run="last",
                                max_staleness=staleness))  # fmt: skip

        worker = threading.Thread(target=train, name=f"vidra-online-{it}")
        worker.start()
        if overlap and it + 1 < iterations:  # the next batch, while this one trains
            report.collect_s.append(_collect(settings, it + 1, questions, rollouts, seed))
        worker.join()
        if not trained:
            raise InvalidInput(f"online iteration {it}: the retraining cycle failed (see log)")
        report.train_s.append(time.perf_counter() - started)
        report.results.append(trained[0])
        log.info("online iteration %d: %s", it, trained[0].summary())
        if not overlap and it + 1 < iterations:
            report.collect_s.append(_collect(settings, it + 1, questions, rollouts, seed))
    report.wall_s = time.perf_counter() - t0
    return report
