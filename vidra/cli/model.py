"""``vidra model build-tiny PATH [--size xs|s]``: a tiny offline Qwen2.5-VL."""

from __future__ import annotations

import argparse
import time
from typing import Any

__all__ = ["register"]


def register(sub: Any) -> None:
    p = sub.add_parser("model", help="build and inspect models")
    msub = p.add_subparsers(dest="model_command", required=True)
    b = msub.add_parser("build-tiny", help="build a tiny, randomly initialised Qwen2.5-VL")
    b.add_argument("path", help="output directory")
    b.add_argument("--size", choices=["xs", "s"], default="xs")
    b.add_argument("--seed", type=int, default=0)
    b.set_defaults(func=cmd_build_tiny)


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
