"""Model benchmark on the tiny Qwen2.5-VL (hf backend, CPU): prefill, decode, batch throughput,
and generate-vs-score logprob agreement. Prints JSON.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from report import emit, header

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    import torch
    import transformers

    torch.set_num_threads(args.threads)
    from vidra.models import ChatRequest, ImagePart, Message, SamplingParams, TextPart
    from vidra.models.hf import HFChatModel
    from vidra.models.tiny import build_tiny

    rng = np.random.default_rng(0)
    tmp = tempfile.mkdtemp()
    path = build_tiny(Path(tmp) / "tiny", size="xs")

    def request(frames: int, px: int, max_tokens: int, **s: object) -> ChatRequest:
        imgs = rng.integers(0, 255, (frames, px, px, 3), dtype=np.uint8)
        parts = [ImagePart(im, float(t)) for t, im in enumerate(imgs)]
        return ChatRequest(
            [Message("user", [*parts, TextPart("Which frame shows the red circle?")])],
            sampling=SamplingParams(max_tokens=max_tokens, **s),
        )

    def timed(model: HFChatModel, reqs: list[ChatRequest], repeats: int = 3) -> tuple[float, list]:
        best, out = float("inf"), []
        for _ in range(repeats):
            t0 = time.perf_counter()
            out = model.generate(reqs)
            best = min(best, time.perf_counter() - t0)
        return best, out

    results: dict[str, object] = {}
    prefill: dict[str, float] = {}
    for px in (64, 224):
        model = HFChatModel(path, max_pixels=px * px)
        for frames in (4, 8, 16):
            seconds, out = timed(model, [request(frames, px, 1)])
            prefill[f"{frames}x{px}px"] = round(seconds * 1000, 1)
            prefill[f"{frames}x{px}px_prompt_tokens"] = out[0].prompt_tokens
    results["prefill_ms"] = prefill
    model = HFChatModel(path)
    t1, _ = timed(model, [request(4, 64, 1)])
    t33, out = timed(model, [request(4, 64, 33)])
    results["decode_ms_per_token"] = round(
        (t33 - t1) * 1000 / max(1, out[0].completion_tokens - 1), 2
    )
    throughput = {}
    for batch in (1, 4, 16):
        reqs = [request(4, 64, 16) for _ in range(batch)]
        seconds, _ = timed(model, reqs, repeats=2)
        throughput[f"batch_{batch}"] = round(batch / seconds, 2)
    results["completions_per_s_16_tokens"] = throughput
    diffs = []
    for seed in range(4):
        reqs = [request(4, 64, 24, temperature=1.0, seed=seed)]
        comps = model.generate(reqs)
        scored = model.score(reqs, comps)
        diffs.append(float(np.max(np.abs(np.array(comps[0].logprobs) - np.array(scored[0])))))
    results["generate_vs_score_max_abs_logprob_diff"] = {
        "max": max(diffs),
        "median": statistics.median(diffs),
    }
    report = {
        **header("models", torch=torch.__version__, transformers=transformers.__version__),
        "torch_threads": args.threads,
        "model": "tiny Qwen2.5-VL xs (hidden 128, 2 layers, vision 64x2), float32, CPU",
        "notes": "prefill_ms: wall time of generate(max_tokens=1) = processor + forward over the "
        "prompt + one sampled token (best of 3); frames are random images resized by the stock "
        "processor under max_pixels = px*px",
        "results": results,
    }
    emit(report, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
