"""``vidra db upgrade | current``: the trajectory store's schema."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["register"]


def register(sub: Any) -> None:
    p = sub.add_parser("db", help="manage the trajectory store's schema")
    dsub = p.add_subparsers(dest="db_command", required=True)
    up = dsub.add_parser("upgrade", help="migrate the database to the newest schema")
    up.add_argument("--url", help="database URL (default: VIDRA_DATABASE_URL or the SQLite file)")
    up.set_defaults(func=cmd_upgrade)
    cur = dsub.add_parser("current", help="print the database's schema revision")
    cur.add_argument("--url", help="database URL (default: VIDRA_DATABASE_URL or the SQLite file)")
    cur.set_defaults(func=cmd_current)


def _engine(args: argparse.Namespace) -> Any:
    from vidra.config import load_settings
    from vidra.storage.engine import make_engine

    return make_engine(args.url or load_settings().resolved_database_url())


def cmd_upgrade(args: argparse.Namespace) -> int:
    from vidra.storage import upgrade

    engine = _engine(args)
    rev = upgrade(engine)
    print(f"{engine.url.render_as_string(hide_password=True)}: at revision {rev} (head)")
    return 0


def cmd_current(args: argparse.Namespace) -> int:
    from vidra.storage import check_revision, head_revision

    engine = _engine(args)
    rev = check_revision(engine)
    state = "up to date" if rev == head_revision() else f"head is {head_revision()}"
    print(f"{engine.url.render_as_string(hide_password=True)}: {rev or 'none (empty)'} ({state})")
    return 0
