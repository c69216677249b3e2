"""``vidra model build-tiny PATH [--size xs|xsv|s]``: a tiny offline Qwen2.5-VL."""

from __future__ import annotations

import argparse
import time
from typing import Any

__all__ = ["register"]


def register(sub: Any) -> None:
    from vidra.models.tiny import SIZES

    p = sub.add_parser("model", help="build and inspect models")
    msub = p.add_subparsers(dest="model_command", required=True)
    b = msub.add_parser("build-tiny", help="build a tiny, randomly initialised Qwen2.5-VL")
    b.add_argument("path", help="output directory")
    b.add_argument("--size", choices=sorted(SIZES), default="xs")
    b.add_argument("--seed", type=int, default=0)
    b.set_defaults(func=cmd_build_tiny)
    t = msub.add_parser(
        "train-tiny",
        help="train vidra-tiny: SFT of a tiny Qwen2.5-VL on oracle trajectories of all roles",
    )
    t.add_argument(
        "--out", default=None, help="output directory (default: the packaged vidra-tiny)"
    )
    t.add_argument("--work", default=None, help="scratch directory (videos, oracle store)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--epochs", type=int, default=None, help="SFT epochs (default: the spec's)")
    t.add_argument("--worlds", type=int, default=None, help="training worlds (default: the spec's)")
    t.add_argument("--eval-worlds", type=int, default=None, help="held-out worlds")
    t.add_argument("--world-seconds", type=float, default=None, help="length of each world")
    t.add_argument("--long-worlds", type=int, default=None, help="long needle worlds (stage 2)")
    t.add_argument("--long-world-seconds", type=float, default=None, help="their length")
    t.add_argument("--self-epochs", type=int, default=None, help="stage-2 epochs (0: none)")
    t.add_argument("--caption-worlds", type=int, default=None, help="worlds seen for captions only")
    t.set_defaults(func=cmd_train_tiny)


def cmd_build_tiny(args: argparse.Namespace) -> int:
    from vidra.models.tiny import build_tiny

    t0 = time.perf_counter()
    path = build_tiny(args.path, size=args.size, seed=args.seed)
    size = sum(f.stat().st_size for f in path.iterdir() if f.is_file())
    print(
        f"{path}: tiny Qwen2.5-VL ({args.size}), {size / 1e6:.1f} MB, "
        f"built in {time.perf_counter() - t0:.1f} s"
    )
    return 0


def cmd_train_tiny(args: argparse.Namespace) -> int:
    import dataclasses
    import json
    import os
    from pathlib import Path

    import torch

    from vidra.models import PACKAGED_MODELS
    from vidra.pipelines.train_tiny import TinyTrainSpec, train_tiny

    torch.set_num_threads(min(os.cpu_count() or 1, 8))
    spec = TinyTrainSpec(seed=args.seed)
    for flag, name in (
        ("epochs", "epochs"),
        ("worlds", "train_worlds"),
        ("eval_worlds", "eval_worlds"),
        ("world_seconds", "world_s"),
        ("long_worlds", "long_worlds"),
        ("long_world_seconds", "long_world_s"),
        ("self_epochs", "self_epochs"),
        ("caption_worlds", "caption_worlds"),
    ):
        if getattr(args, flag) is not None:
            spec = dataclasses.replace(spec, **{name: getattr(args, flag)})
    out = Path(args.out) if args.out else PACKAGED_MODELS / "vidra-tiny"
    metrics = train_tiny(out, spec, Path(args.work) if args.work else None)
    print(json.dumps(metrics["held_out"], indent=2))
    print(f"vidra-tiny written to {out} (metrics in {out / 'metrics.json'})")
    return 0
