"""How far is the selector's cheaper first call from being chosen? On first selector calls that
searched (the episode then makes a second call: the inspect), the log-likelihood of that
search reply minus that of the bare ``{"tool": "inspect"}`` (which ends the tool loop after one
call), under the selector the training started from (SFT: no adapter) and a trained selector
adapter. The constrained selector picks among its candidate replies by these totals (argmax
when greedy, a softmax of them at temperature 1), so a margin of m nats means the inspect is
sampled about e^-m times as often as the search: a cost on tool calls cannot teach a path that
is never tried. Held-out: the SFT row's benchmark episodes (``DIR/main``); training: the
ablation collection (``DIR/ablation``), both from `bench/learning.py`. ``--against find``: the
margin of the search over ``{"tool": "find", "query": <the same query>}`` instead, the one call
that searches and inspects what it found (``agents.find_tool``).

Usage: ``python bench/selector_margin.py --home DIR
--adapter DIR/ablation/adapters/RUN/0-grpo/selector [--against inspect|find] [--prompts 120]
[--out FILE]``
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from learning import _settings
from report import emit, header

INSPECT = json.dumps({"tool": "inspect"})


def _first_searches(store: Any, n: int, held_out: bool) -> list[tuple[Any, str]]:
    """Up to ``n`` first selector calls that searched, with their reply as a candidate string
    (held out: from the benchmark's SFT episodes; else from every recorded episode)."""
    from vidra.rl.rewards import is_tool_call

    jobs = None
    if held_out:
        runs = [r.id for r in store.eval_runs() if not r.config.get("adapters")]
        jobs = {q.job_id for r in runs for q in store.eval_questions(r) if q.job_id}
    out: list[tuple[Any, str]] = []
    for t in store.iter_trajectories():
        if jobs is not None and t.episode.job_id not in jobs:
            continue
        steps = sorted(t.steps, key=lambda x: x.order)
        calls = [x for x in steps if x.role == "selector" and is_tool_call(x.parsed)]
        if calls and calls[0].messages and calls[0].parsed["tool"] == "search":
            out.append((calls[0], json.dumps({"tool": "search",
                                              "query": calls[0].parsed["query"]})))  # fmt: skip
            if len(out) >= n:
                break
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--home", type=Path, required=True, help="bench/learning.py's work dir")
    ap.add_argument("--adapter", type=Path, required=True, help="a trained selector adapter")
    ap.add_argument("--prompts", type=int, default=120, help="first calls per set")
    ap.add_argument(
        "--against",
        choices=("inspect", "find"),
        default="inspect",
        help="the cheaper reply: the bare inspect, or a find of the same query",
    )
    ap.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    args = ap.parse_args()
    if not (args.adapter / "adapter_config.json").is_file():
        raise SystemExit(f"{args.adapter} is no adapter directory (no adapter_config.json)")
    for part in ("main", "ablation"):
        if not (args.home / part / "vidra.db").is_file():
            raise SystemExit(f"{args.home}/{part} holds no store: run bench/learning.py first")

    import torch
    import transformers

    import vidra
    from vidra.models import resolve_model_path
    from vidra.models.protocol import SamplingParams
    from vidra.rl.replay import batch_step_frames, replay_request
    from vidra.runtime import training_model
    from vidra.storage import TrajectoryStore
    from vidra.video import open_reader

    torch.set_num_threads(2)
    t0 = time.perf_counter()
    base = _settings(args.home / "ablation", 40)
    model = training_model(base.model_dump_json(), resolve_model_path(base.model.path),
                           {"selector": str(args.adapter)})  # fmt: skip
    encode = functools.partial(model.tokenizer.encode, add_special_tokens=False)
    sampling = SamplingParams(temperature=1.0, max_tokens=base.agents.max_tokens)
    report: dict[str, Any] = header("selector_margin", vidra=vidra.__version__,
                                    torch=torch.__version__,
                                    transformers=transformers.__version__)  # fmt: skip
    report.update({"home": str(args.home), "adapter": str(args.adapter),
                   "against": args.against, "sets": {}})  # fmt: skip
    for name, part, held_out in (("held-out", "main", True), ("training", "ablation", False)):
        s = _settings(args.home / part, 40)
        with TrajectoryStore(settings=s) as store:
            items = _first_searches(store, args.prompts, held_out)
            paths = {v: store.get_video(v).path for st, _ in items for v, _ in st.frames}
        frames_of = functools.partial(batch_step_frames, reader=open_reader(s), paths=paths,
                                      size=s.agents.frame_size)  # fmt: skip
        margins: dict[str | None, list[float]] = {None: [], "selector": []}
        for at in range(0, len(items), 8):
            chunk = items[at : at + 8]
            frames = frames_of([st.frames for st, _ in chunk])
            for adapter, got in margins.items():
                with torch.no_grad():
                    for (st, search), fr in zip(chunk, frames, strict=True):
                        req = replay_request(st.messages, fr, adapter, sampling)
                        cheaper = INSPECT if args.against == "inspect" else \
                            search.replace('"tool": "search"', '"tool": "find"', 1)  # fmt: skip
                        pair = [encode(search), encode(cheaper)]
                        a, b = model.batch_token_logprobs([req, req], pair)
                        got.append(float(a.sum() - b.sum()))
        sft, trained = margins[None], margins["selector"]
        if not sft:
            raise SystemExit(f"{args.home}/{part}: no first selector call that searched")
        report["sets"][name] = {
            "first_calls": len(sft),
            "median_margin_sft": round(statistics.median(sft), 2),
            "median_margin_trained": round(statistics.median(trained), 2),
            "mean_shift": round(statistics.mean(b - a for a, b in zip(sft, trained, strict=True)),
                                3),
            f"{args.against}_preferred_sft": sum(x < 0 for x in sft),
            f"{args.against}_preferred_trained": sum(x < 0 for x in trained),
            "margin_below_2_sft": sum(x < 2 for x in sft),
        }  # fmt: skip
    report["seconds"] = round(time.perf_counter() - t0)
    emit(report, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
