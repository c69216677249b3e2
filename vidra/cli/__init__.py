"""The ``vidra`` command. Subcommands live in sibling modules; each registers itself here.

A `VidraError` is printed as one line and exits 2; anything else is a bug and keeps
its traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from vidra.errors import VidraError

__all__ = ["build_parser", "main"]

DESCRIPTION = (
    "Answer questions about long videos with a team of agents (planner, frame selector,\n"
    "reasoner, critic), record every step in SQL, and retrain the agents from that record."
)
EPILOG = """common commands:
  vidra demo                               the whole loop offline, on a generated video
  vidra ask VIDEO "QUESTION" [--option A --option B]   answer one question
  vidra jobs / vidra show ID               recent jobs; one job's or episode's trajectory
  vidra retrain --algo grpo                train the agents on what was recorded
  vidra eval TASK --annotations F --videos DIR         run a benchmark

settings: VIDRA_* environment variables (see the README's Configuration table)."""


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Examples kept as written; every option's default shown after its help."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if "default" in text or action.default in (None, False, argparse.SUPPRESS):
            return text  # says its default itself, or has none worth printing
        return super()._get_help_string(action)


def _formatted(parser: argparse.ArgumentParser) -> None:
    """Give ``parser`` and every subcommand below it the user-facing formatter."""
    parser.formatter_class = HelpFormatter
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                _formatted(child)


def build_parser() -> argparse.ArgumentParser:
    from vidra import __version__
    from vidra.cli import ask, data, db, demo, evaluate, index, model, retrain, video

    parser = argparse.ArgumentParser(
        prog="vidra",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"vidra {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="log at INFO level, show third-party output"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    video.register(sub)
    demo.register(sub)
    db.register(sub)
    model.register(sub)
    ask.register(sub)
    retrain.register(sub)
    data.register(sub)
    evaluate.register(sub)
    index.register(sub)
    _formatted(parser)
    return parser


def quiet_third_parties() -> None:
    """Third-party progress bars, advisory warnings and INFO logs off (``-v`` keeps them);
    set in the environment too, so Ray's worker processes inherit it."""
    import os
    import warnings

    for key, value in (
        ("HF_HUB_DISABLE_PROGRESS_BARS", "1"),
        ("TRANSFORMERS_VERBOSITY", "error"),
        ("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false"),
        ("MLFLOW_LOGGING_LEVEL", "ERROR"),
        ("PYTHONWARNINGS", "ignore::FutureWarning,ignore::DeprecationWarning"),
        ("RAY_DEDUP_LOGS", "1"),
        ("TQDM_DISABLE", "1"),
    ):
        os.environ.setdefault(key, value)
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    for name in ("mlflow", "ray", "alembic", "urllib3", "httpx", "transformers", "peft"):
        logging.getLogger(name).setLevel(logging.ERROR)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``vidra`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.verbose:
        quiet_third_parties()
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        result = args.func(args)
    except VidraError as exc:
        for line in str(exc).splitlines() or [type(exc).__name__]:
            print(f"vidra: error: {line}", file=sys.stderr)
        return 2
    return int(result or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
