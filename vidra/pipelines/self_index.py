"""Stage 2 of vidra-tiny's training: the reasoner taught on indexes the stage-1 model
captioned itself, so that what it learns to read is the index it will really be given, its
own perception errors included (a needle's option is then one of several found, and the
question says which one is brief). Long worlds full of needles give it the scale of the
needle benchmark's haystacks. Does not render the training worlds or run the oracle.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vidra.config import Settings
from vidra.pipelines import drills
from vidra.video.synthetic.questions import needle_questions

if TYPE_CHECKING:
    from vidra.pipelines.train_tiny import TinyTrainSpec

__all__ = ["long_worlds", "self_index_stage"]

Drill = tuple[Path, Any, list[Any]]
"""``(video, world, questions)``."""


def long_worlds(root: Path, spec: TinyTrainSpec) -> list[tuple[Path, Any, list[Any]]]:
    """(video, world, needle questions) of long training worlds with many needles; seeds
    5000 + 1000 * spec.seed + k (the needle and learning benchmarks use others)."""
    from vidra.video.synthetic import WorldSpec, make_world, render_world

    out = []
    for k in range(spec.long_worlds):
        seed = 5000 + 1000 * spec.seed + k
        world = make_world(WorldSpec(duration=spec.long_world_s, fps=4, width=160, height=90,
                                     seed=seed, needles=spec.long_needles))  # fmt: skip
        video = root / f"long-{seed}-{spec.long_world_s:g}s.mp4"
        if not video.is_file():
            render_world(world, video, gop_s=4)
        qs = [q for d in range(spec.needle_draws) for q in needle_questions(world, seed + 7 * d)]
        out.append((video, world, qs))
    return out


def self_index_stage(
    hf: Any, spec: TinyTrainSpec, settings: Settings, worlds: Sequence[Drill],
    stage1: list[drills.Example], work: Path,
) -> list[float]:  # fmt: skip
    """Stage 2: index drills on indexes the model captioned itself (``worlds``: the training
    worlds with their drill questions, plus `long_worlds`), with a replay of stage 1's
    examples; SFT losses per epoch."""
    from vidra.rl.trainer import cold_start_sft
    from vidra.video import open_reader

    reader, size = open_reader(settings), settings.agents.frame_size
    triples = [*worlds, *long_worlds(work / "videos", spec)]

    def index_of(video: Path, world: Any) -> drills.CaptionIndex:
        cfg = settings.index.model_copy(update={"stride_s": spec.index_stride_s})
        return drills.CaptionIndex.captioned(hf, reader, video, world, cfg)

    own = drills.index_drills(triples, reader, size, spec.frames_per_round, hf.tokenizer,
                              hf.eos_id, index_of, tag="~self")  # fmt: skip
    examples = sorted([*own, *stage1[:: spec.replay_every]], key=lambda x: x[0])
    print(f"stage 2: {len(own)} drills on the model's own indexes + "
          f"{len(examples) - len(own)} replayed", flush=True)  # fmt: skip
    pairs = [(req, ids) for _, _, req, ids in examples]
    return cold_start_sft(hf, pairs, spec.self_epochs, spec.self_lr, spec.batch, spec.seed + 1,
                          cosine=True)  # fmt: skip
