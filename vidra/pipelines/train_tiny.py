"""``vidra-tiny``: a tiny Qwen2.5-VL taught the four agent roles by vidra itself.

1. Oracle trajectories: synthetic worlds are rendered and their questions answered by the
   real graph, with an *oracle* standing in for the model. The oracle knows the world's
   ground truth: the planner says what to look for, the selector picks the evidence times,
   the reasoner answers right (wrong on a seeded fraction of first rounds, so the critic
   sees bad answers), the critic accepts right answers and rejects wrong ones. Steps are
   stored like any other (prompt layout, frame refs) in a scratch SQLite store.
2. Reasoner drills: many more questions per training world, each shown its evidence frames
   plus a random one or two and answered right, prompted exactly as the reasoner is. The
   oracle's jobs alone give few reasoner steps, each with 8-16 frames: too little for the
   tiny model to learn perception (without drills it reached 0.36, chance 0.30).
3. SFT: every oracle step with a correct output and every drill becomes (exact request, the
   oracle's text in the model's own tokens); the language model and the vision merger are
   trained with the vision tower frozen (training the tower made its features blow up and the
   language model ignore the image), seeded.
4. Held-out evaluation: fresh worlds, real jobs with the trained model (greedy, answers
   constrained to the options), the ``model`` selector; accuracy by kind, frames and rounds
   per question, per-role format rates, selector hit rate; and the reasoner alone given the
   evidence (`reasoner_given_evidence`). Saved as ``metrics.json`` beside the weights.

The oracle selector sees the ground truth, the learned one only a storyboard: SFT leaves a
selector (and a critic) well short of the oracle, which is the room RL is meant to fill.
"""

from __future__ import annotations

import json
import logging
import random
import re
import tempfile
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from vidra.config import Settings
from vidra.models.protocol import ChatRequest, ImagePart, SamplingParams, TextPart, VideoPart
from vidra.pipelines.heldout import (
    World,
    evaluate,
    question_targets,
    synthetic_world,
    synthetic_worlds,
)
from vidra.video.synthetic import Question

__all__ = ["TinyTrainSpec", "evaluate_model", "oracle", "tiny_agent_settings", "train_tiny"]

log = logging.getLogger(__name__)

REASONER_WEIGHT = 2  # reasoner steps are the fewest and the hardest: each is seen twice
_ROLE_TAG = re.compile(r"\[(planner|selector|reasoner|critic|reflect)/v\d+\]")


@dataclass(frozen=True)
class TinyTrainSpec:
    """What `train_tiny` does (defaults: the shipped ``vidra-tiny``)."""

    seed: int = 0
    size: str = "xs"
    train_worlds: int = 24
    eval_worlds: int = 3
    world_s: float = 240.0
    per_kind: int = 3
    wrong_rate: float = 0.3
    epochs: int = 8
    lr: float = 1e-3
    batch: int = 16
    max_frames: int = 16
    frames_per_round: int = 8
    max_rounds: int = 2
    answer_mode: str = "options"  # agents.answer_mode of the held-out evaluation
    drill_per_kind: int = 8  # reasoner drills: questions per kind and training world,
    drills_per_question: int = 4  # frame draws per question,
    drill_max_frames: int = 2  # evidence + random frames (at least 1 random) per draw


def _text_of(req: ChatRequest) -> tuple[str, list[float]]:
    """The request's last text and the times of the frames it shows."""
    text, times = "", []
    for msg in req.messages:
        if isinstance(msg.content, str):
            text = msg.content
            continue
        for part in msg.content:
            if isinstance(part, TextPart):
                text = part.text
            elif isinstance(part, ImagePart) and part.time is not None:
                times.append(float(part.time))
            elif isinstance(part, VideoPart):
                times += [float(t) for t in part.times]
    return text, times


def _question_line(text: str) -> str:
    m = re.search(r"Question: (.*)\n", text)
    return m.group(1) if m else ""


def _answer_json(q: Question, index: int, shown: Sequence[float]) -> str:
    """The oracle reasoner's reply: option ``index`` by its text (the tiny model maps pixels
    to words far more easily than to a letter looked up in the option list), with the shown
    frames near the evidence."""
    near = [t for t in shown if any(abs(t - e) <= 2.0 for e in question_targets(q))]
    return json.dumps({"answer": q.options[index], "confidence": 0.9,
                       "evidence": [round(t, 1) for t in near[:3]]})  # fmt: skip


def oracle(
    questions: Sequence[Question], wrong_rate: float, seed: int, budget: int = 16
) -> Callable[..., str]:
    """The script of an oracle model for ``questions`` (matched by their text); its plans ask
    for ``budget`` frames (room for a second round after a rejection)."""
    by_text = {q.text: q for q in questions}

    def respond(req: ChatRequest) -> str:
        text, shown = _text_of(req)
        role_m = _ROLE_TAG.search(text)
        q = by_text.get(_question_line(text))
        if role_m is None or q is None:
            return "{}"
        role = role_m.group(1)
        letter = "ABCDEFGHIJ"[q.answer_index]
        if role == "planner":
            look = q.text.rstrip("?").split(",")[0][:60]
            return json.dumps({"look_for": look, "sub_questions": [], "hints": [],
                               "frame_budget": budget})  # fmt: skip
        if role == "selector":
            m = re.search(r"at most (\d+) frames", text)
            n = int(m.group(1)) if m else 8
            targets = question_targets(q)
            if not targets:  # nothing to find (e.g. "how many ... ?" with answer 0): sweep
                m = re.search(r"Video: (\d+) s", text)
                duration = float(m.group(1)) if m else 60.0
                targets = [round(duration * (k + 0.5) / n, 1) for k in range(n)]
            if "Critic feedback" in text:  # second look: around the targets
                targets = [round(max(0.0, t + d), 1) for t in targets for d in (-1.0, 1.0)]
            return json.dumps({"segments": [], "times": targets[: max(1, n)]})
        if role in ("reasoner", "reflect"):
            revising = "Critic feedback" in text or role == "reflect"
            wrong = (
                not revising
                and zlib.crc32(f"{seed}:{q.id}".encode()) % 1000 < wrong_rate * 1000
                and len(q.options) > 1
            )
            index = (q.answer_index + 1) % len(q.options) if wrong else q.answer_index
            return _answer_json(q, index, shown)
        m = re.search(r"Proposed answer: (.*) \(confidence", text)
        proposed = m.group(1).strip() if m else ""
        right = proposed in (q.answer, letter)
        return json.dumps(
            {"score": 1.0, "accept": True, "feedback": ""}
            if right
            else {"score": 0.0, "accept": False, "feedback": "the frames do not show that"}
        )

    return respond


def tiny_agent_settings(settings: Settings, spec: TinyTrainSpec | None = None) -> Settings:
    """``settings`` with the agents set as vidra-tiny was trained (model selector, budgets)."""
    spec = spec or TinyTrainSpec()
    s = settings.model_copy(deep=True)
    s.agents.strategy = "model"
    s.agents.max_frames = spec.max_frames
    s.agents.frames_per_round = spec.frames_per_round
    s.agents.max_rounds = spec.max_rounds
    s.agents.max_tokens = 96
    s.agents.answer_mode = spec.answer_mode  # type: ignore[assignment]
    s.mlflow.use_champions = False
    s.train.lr = 1e-3  # LoRA on a 0.8M-parameter model: 2e-4 barely moves it in one cycle
    return s


def _worlds(root: Path, seeds: Sequence[int], spec: TinyTrainSpec) -> list[World]:
    return synthetic_worlds(root, seeds, spec.world_s, spec.per_kind)


def _seeds(spec: TinyTrainSpec) -> tuple[list[int], list[int]]:
    """World seeds for training and for the held-out evaluation."""
    seeds = [1000 * spec.seed + k for k in range(spec.train_worlds + spec.eval_worlds)]
    return seeds[: spec.train_worlds], seeds[spec.train_worlds :]


def _record_oracle(home: Path, worlds: list[tuple[Path, list[Any]]], spec: TinyTrainSpec) -> Any:
    from vidra import jobs
    from vidra.models.scripted import ScriptedChatModel
    from vidra.runtime import Runtime

    settings = tiny_agent_settings(Settings(data_dir=home), spec)
    store_url = settings.resolved_database_url()
    for video, questions in worlds:
        model = ScriptedChatModel(oracle(questions, spec.wrong_rate, spec.seed, spec.max_frames))
        with Runtime(settings, model=model) as rt:
            ids = [jobs.submit(rt, video, q.text, q.options, q.answer) for q in questions]
            for job_id in ids:
                jobs.wait(rt, job_id, timeout=600)
    return store_url


def _correct(role: str, parsed: Any, truth: str) -> bool:
    """Whether an oracle step is worth imitating (reasoner steps: only right answers)."""
    if role != "reasoner":
        return True
    return isinstance(parsed, dict) and parsed.get("answer") == truth


def _examples(
    settings: Settings, store_url: str, tokenizer: Any, eos: int
) -> tuple[list[Any], float]:
    """(key, role, replayed request, target ids) per imitable oracle step, in store order;
    the oracle's accuracy."""
    from vidra.rl.replay import replay_request, step_frames
    from vidra.storage import TrajectoryStore
    from vidra.video import open_reader

    s = settings.model_copy(deep=True)
    s.database_url = store_url
    store = TrajectoryStore(settings=s)
    reader = open_reader(s)
    paths: dict[str, str] = {}
    greedy = SamplingParams()
    out = []
    rewards = []
    for t in store.iter_trajectories():
        rewards.append(t.reward("accuracy") or 0.0)
        job = store.get_job(t.episode.job_id)
        for vid in {job.video_id, *(v for step in t.steps for v, _ in step.frames)} - set(paths):
            paths[vid] = store.get_video(vid).path
        truth, video = job.answer or "", paths[job.video_id]
        for step in t.steps:
            if not _correct(step.role, step.parsed, truth):
                continue
            frames = step_frames(step.frames, reader, paths, s.agents.frame_size)
            req = replay_request(step.messages, frames, None, greedy)
            ids = [*tokenizer.encode(step.completion, add_special_tokens=False), eos]
            key = (video, job.question, t.episode.rollout_index, step.order)
            for copy in range(REASONER_WEIGHT if step.role == "reasoner" else 1):
                out.append(((*key, copy), step.role, req, ids))
    store.close()
    return out, sum(rewards) / max(1, len(rewards))


def _drill_times(world: Any, q: Question, rng: random.Random, n_max: int) -> list[float] | None:
    """Times for a drill on ``q``: every evidence time plus random others (None: the evidence
    alone needs more than ``n_max`` frames). For counting, the others never show the colour."""
    targets = question_targets(q)
    if len(targets) > n_max:
        return None
    m = re.search(r"an? (\w+) object", q.text) if q.kind == "counting" else None
    extra: list[float] = []
    for _ in range(4 * n_max):
        if len(extra) >= rng.randint(1, max(1, n_max - len(targets))):
            break
        t = round(rng.uniform(0, world.spec.duration - 1), 1)
        if m is None or all(o.colour != m.group(1) for o in world.visible_at(t)):
            extra.append(t)
    return sorted(targets + extra)


def _show(
    reader: Any, video: Path, fps: float, times: Sequence[float], size: int
) -> tuple[Any, list[float]]:
    """The frames shown at ``times`` (decoded as the agents decode them) and their times."""
    index = sorted({max(0, int(t * fps + 1e-6)) for t in times})
    return reader.frames(video, index, size=size), [i / fps for i in index]


def reasoner_given_evidence(
    model: Any,
    settings: Settings,
    worlds: Sequence[World],
    seeds: Sequence[int],
    world_s: float,
    n_max: int = 8,
) -> dict[str, Any]:
    """The reasoner alone, shown every evidence frame of each question plus random others
    (at most ``n_max`` frames; questions needing more are skipped), greedy, answering as
    ``settings.agents.answer_mode`` says: separates perception from frame selection."""
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
            times = _drill_times(world, q, rng, n_max)
            if times is None:
                continue
            frames, shown = _show(reader, video, info.fps, times, settings.agents.frame_size)
            ans = reason(model, facts, q.text, q.options, frames, shown, greedy,
                         constrain=settings.agents.answer_mode == "options").value  # fmt: skip
            by_kind.setdefault(q.kind, []).append(float(ans.answer == q.answer))
    every = [x for v in by_kind.values() for x in v]
    return {
        "questions": len(every),
        "accuracy": round(sum(every) / max(1, len(every)), 4),
        "accuracy_by_kind": {k: round(sum(v) / len(v), 4) for k, v in sorted(by_kind.items())},
    }


def _drills(
    spec: TinyTrainSpec, settings: Settings, worlds: Sequence[World], seeds: Sequence[int],
    tokenizer: Any, eos: int,
) -> list[Any]:  # fmt: skip
    """Reasoner drills: many more questions per training world than the oracle's jobs ask,
    each answered from its evidence frames plus random others, prompted exactly as the
    reasoner is. Keys, roles, requests and target ids as in `_examples`."""
    from vidra.agents.reasoner import reasoner_messages
    from vidra.video import open_reader
    from vidra.video.synthetic.questions import generate_questions, needle_questions

    reader = open_reader(settings)
    greedy = SamplingParams()
    out = []
    for (video, _), seed in zip(worlds, seeds, strict=True):
        world = synthetic_world(seed, spec.world_s)
        fps = reader.probe(video).fps
        rng = random.Random(f"drill:{spec.seed}:{seed}")
        qs = generate_questions(world, per_kind=spec.drill_per_kind, seed=10_000 + seed)
        for q in [*qs, *needle_questions(world)]:
            for d in range(spec.drills_per_question):
                times = _drill_times(world, q, rng, spec.drill_max_frames)
                if times is None:
                    continue
                frames, shown = _show(reader, video, fps, times, settings.agents.frame_size)
                msgs = reasoner_messages(q.text, q.options, frames, shown)
                ids = [*tokenizer.encode(_answer_json(q, q.answer_index, shown),
                                         add_special_tokens=False), eos]  # fmt: skip
                out.append(((str(video), "~drill", q.id, d), "reasoner",
                            ChatRequest(msgs, sampling=greedy), ids))  # fmt: skip
    return out


def _sft(hf: Any, examples: list[Any], spec: TinyTrainSpec) -> list[float]:
    """`cold_start_sft` with a cosine schedule; loss per epoch."""
    from vidra.rl.trainer import cold_start_sft

    def show(epoch: int, loss: float) -> None:
        log.info("epoch %d: loss %.4f", epoch + 1, loss)
        print(f"  epoch {epoch + 1}/{spec.epochs}: loss {loss:.4f}", flush=True)

    pairs = [(req, ids) for _, req, ids in examples]
    return cold_start_sft(
        hf, pairs, spec.epochs, spec.lr, spec.batch, spec.seed, cosine=True, on_epoch=show
    )


def evaluate_model(
    model_path: str,
    worlds: list[tuple[Path, list[Any]]],
    spec: TinyTrainSpec,
    home: Path | None = None,
    adapters: dict[str, str] | None = None,
    strategy: str = "model",
) -> dict[str, Any]:
    """Held-out metrics of ``model_path`` (+ ``adapters``) with the agents set as in training."""
    home = home or Path(tempfile.mkdtemp(prefix="vidra-eval-"))
    settings = tiny_agent_settings(Settings(data_dir=home), spec)
    settings.agents.strategy = strategy  # type: ignore[assignment]
    settings.model.path = model_path
    return evaluate(settings, worlds, adapters)


def _size_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6


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
    print(
        f"rendered {len(train_seeds) + len(eval_seeds)} worlds of {spec.world_s:g} s "
        f"({time.perf_counter() - t0:.0f} s)"
    )
    store_url = _record_oracle(work / "oracle", train_worlds, spec)
    base = build_tiny(work / "base", size=spec.size, seed=spec.seed)
    settings = tiny_agent_settings(Settings(data_dir=work / "oracle"), spec)
    settings.model.path = str(base)
    hf: Any = build_model(settings, {}, backend="hf")
    examples, oracle_accuracy = _examples(settings, store_url, hf.tokenizer, hf.eos_id)
    drills = _drills(spec, settings, train_worlds, train_seeds, hf.tokenizer, hf.eos_id)
    # store order depends on job timing; training must not
    examples = [x[1:] for x in sorted(examples + drills, key=lambda x: x[0])]
    roles = {
        r: sum(1 for x, _, _ in examples if x == r) for r in sorted({x for x, _, _ in examples})
    }
    print(
        f"{len(examples)} examples to imitate {roles} (of them {len(drills)} reasoner drills; "
        f"{time.perf_counter() - t0:.0f} s)"
    )
    losses = _sft(hf, examples, spec)
    out.mkdir(parents=True, exist_ok=True)
    hf.model.save_pretrained(out, safe_serialization=True)
    hf.processor.save_pretrained(out)
    print(f"saved {out} ({_size_mb(out):.1f} MB); evaluating on held-out worlds")
    held = evaluate_model(str(out), eval_worlds, spec, work / "eval")
    probe = reasoner_given_evidence(hf, settings, eval_worlds, eval_seeds, spec.world_s)
    metrics = {
        "spec": asdict(spec),
        "train_examples": roles,
        "reasoner_drills": len(drills),
        "oracle_accuracy": round(oracle_accuracy, 4),
        "sft_loss_by_epoch": [round(x, 4) for x in losses],
        "held_out": held,
        "reasoner_given_evidence": probe,
        "eval_world_seeds": eval_seeds,
        "size_mb": round(_size_mb(out), 2),
        "train_seconds": round(time.perf_counter() - t0, 1),
        "torch": torch.__version__,
    }
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics


def eval_worlds(spec: TinyTrainSpec, root: Path) -> list[tuple[Path, list[Any]]]:
    """The held-out worlds `train_tiny` evaluated on (re-rendered under ``root``)."""
    return _worlds(root, _seeds(spec)[1], spec)
