"""Does a trained reasoner fit its own training prompts? Greedy answers of the reasoner the
training started from (SFT: no adapter) and of a trained reasoner adapter, on every distinct
reasoner prompt recorded in an ablation collection (`bench/learning.py`'s ``DIR/ablation``),
replayed with the recorded frames and layout and constrained to the options as in an
episode. Set beside the benchmark's held-out rows, this tells a training that does not move
its own prompts (optimisation) from one whose moves do not carry to held-out questions
(generalisation).

Usage: ``python bench/train_fit.py --home DIR --adapter DIR/ablation/adapters/RUN/0-grpo/reasoner
[--out bench/results/train-fit.json]``
"""

from __future__ import annotations

import argparse
import functools
import sys
import time
from pathlib import Path
from typing import Any

from learning import _settings
from report import emit, header


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--home", type=Path, required=True, help="bench/learning.py's work dir")
    ap.add_argument("--adapter", type=Path, required=True, help="a trained reasoner adapter")
    ap.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    args = ap.parse_args()
    if not (args.adapter / "adapter_config.json").is_file():
        raise SystemExit(f"{args.adapter} is no adapter directory (no adapter_config.json)")
    if not (args.home / "ablation" / "vidra.db").is_file():
        raise SystemExit(f"{args.home}/ablation holds no collection: run bench/learning.py first")

    import torch
    import transformers

    import vidra
    from vidra.evals.metrics import paired_from_maps
    from vidra.models import resolve_model_path
    from vidra.models.protocol import SamplingParams
    from vidra.rl.replay import batch_step_frames
    from vidra.rl.resample import answer_reward, recorded_prompts, replay_requests
    from vidra.runtime import training_model
    from vidra.storage import TrajectoryStore
    from vidra.video import open_reader

    torch.set_num_threads(2)
    t0 = time.perf_counter()
    s = _settings(args.home / "ablation", 40)
    with TrajectoryStore(settings=s) as store:
        prompts, counts = recorded_prompts(store)
        videos = {v for p in prompts for v, _ in p.step.frames}
        paths = {v: store.get_video(v).path for v in videos}
    model = training_model(s.model_dump_json(), resolve_model_path(s.model.path),
                           {"reasoner": str(args.adapter)})  # fmt: skip
    frames_of = functools.partial(batch_step_frames, reader=open_reader(s), paths=paths,
                                  size=s.agents.frame_size)  # fmt: skip
    greedy = SamplingParams(temperature=0.0, max_tokens=s.agents.max_tokens)
    scores: dict[str | None, list[float]] = {None: [], "reasoner": []}
    for at in range(0, len(prompts), 8):
        chunk = prompts[at : at + 8]
        frames = frames_of([p.step.frames for p in chunk])
        for adapter, got in scores.items():
            out = [0.0] * len(chunk)
            for c in model.generate(replay_requests(chunk, frames, adapter, greedy)):
                p = chunk[c.request_index]
                out[c.request_index] = answer_reward(c.text, p.options, p.truth) or 0.0
            got += out
    sft, trained = scores[None], scores["reasoner"]
    ids = [str(p.step.id) for p in prompts]
    d = paired_from_maps(dict(zip(ids, trained, strict=True)), dict(zip(ids, sft, strict=True)))
    report: dict[str, Any] = header("train_fit", vidra=vidra.__version__,
                                    torch=torch.__version__,
                                    transformers=transformers.__version__)  # fmt: skip
    report.update({
        "home": str(args.home), "adapter": str(args.adapter), "prompts": len(prompts),
        "left_out": counts, "sft_accuracy": round(d.mean_b, 4),
        "trained_accuracy": round(d.mean_a, 4),
        "diff": round(d.diff, 4), "ci95": [round(x, 4) for x in d.ci95],
        "to_right": sum(1 for a, b in zip(sft, trained, strict=True) if b > a),
        "to_wrong": sum(1 for a, b in zip(sft, trained, strict=True) if b < a),
        "seconds": round(time.perf_counter() - t0),
    })  # fmt: skip
    emit(report, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
