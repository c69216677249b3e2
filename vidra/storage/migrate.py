"""Schema migrations (Alembic, shipped in the package): upgrade, current revision, checks.

A database at a revision this vidra does not know (written by a newer vidra) is refused
with `SchemaVersionError` instead of being touched.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import Engine, text

from vidra.errors import SchemaVersionError
from vidra.storage.engine import WRITE, with_retry

__all__ = ["check_revision", "current_revision", "head_revision", "upgrade"]

_MIGRATIONS = Path(__file__).parent / "migrations"
_PG_LOCK = 0x76696472  # "vidr": one migrator at a time on PostgreSQL


def _config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    return cfg


def head_revision() -> str:
    """The newest revision this vidra ships."""
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    """The database's revision, or ``None`` for an empty database."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def check_revision(engine: Engine) -> str | None:
    """The current revision, after checking this vidra knows it.

    Raises:
        SchemaVersionError: the database was migrated by a newer vidra.
    """
    rev = current_revision(engine)
    if rev is None:
        return None
    try:
        ScriptDirectory.from_config(_config()).get_revision(rev)
    except CommandError as exc:
        raise SchemaVersionError(
            f"database {engine.url.render_as_string(hide_password=True)} is at schema revision "
            f"{rev!r}, which this vidra does not know (newest known: {head_revision()!r}); "
            "upgrade vidra, or point VIDRA_DATABASE_URL at another database"
        ) from exc
    return rev


def upgrade(engine: Engine, revision: str = "head") -> str:
    """Migrate the database to ``revision`` (default: newest); returns the new revision."""
    check_revision(engine)

    def run() -> None:
        with engine.connect().execution_options(**WRITE) as conn, conn.begin():
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK})
            cfg = _config()
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)

    with_retry(run)
    rev = current_revision(engine)
    return rev or ""
