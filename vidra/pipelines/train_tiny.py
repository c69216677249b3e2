"""``vidra-tiny``: a tiny Qwen2.5-VL taught every agent role by vidra itself.

1. Oracle trajectories: synthetic worlds are rendered and their questions answered by the
   real graph with the ``search`` selector, an oracle (`vidra.pipelines.oracle`) standing in
   for the model: it captions the index from the ground truth, plans, searches the index and
   inspects what it lists, answers (wrong on a seeded share of first rounds, so the critic
   sees bad answers), and judges. Steps are stored like any other in a scratch store.
2. More examples (`vidra.pipelines.drills`): captions of moments of each training world and
   of more worlds seen only for captions (perception needs variety); reasoner drills
   (evidence frames plus random ones); index drills (the moments and captions a search
   surfaced).
3. SFT: every oracle step with a correct output, every drill and caption becomes (exact
   request, the reply in the model's own tokens); the language model and the vision merger
   are trained, the vision tower at a tenth of their rate, seeded.
   Stage 2: the trained model captions the training worlds (and long worlds full of
   needles) itself, and the reasoner is taught on those indexes, errors and all: with real
   captions a needle's option is one of several found, and the question says which is
   brief. Stage 1's examples are replayed alongside.
4. Held-out evaluation on fresh worlds with real jobs (greedy, answers constrained to the
   options), the ``search`` selector, and its index captioned by the trained model:
   accuracy by kind, frames and rounds per question, per-role format rates, evidence shown
   to the reasoner; caption accuracy; and the reasoner alone given the evidence. Saved as
   ``metrics.json`` beside the weights.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from vidra.config import Settings
from vidra.models.protocol import SamplingParams
from vidra.pipelines import drills
from vidra.pipelines.heldout import World, evaluate, synthetic_world, synthetic_worlds
from vidra.pipelines.oracle import oracle
from vidra.pipelines.self_index import self_index_stage
from vidra.video.synthetic import generate_questions
from vidra.video.synthetic.questions import needle_questions

__all__ = [
    "TinyTrainSpec",
    "eval_worlds",
    "evaluate_model",
    "reasoner_given_evidence",
    "tiny_agent_settings",
    "train_tiny",
]

log = logging.getLogger(__name__)

REASONER_WEIGHT = 2  # reasoner steps are the fewest and the hardest: each is seen twice


@dataclass(frozen=True)
class TinyTrainSpec:
    """What `train_tiny` does (defaults: the shipped ``vidra-tiny``)."""

    seed: int = 0
    size: str = "xsv"  # `vidra.models.tiny.SIZES`
    train_worlds: int = 24
    eval_worlds: int = 3
    world_s: float = 240.0
    per_kind: int = 3
    wrong_rate: float = 0.3
    epochs: int = 6
    lr: float = 1e-3
    batch: int = 16
    max_frames: int = 16
    frames_per_round: int = 8
    max_rounds: int = 2
    strategy: str = "search"  # the selector of the oracle's jobs and of the evaluation
    answer_mode: str = "options"  # agents.answer_mode of the held-out evaluation
    drill_per_kind: int = 8  # reasoner drills: questions per kind and training world,
    drills_per_question: int = 3  # frame draws per question,
    drill_max_frames: int = 2  # evidence + random frames (at least 1 random) per draw
    caption_every_s: float = 2.0  # caption examples: one moment per this many seconds
    caption_worlds: int = 48  # more worlds for caption examples only (perception needs variety),
    caption_worlds_every_s: float = 4.0  # one moment per this many seconds of each
    frame_size: int = 160  # frames shown to every role and captioned (a 160 x 90 world whole)
    tower_lr: float = 1e-4  # the vision tower's SFT rate (0: frozen)
    index_stride_s: float = 2.0  # the index's clips (and the index drills' search)
    # stage 2: the reasoner taught on indexes the stage-1 model captioned itself (its own
    # perception errors in view), on the training worlds and on long worlds full of needles
    self_epochs: int = 2
    self_lr: float = 3e-4
    long_worlds: int = 2
    long_world_s: float = 1800.0
    long_needles: int = 10
    needle_draws: int = 3  # needle questions per needle (other absent options each time)
    replay_every: int = 3  # stage 1's examples replayed in stage 2: every this many


def tiny_agent_settings(settings: Settings, spec: TinyTrainSpec | None = None) -> Settings:
    """``settings`` with the agents set as vidra-tiny was trained (selector, budgets)."""
    spec = spec or TinyTrainSpec()
    s = settings.model_copy(deep=True)
    s.agents.strategy = spec.strategy  # type: ignore[assignment]
    s.agents.max_frames = spec.max_frames
    s.agents.frames_per_round = spec.frames_per_round
    s.agents.max_rounds = spec.max_rounds
    s.agents.frame_size = s.index.frame_size = spec.frame_size
    s.agents.max_tokens = 96
    s.agents.answer_mode = spec.answer_mode  # type: ignore[assignment]
    s.index.stride_s = spec.index_stride_s
    s.mlflow.use_champions = False
    s.train.lr = 1e-3  # LoRA on a 1-2M-parameter model: 2e-4 barely moves it in one cycle
    return s


def _seeds(spec: TinyTrainSpec) -> tuple[list[int], list[int]]:
    """World seeds for training and for the held-out evaluation."""
    seeds = [1000 * spec.seed + k for k in range(spec.train_worlds + spec.eval_worlds)]
    return seeds[: spec.train_worlds], seeds[spec.train_worlds :]


def _caption_seeds(spec: TinyTrainSpec) -> list[int]:
    """Seeds of the worlds only captioned (no benchmark uses 5000-5999)."""
    return [1000 * spec.seed + 5000 + k for k in range(spec.caption_worlds)]


def _worlds(root: Path, seeds: Sequence[int], spec: TinyTrainSpec) -> list[World]:
    return synthetic_worlds(root, seeds, spec.world_s, spec.per_kind)


def _record_oracle(
    home: Path, worlds: list[World], seeds: Sequence[int], spec: TinyTrainSpec
) -> str:
    from vidra import jobs
    from vidra.models.scripted import ScriptedChatModel
    from vidra.runtime import Runtime

    settings = tiny_agent_settings(Settings(data_dir=home), spec)
    for (video, questions), seed in zip(worlds, seeds, strict=True):
        world = synthetic_world(seed, spec.world_s)
        script = oracle(questions, spec.wrong_rate, spec.seed, spec.max_frames, world)
        with Runtime(settings, model=ScriptedChatModel(script)) as rt:
            ids = [jobs.submit(rt, video, q.text, q.options, q.answer) for q in questions]
            for job_id in ids:
                jobs.wait(rt, job_id, timeout=600)
    return settings.resolved_database_url()


def _correct(role: str, parsed: Any, truth: str) -> bool:
    """Whether an oracle step is worth imitating (reasoner steps: only right answers)."""
    if role != "reasoner":
        return True
    return isinstance(parsed, dict) and parsed.get("answer") == truth


def _examples(
    settings: Settings, store_url: str, tokenizer: Any, eos: int
) -> tuple[list[drills.Example], float]:
    """An example per imitable oracle step, in store order; the oracle's accuracy."""
    from vidra.rl.replay import replay_request, step_frames
    from vidra.storage import TrajectoryStore
    from vidra.video import open_reader

    s = settings.model_copy(update={"database_url": store_url})
    reader = open_reader(s)
    paths: dict[str, str] = {}
    out: list[drills.Example] = []
    rewards = []
    with TrajectoryStore(settings=s) as store:
        for t in store.iter_trajectories():
            rewards.append(t.reward("accuracy") or 0.0)
            job = store.get_job(t.episode.job_id)
            for vid in {job.video_id, *(v for st in t.steps for v, _ in st.frames)} - set(paths):
                paths[vid] = store.get_video(vid).path
            for step in t.steps:
                if not _correct(step.role, step.parsed, job.answer or ""):
                    continue
                frames = step_frames(step.frames, reader, paths, s.agents.frame_size)
                req = replay_request(step.messages, frames, None, SamplingParams())
                ids = [*tokenizer.encode(step.completion, add_special_tokens=False), eos]
                key = (paths[job.video_id], job.question, t.episode.rollout_index, step.order)
                for copy in range(REASONER_WEIGHT if step.role == "reasoner" else 1):
                    out.append(((*key, copy), step.role, req, ids))
    return out, sum(rewards) / max(1, len(rewards))


def _drill_worlds(
    worlds: Sequence[World], seeds: Sequence[int], spec: TinyTrainSpec
) -> list[tuple[Path, Any, list[Any]]]:
    """(video, world, drill questions) per training world: more questions than the oracle
    asked, and one per needle."""
    out = []
    for (video, _), seed in zip(worlds, seeds, strict=True):
        world = synthetic_world(seed, spec.world_s)
        qs = generate_questions(world, per_kind=spec.drill_per_kind, seed=10_000 + seed)
        out.append((video, world, [*qs, *needle_questions(world)]))
    return out


def _more_examples(
    spec: TinyTrainSpec, settings: Settings, worlds: Sequence[World], seeds: Sequence[int],
    tokenizer: Any, eos: int, caption_only: Sequence[World] = (),
) -> list[drills.Example]:  # fmt: skip
    from vidra.video import open_reader

    reader, size = open_reader(settings), settings.agents.frame_size
    triples = _drill_worlds(worlds, seeds, spec)
    seen = [(v, synthetic_world(s, spec.world_s), qs)
            for (v, qs), s in zip(caption_only, _caption_seeds(spec), strict=True)]  # fmt: skip
    return [
        *drills.reasoner_drills(triples, reader, size, spec.drills_per_question,
                                spec.drill_max_frames, tokenizer, eos, spec.seed),
        *drills.index_drills(triples, reader, size, spec.frames_per_round, tokenizer, eos,
                             lambda v, w: drills.CaptionIndex.ground(w, spec.index_stride_s)),
        *drills.selector_drills(triples, spec.frames_per_round, settings.agents.max_tool_calls,
                                tokenizer, eos,
                                lambda v, w: drills.CaptionIndex.ground(w, spec.index_stride_s)),
        *drills.caption_examples(triples, reader, settings.index.frame_size,
                                 spec.caption_every_s, tokenizer, eos),
        *drills.caption_examples(seen, reader, settings.index.frame_size,
                                 spec.caption_worlds_every_s, tokenizer, eos),
    ]  # fmt: skip


def reasoner_given_evidence(
    model: Any,
    settings: Settings,
    worlds: Sequence[World],
    seeds: Sequence[int],
    world_s: float,
    n_max: int = 8,
) -> dict[str, Any]:
    """The reasoner alone, shown every evidence frame of each question plus random others
    (at most ``n_max`` frames; questions needing more are skipped), greedy: separates
    perception from frame selection."""
    import random

    from vidra.agents.context import VideoFacts
    from vidra.agents.reasoner import reason
    from vidra.video import open_reader

    reader = open_reader(settings)
    greedy = SamplingParams(max_tokens=settings.agents.max_tokens)
    by_kind: dict[str, list[float]] = {}
    for (video, questions), seed in zip(worlds, seeds, strict=True):
        info = reader.probe(video)
        world = synthetic_world(seed, world_s)
        facts = VideoFacts("probe", str(video), info.duration, info.fps, info.frame_count)
        rng = random.Random(f"probe:{seed}")
        for q in questions:
            times = drills.drill_times(world, q, rng, n_max)
            if times is None:
                continue
            frames, shown = drills.show(reader, video, info.fps, times, settings.agents.frame_size)
            ans = reason(model, facts, q.text, q.options, frames, shown, greedy,
                         constrain=settings.agents.answer_mode == "options").value  # fmt: skip
            by_kind.setdefault(q.kind, []).append(float(ans.answer == q.answer))
    every = [x for v in by_kind.values() for x in v]
    return {
        "questions": len(every),
        "accuracy": round(sum(every) / max(1, len(every)), 4),
        "accuracy_by_kind": {k: round(sum(v) / len(v), 4) for k, v in sorted(by_kind.items())},
    }


def _sft(hf: Any, examples: list[drills.Example], spec: TinyTrainSpec) -> list[float]:
    """`cold_start_sft` with a cosine schedule; loss per epoch."""
    from vidra.rl.trainer import cold_start_sft

    def show(epoch: int, loss: float) -> None:
        log.info("epoch %d: loss %.4f", epoch + 1, loss)
        print(f"  epoch {epoch + 1}/{spec.epochs}: loss {loss:.4f}", flush=True)

    pairs = [(req, ids) for _, _, req, ids in examples]
    return cold_start_sft(hf, pairs, spec.epochs, spec.lr, spec.batch, spec.seed, cosine=True,
                          on_epoch=show, tower_lr=spec.tower_lr)  # fmt: skip


def evaluate_model(
    model_path: str,
    worlds: list[World],
    spec: TinyTrainSpec,
    home: Path | None = None,
    adapters: dict[str, str] | None = None,
    strategy: str | None = None,
) -> dict[str, Any]:
    """Held-out metrics of ``model_path`` (+ ``adapters``) with the agents set as in training."""
    if home is None:
        with tempfile.TemporaryDirectory(prefix="vidra-eval-") as tmp:
            return evaluate_model(model_path, worlds, spec, Path(tmp), adapters, strategy)
    settings = tiny_agent_settings(Settings(data_dir=home), spec)
    settings.agents.strategy = strategy or spec.strategy  # type: ignore[assignment]
    settings.model.path = model_path
    return evaluate(settings, worlds, adapters)


def _size_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6


def _held_out(out: Path, hf: Any, spec: TinyTrainSpec, work: Path, settings: Settings,
              eval_worlds: list[World], eval_seeds: list[int]) -> dict[str, Any]:  # fmt: skip
    from vidra.video import open_reader

    triples = [(v, synthetic_world(s, spec.world_s), qs)
               for (v, qs), s in zip(eval_worlds, eval_seeds, strict=True)]  # fmt: skip
    return {
        "held_out": evaluate_model(str(out), eval_worlds, spec, work / "eval"),
        "held_out_model_selector": evaluate_model(str(out), eval_worlds, spec,
                                                  work / "eval-model", strategy="model"),
        "caption_accuracy": drills.caption_accuracy(hf, triples, open_reader(settings),
                                                    settings.index.frame_size, 8.0),
        "reasoner_given_evidence": reasoner_given_evidence(hf, settings, eval_worlds,
                                                           eval_seeds, spec.world_s),
    }  # fmt: skip


def train_tiny(out: Path, spec: TinyTrainSpec | None = None, work: Path | None = None) -> dict:
    """Build, SFT and evaluate a tiny Qwen2.5-VL; save it with ``metrics.json`` at ``out``."""
    import torch

    from vidra.models.tiny import build_tiny
    from vidra.runtime import build_model

    spec = spec or TinyTrainSpec()
    torch.manual_seed(spec.seed)
    work = work or Path(tempfile.mkdtemp(prefix="vidra-train-tiny-"))
    t0 = time.perf_counter()
    train_seeds, eval_seeds = _seeds(spec)
    train_worlds = _worlds(work / "videos", train_seeds, spec)
    eval_worlds = _worlds(work / "videos", eval_seeds, spec)
    caption_worlds = _worlds(work / "videos", _caption_seeds(spec), spec)
    print(f"rendered {len(train_seeds) + len(eval_seeds) + len(caption_worlds)} worlds of "
          f"{spec.world_s:g} s "
          f"({time.perf_counter() - t0:.0f} s)")  # fmt: skip
    store_url = _record_oracle(work / "oracle", train_worlds, train_seeds, spec)
    base = build_tiny(work / "base", size=spec.size, seed=spec.seed)
    settings = tiny_agent_settings(Settings(data_dir=work / "oracle"), spec)
    settings.model.path = str(base)
    hf: Any = build_model(settings, {}, backend="hf")
    examples, oracle_accuracy = _examples(settings, store_url, hf.tokenizer, hf.eos_id)
    more = _more_examples(spec, settings, train_worlds, train_seeds, hf.tokenizer, hf.eos_id,
                          caption_worlds)  # fmt: skip
    # store order depends on job timing; training must not
    examples = sorted(examples + more, key=lambda x: x[0])
    roles = {r: sum(1 for x in examples if x[1] == r) for r in sorted({x[1] for x in examples})}
    print(f"{len(examples)} examples {roles} ({time.perf_counter() - t0:.0f} s)")
    losses = _sft(hf, examples, spec)
    own_losses: list[float] = []
    if spec.self_epochs:
        drill = _drill_worlds(train_worlds, train_seeds, spec)
        own_losses = self_index_stage(hf, spec, settings, drill, examples, work)
    out.mkdir(parents=True, exist_ok=True)
    hf.model.save_pretrained(out, safe_serialization=True)
    hf.processor.save_pretrained(out)
    print(f"saved {out} ({_size_mb(out):.1f} MB); evaluating on held-out worlds")
    metrics = {
        "spec": asdict(spec),
        "train_examples": roles,
        "oracle_accuracy": round(oracle_accuracy, 4),
        "sft_loss_by_epoch": [round(x, 4) for x in losses],
        "self_index_loss_by_epoch": [round(x, 4) for x in own_losses],
        **_held_out(out, hf, spec, work, settings, eval_worlds, eval_seeds),
        "eval_world_seeds": eval_seeds,
        "size_mb": round(_size_mb(out), 2),
        "train_seconds": round(time.perf_counter() - t0, 1),
        "torch": torch.__version__,
    }
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics


def eval_worlds(spec: TinyTrainSpec, root: Path) -> list[World]:
    """The held-out worlds `train_tiny` evaluated on (re-rendered under ``root``)."""
    return _worlds(root, _seeds(spec)[1], spec)
