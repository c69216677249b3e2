"""The learning loop, measured: accuracy and frames per question on a held-out synthetic
benchmark for fixed frame selectors and for vidra-tiny's learned selector before and after
online GRPO cycles. Prints JSON and a Markdown table (the README's).

Held-out benchmark (never trained on): long worlds of ``--long-minutes`` (default 30) with
several brief needles each, plus 4-minute worlds; >= 200 multiple-choice questions of the five
kinds. Every configuration answers every question with vidra-tiny, greedy:
- ``uniform-8/32/128``: that many frames spread over the video, one round;
- ``coarse_to_fine``: uniform first, then around the reasoner's evidence (16 frames, 2 rounds);
- ``model``: the learned selector reading a storyboard (vidra-tiny's trained setting), before
  and after 1 and 3 cycles of online GRPO (`vidra retrain --online`: fresh G=4 rollouts on
  training worlds, a GRPO cycle on Ray Train tracked in MLflow, promotion only through the
  gate); "after k cycles" evaluates the champions at that point.

Usage: ``python bench/learning.py [--cycles 3] [--out bench/results/learning.json]``
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import emit, header


def _worlds(root: Path, long_minutes: float, long_worlds: int, short_worlds: int) -> Any:
    from vidra.pipelines.heldout import World
    from vidra.video.synthetic import WorldSpec, generate_questions, make_world, render_world
    from vidra.video.synthetic.questions import needle_questions

    out: list[World] = []
    for k in range(long_worlds):
        spec = WorldSpec(  # sparse objects leave absent colour-shape pairs for needle options
            duration=long_minutes * 60, fps=4, width=160, height=90, seed=9001 + k, needles=10,
            objects_per_minute=0.4,
        )  # fmt: skip
        world = make_world(spec)
        video = root / f"long-{spec.seed}.mp4"
        if not video.is_file():
            render_world(world, video, gop_s=4)
        others = [q for q in generate_questions(world, per_kind=6) if q.kind != "needle"]
        out.append((video, [*needle_questions(world), *others]))
    from vidra.pipelines.heldout import synthetic_worlds

    out += synthetic_worlds(root, [9100 + k for k in range(short_worlds)], 240, per_kind=3)
    return out


def _summary(name: str, r: dict[str, Any], long_needle: dict[str, float]) -> dict[str, Any]:
    return {
        "config": name,
        "accuracy": r["accuracy"],
        "needle_accuracy_long": long_needle["accuracy"],
        "needle_frames_long": long_needle["frames"],
        "frames_per_question": r["frames_per_question"],
        "rounds_per_question": r["rounds_per_question"],
        "latency_s": r["latency_s"],
        "selector_hit_rate": r["selector_hit_rate"],
        "accuracy_by_kind": r["accuracy_by_kind"],
    }


def _run(settings: Any, worlds: Any, long_videos: set[str], adapters: dict[str, str]) -> Any:
    """Evaluate all worlds; needle questions of the long worlds are also scored on their own."""
    from vidra.pipelines.heldout import evaluate

    full = evaluate(settings, worlds, adapters)
    nd = [p for p in full["per_question"] if p["kind"] == "needle" and p["video"] in long_videos]
    n = max(1, len(nd))
    return full, {
        "accuracy": round(sum(p["correct"] for p in nd) / n, 4),
        "frames": round(sum(p["frames"] for p in nd) / n, 2),
        "questions": len(nd),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cycles", type=int, default=3, help="online GRPO cycles")
    ap.add_argument("--train-questions", type=int, default=16, help="questions per cycle (G=4)")
    ap.add_argument("--gate-questions", type=int, default=30,
                    help="held-out questions of each cycle's promotion gate")  # fmt: skip
    ap.add_argument("--long-minutes", type=float, default=30.0)
    ap.add_argument("--long-worlds", type=int, default=3)
    ap.add_argument("--short-worlds", type=int, default=10)
    ap.add_argument("--home", type=Path, default=None, help="data dir (default: a temp dir)")
    ap.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    args = ap.parse_args()

    import torch
    import transformers

    from vidra.config import Settings
    from vidra.models import resolve_model_path
    from vidra.pipelines.online import online
    from vidra.pipelines.train_tiny import tiny_agent_settings
    from vidra.rl.tracking import champion_adapters

    torch.set_num_threads(2)
    t0 = time.perf_counter()
    home = args.home or Path(tempfile.mkdtemp(prefix="vidra-bench-learning-"))
    cache = Path(__file__).resolve().parent / ".cache" / "learning"
    worlds = _worlds(cache, args.long_minutes, args.long_worlds, args.short_worlds)
    long_videos = {str(v) for v, _ in worlds[: args.long_worlds]}
    n_q = sum(len(qs) for _, qs in worlds)
    n_needle = sum(1 for v, qs in worlds if str(v) in long_videos for q in qs if q.kind == "needle")
    print(f"benchmark: {n_q} questions ({n_needle} needles in {args.long_minutes:g}-min videos)",
          file=sys.stderr)  # fmt: skip

    base = tiny_agent_settings(Settings(data_dir=home))
    base.model.path = resolve_model_path("vidra-tiny")
    base.mlflow.use_champions = True  # each online cycle starts from the current champions
    base.train.eval_questions = args.gate_questions  # 10 could not tell 0.2 from 0.2
    rows = []

    def fixed(name: str, strategy: str, frames: int, per_round: int, rounds: int) -> None:
        s = base.model_copy(deep=True)
        s.agents.strategy = strategy  # type: ignore[assignment]
        s.agents.max_frames, s.agents.frames_per_round = frames, per_round
        s.agents.max_rounds = rounds
        s.model.max_frames = max(s.model.max_frames, frames)
        s.agents.plan_budget = strategy != "uniform"  # uniform-N looks at exactly N frames
        full, nd = _run(s, worlds, long_videos, {})
        rows.append(_summary(name, full, nd))
        print(f"{name}: {rows[-1]['accuracy']:.3f} ({time.perf_counter() - t0:.0f} s)",
              file=sys.stderr)  # fmt: skip

    for n in (8, 32, 128):
        fixed(f"uniform-{n}", "uniform", n, n, 1)
    fixed("coarse_to_fine", "coarse_to_fine", 16, 8, 2)
    fixed("model (vidra-tiny, SFT)", "model", 16, 8, 2)

    results = []
    for cycle in range(1, args.cycles + 1):
        results += online(base, 1, questions=args.train_questions, rollouts=4, seed=7 + cycle)
        if cycle in (1, args.cycles):
            adapters = champion_adapters(base, ["planner", "selector", "reasoner", "critic"])
            full, nd = _run(base, worlds, long_videos, adapters)
            rows.append(_summary(f"model after {cycle} GRPO cycle{'s' * (cycle > 1)}", full, nd))
            print(f"{rows[-1]['config']}: {rows[-1]['accuracy']:.3f}", file=sys.stderr)

    before = next(r for r in rows if r["config"].startswith("model (vidra"))
    after = rows[-1]
    u128 = next(r for r in rows if r["config"] == "uniform-128")
    adaptive = [r for r in rows if r["config"].startswith("model")]
    best = max(adaptive, key=lambda r: r["needle_accuracy_long"])
    report = header("learning", torch=torch.__version__, transformers=transformers.__version__)
    report["benchmark"] = {"questions": n_q, "needle_questions_long": n_needle,
                           "long_minutes": args.long_minutes, "cycles": args.cycles,
                           "train_questions_per_cycle": args.train_questions, "G": 4,
                           "gate_questions": args.gate_questions}  # fmt: skip
    report["rows"] = rows
    report["cycles"] = [
        {"run": r.mlflow_run_id, "samples": r.samples, "promoted": r.promoted,
         "decision": r.decision} for r in results
    ]  # fmt: skip
    gain = after["accuracy"] - before["accuracy"]
    frames_cut = 1 - after["frames_per_question"] / max(1e-9, before["frames_per_question"])
    report["targets"] = {
        "accuracy_gain_points_after_cycles": round(100 * gain, 1),
        "frames_reduction_after_cycles": round(frames_cut, 3),
        "target_learning_met": gain >= 0.05 or (frames_cut >= 0.2 and gain >= -0.01),
        "adaptive_needle_accuracy": best["needle_accuracy_long"],
        "adaptive_needle_frames": best["needle_frames_long"],
        "uniform128_needle_accuracy": u128["needle_accuracy_long"],
        "target_needle_met": best["needle_frames_long"] <= 24
        and best["needle_accuracy_long"] >= u128["needle_accuracy_long"],
    }
    report["seconds"] = round(time.perf_counter() - t0)
    lines = [
        "| selector | accuracy | needle acc. (30-min videos) | frames / question |",
        "|---|---|---|---|",
        *(
            f"| {r['config']} | {r['accuracy']:.3f} | {r['needle_accuracy_long']:.3f} | "
            f"{r['frames_per_question']:.1f} |"
            for r in rows
        ),
    ]
    print("\n".join(lines), file=sys.stderr)
    report["table_markdown"] = lines
    emit(report, args.out)


if __name__ == "__main__":
    main()
