"""``vidra retrain --algo grpo|dpo|sft --roles reasoner,selector``: one retraining cycle."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["register"]


def register(sub: Any) -> None:
    p = sub.add_parser("retrain", help="train role adapters from the recorded trajectories")
    p.add_argument(
        "--algo",
        choices=["grpo", "dpo", "sft", "sft+grpo"],
        default="grpo",
        help="grpo (groups of rollouts), dpo (pairs; the critic's from outcomes), sft "
        "(rejection sampling), or sft+grpo (SFT on the best episodes, then GRPO from there)",
    )
    p.add_argument(
        "--roles", default="planner,selector,reasoner,critic", help="comma-separated roles to train"
    )
    p.add_argument(
        "--since-run",
        default="last",
        help="learn from episodes after this training run: 'last' (the last successful one), "
        "'all', or a run id (default: last)",
    )
    p.add_argument(
        "--workers", type=int, help="Ray Train workers (default: VIDRA_TRAIN__NUM_WORKERS)"
    )
    p.add_argument(
        "--min-reward",
        type=float,
        help="SFT: keep episodes whose weighted reward reaches this (rejection sampling; "
        "default: VIDRA_TRAIN__SFT_MIN_REWARD, 1.0)",
    )
    p.add_argument(
        "--online",
        action="store_true",
        help="online: collect fresh rollouts on synthetic questions, then train (--algo grpo, "
        "sft or sft+grpo)",
    )
    p.add_argument("--iterations", type=int, default=1, help="online iterations")
    p.add_argument("--rollouts", type=int, default=4, help="online: G rollouts per question")
    p.add_argument("--questions", type=int, default=4, help="online: questions per iteration")
    p.add_argument(
        "--overlap",
        action="store_true",
        help="online: keep collecting with the current champion while the next version trains",
    )
    p.add_argument(
        "--curriculum",
        action="store_true",
        help="online: ask the questions whose recorded pass rate (training rollouts, not "
        "evaluation answers) is nearest one half",
    )
    p.add_argument(
        "--max-staleness",
        type=int,
        help="GRPO: learn only from steps sampled at most this many champion versions behind "
        "(default: any; with --overlap: 1)",
    )
    p.set_defaults(func=cmd_retrain)


def cmd_retrain(args: argparse.Namespace) -> int:
    from vidra.api import Client

    since = args.since_run
    roles = [r for r in args.roles.split(",") if r]
    if args.online:
        from vidra.config import load_settings
        from vidra.pipelines.online import online

        settings = load_settings()
        report = online(settings, args.iterations, args.questions, args.rollouts, roles or None,
                        overlap=args.overlap, max_staleness=args.max_staleness,
                        curriculum=args.curriculum, algo=args.algo)  # fmt: skip
        for k, res in enumerate(report.results):
            print(f"iteration {k} ({report.asked[k]} questions x {args.rollouts}): "
                  f"{res.summary()}")  # fmt: skip
        print(f"{len(report.results)} cycles in {report.wall_s:.0f} s")
        print(f"mlflow ui --backend-store-uri {settings.resolved_tracking_uri()}")
        return 0
    import sys

    from vidra.pipelines.retrain import step_line

    def show(row: dict[str, Any]) -> None:
        print(step_line(row), file=sys.stderr, flush=True)

    with Client() as client:
        result = client.retrain(args.algo, roles, since, num_workers=args.workers,
                                min_reward=args.min_reward, on_step=show)  # fmt: skip
    print(result.summary())
    print(f"mlflow ui --backend-store-uri {client.settings.resolved_tracking_uri()}")
    return 0
