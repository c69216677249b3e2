"""``vidra demo``: the whole loop on embedded defaults, offline (`vidra.pipelines.demo`)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

__all__ = ["register"]


def register(sub: Any) -> None:
    from vidra.pipelines.demo import DemoSpec

    d = DemoSpec()  # the flags' defaults are the spec's
    p = sub.add_parser(
        "demo",
        help="run the offline demo: answer, log, retrain, evaluate",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--out", default=str(d.out), help="output directory")
    p.add_argument("--minutes", type=float, default=d.minutes, help="length of the generated video")
    p.add_argument("--questions", type=int, default=d.questions, help="questions to answer")
    p.add_argument("--rollouts", type=int, default=d.rollouts,
                   help="sampled rollouts per question (G)")  # fmt: skip
    p.add_argument("--eval-questions", type=int, default=d.eval_questions,
                   help="held-out questions (before and after)")  # fmt: skip
    p.add_argument("--no-retrain", action="store_true", help="only answer the questions")
    p.add_argument("--seed", type=int, default=d.seed, help="seed of the generated world")
    p.set_defaults(func=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> int:
    from vidra.pipelines.demo import DemoSpec, run_demo

    spec = DemoSpec(
        out=Path(args.out),
        minutes=args.minutes,
        questions=args.questions,
        rollouts=args.rollouts,
        eval_questions=args.eval_questions,
        retrain=not args.no_retrain,
        seed=args.seed,
    )
    return run_demo(spec)
