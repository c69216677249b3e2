"""Online GRPO: each iteration answers fresh synthetic-world questions with G rollouts under
the current champions, then runs a GRPO cycle on exactly those episodes.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from vidra.config import Settings
from vidra.errors import InvalidInput
from vidra.pipelines.retrain import RetrainResult, retrain

__all__ = ["online"]

log = logging.getLogger(__name__)


def online(
    settings: Settings,
    iterations: int,
    questions: int = 4,
    rollouts: int = 4,
    roles: Sequence[str] | None = None,
    seed: int = 0,
) -> list[RetrainResult]:
    """Collect with the latest champions, train, repeat ``iterations`` times."""
    from vidra import jobs
    from vidra.runtime import Runtime
    from vidra.video.synthetic import WorldSpec, generate_questions, make_world, render_world

    if iterations <= 0 or rollouts < 2:
        raise InvalidInput("online GRPO needs iterations >= 1 and rollouts >= 2")
    results = []
    for it in range(iterations):
        world = make_world(
            WorldSpec(duration=300, fps=4, width=160, height=90, seed=seed * 1000 + it)
        )
        video = render_world(world, settings.data_dir / "online" / f"it{it}" / "video.mp4")
        asked = generate_questions(world, per_kind=max(1, questions // 5 + 1), seed=seed + it)
        with Runtime(settings) as rt:  # a new runtime loads the latest champions
            ids = [
                jobs.submit(rt, video, q.text, q.options, q.answer, rollouts)
                for q in asked[:questions]
            ]
            for job_id in ids:
                jobs.wait(rt, job_id)
        results.append(retrain(settings, "grpo", roles, since_run="last"))
        log.info("online iteration %d: %s", it, results[-1].summary())
    return results
