"""Serving benchmark: model calls of concurrent episodes batched (dynamic batching) against
one call per request, on vidra-tiny (CPU by default; ``--device cuda`` on a GPU), at 1, 4, 16
and 32 concurrent episodes (``--concurrency``), in one run. Prints JSON: completions/s and the
p50/p95 latency of a step as the episode sees it (waiting for its batch included).

An episode: plan, reason (answers constrained to the options), critique; greedy, uniform
frames, one round; every episode asks a different question of one synthetic video.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))


class Timed:
    """A ChatModel wrapper recording each call's latency as its caller sees it."""

    def __init__(self, model: Any) -> None:
        self.model, self.name = model, model.name
        self.latencies: list[float] = []
        self.completions = 0
        self._lock = threading.Lock()

    @property
    def adapters(self) -> list[str]:
        return list(self.model.adapters)

    def generate(self, requests: Sequence[Any]) -> list[Any]:
        t0 = time.perf_counter()
        out = self.model.generate(requests)
        with self._lock:
            self.latencies.append(time.perf_counter() - t0)
            self.completions += len(out)
        return out

    def score(self, requests: Sequence[Any], completions: Sequence[Any]) -> list[list[float]]:
        return self.model.score(requests, completions)


def _run(
    base: Any, video: Path, questions: list[Any], concurrency: int, batched: bool
) -> dict[str, float]:
    from vidra import jobs
    from vidra.config import Settings
    from vidra.models.serving import BatchingChatModel
    from vidra.runtime import Runtime

    served = BatchingChatModel(base, max_batch=32, max_wait_s=0.01) if batched else base
    timed = Timed(served)
    with tempfile.TemporaryDirectory() as home:
        s = Settings(data_dir=Path(home))
        s.runner.workers = concurrency
        s.agents.strategy, s.agents.max_rounds, s.agents.max_tokens = "uniform", 1, 48
        s.agents.max_frames = s.agents.frames_per_round = 4
        with Runtime(s, model=timed) as rt:
            jobs.wait(rt, jobs.submit(rt, video, questions[0].text, questions[0].options))  # warm
            timed.latencies.clear()
            timed.completions = 0
            t0 = time.perf_counter()
            ids = [jobs.submit(rt, video, q.text, q.options) for q in questions]
            for job_id in ids:
                jobs.wait(rt, job_id, timeout=1200)
            wall = time.perf_counter() - t0
    lat = sorted(timed.latencies)
    return {
        "episodes": len(questions),
        "completions": timed.completions,
        "seconds": round(wall, 2),
        "completions_per_s": round(timed.completions / wall, 2),
        "step_latency_p50_s": round(statistics.median(lat), 4),
        "step_latency_p95_s": round(lat[int(0.95 * (len(lat) - 1))], 4),
        "mean_batch": round(statistics.mean(served.stats.batch_sizes), 2) if batched else 1.0,
    }


def main() -> int:
    from report import emit, header

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=32, help="episodes per measurement")
    parser.add_argument("--device", default="cpu", help="the model's device: cpu, cuda, cuda:1...")
    parser.add_argument(
        "--concurrency",
        default="1,4,16,32",
        help="comma-separated numbers of concurrent episodes to measure",
    )
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    levels = [int(c) for c in args.concurrency.split(",") if c.strip()]
    if not levels or min(levels) < 1:
        parser.error("--concurrency: give positive integers, e.g. 1,4,16,32")
    import torch
    import transformers

    from vidra.models import resolve_model_path
    from vidra.models.hf import HFChatModel
    from vidra.video.synthetic import WorldSpec, generate_questions, make_world, render_world

    torch.set_num_threads(2)
    world = make_world(WorldSpec(duration=600, fps=4, width=160, height=90, seed=5))
    video = render_world(world, Path(tempfile.mkdtemp()) / "w.mp4", gop_s=4)
    pool = generate_questions(world, per_kind=20)
    questions = (pool * (args.episodes // max(1, len(pool)) + 1))[: args.episodes]
    base = HFChatModel(resolve_model_path("vidra-tiny"), device=args.device)
    versions = {"transformers": transformers.__version__}
    if args.device.startswith("cuda"):
        versions["torch"] = torch.__version__
        versions["gpu"] = torch.cuda.get_device_name(torch.device(args.device))
    device = "CPU" if args.device == "cpu" else args.device

    def report_of(results: dict[str, Any]) -> dict[str, Any]:
        targets: dict[str, Any] = {}
        if "concurrency_16" in results:
            at16 = results["concurrency_16"]
            targets = {
                ">= 3x unbatched completions/s at 16 concurrent episodes": {
                    "value": at16["speedup"],
                    "met": at16["speedup"] >= 3.0,
                },
                "p95 step latency <= 2x unbatched at 16": {
                    "value": at16["p95_ratio"],
                    "met": at16["p95_ratio"] <= 2.0,
                },
            }
        return {
            **header("serving", **versions),
            "model": f"vidra-tiny (hf, {device}, float32)",
            "episode": "plan + reason (options, constrained) + critique; greedy; 4 uniform frames",
            "results": results,
            "targets": targets,
        }

    results: dict[str, Any] = {}
    for k, c in enumerate(levels):
        unbatched = _run(base, video, questions, c, batched=False)
        batched = _run(base, video, questions, c, batched=True)
        results[f"concurrency_{c}"] = {
            "unbatched": unbatched,
            "batched": batched,
            "speedup": round(batched["completions_per_s"] / unbatched["completions_per_s"], 2),
            "p95_ratio": round(batched["step_latency_p95_s"] / unbatched["step_latency_p95_s"], 2),
        }
        print(c, results[f"concurrency_{c}"], file=sys.stderr, flush=True)
        if args.out is not None and k + 1 < len(levels):  # what is measured survives a kill
            partial = {**report_of(results), "incomplete": f"still to measure: {levels[k + 1 :]}"}
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(partial, indent=2) + "\n")
    report = report_of(results)
    emit(report, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
