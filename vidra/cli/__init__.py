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


def build_parser() -> argparse.ArgumentParser:
    from vidra.cli import ask, data, db, demo, model, retrain, video

    parser = argparse.ArgumentParser(prog="vidra", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    sub = parser.add_subparsers(dest="command", required=True)
    video.register(sub)
    demo.register(sub)
    db.register(sub)
    model.register(sub)
    ask.register(sub)
    retrain.register(sub)
    data.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``vidra`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        result = args.func(args)
    except VidraError as exc:
        print(f"vidra: error: {exc}", file=sys.stderr)
        return 2
    return int(result or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
