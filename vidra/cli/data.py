"""``vidra data export --algo grpo|dpo|sft --format parquet|hf OUT``."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["register"]


def register(sub: Any) -> None:
    p = sub.add_parser("data", help="export training datasets built from the trajectories")
    dsub = p.add_subparsers(dest="data_command", required=True)
    e = dsub.add_parser("export", help="write a GRPO/DPO/SFT dataset for TRL or verl")
    e.add_argument("out", help="output directory")
    e.add_argument("--algo", choices=["grpo", "dpo", "sft"], default="grpo")
    e.add_argument("--format", choices=["parquet", "hf"], default="parquet")
    e.add_argument("--roles", default="", help="comma-separated roles (default: all)")
    e.set_defaults(func=cmd_export)


def cmd_export(args: argparse.Namespace) -> int:
    from vidra.config import load_settings
    from vidra.rl.datasets import build_dpo, build_grpo, build_sft
    from vidra.rl.export import export_dataset
    from vidra.storage import TrajectoryStore

    roles = [r for r in args.roles.split(",") if r] or None
    with TrajectoryStore(settings=load_settings()) as store:
        if args.algo == "grpo":
            ds = build_grpo(store, None, roles)
        elif args.algo == "dpo":
            ds = build_dpo(store, None, roles)
        else:
            ds = build_sft(store, None, roles)
    for path in export_dataset(ds, args.out, args.format):
        print(path)
    return 0
