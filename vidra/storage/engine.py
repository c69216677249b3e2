"""Engines for the store: SQLite (default; WAL, foreign keys, busy timeout, IMMEDIATE writes)
and PostgreSQL (``postgresql+psycopg://``), plus retry with backoff for lock contention.

SQLite write transactions start with ``BEGIN IMMEDIATE`` so two writers never deadlock on
a read-to-write lock upgrade; reads stay deferred so streaming never blocks writers.
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError

from vidra.errors import BackendUnavailable, ConfigError, StorageError

__all__ = ["WRITE", "DamagedText", "enable_wal", "is_sqlite", "make_engine", "with_retry"]

log = logging.getLogger(__name__)
T = TypeVar("T")
WRITE = {"vidra_write": True}
"""Execution options that mark a connection's transaction as a write (SQLite: IMMEDIATE)."""

_BUSY_MS = 30_000


def enable_wal(dbapi_conn: Any, wait_s: float = _BUSY_MS / 1000) -> None:
    """Put a SQLite database in WAL mode, waiting out other connections doing the same.

    Switching the journal mode needs an exclusive lock, and SQLite answers SQLITE_BUSY
    ("database is locked") at once, without its busy handler, when connections opened at the
    same moment race for it (seen with parallel Ray episode tasks). WAL persists in the file,
    so the mode is read first and only switched when needed, retrying with backoff.
    """
    until = time.monotonic() + wait_s
    delay = 0.01
    while True:
        try:
            mode = dbapi_conn.execute("PRAGMA journal_mode").fetchone()[0]
            if str(mode).lower() != "wal":
                dbapi_conn.execute("PRAGMA journal_mode=WAL")
            return
        except Exception as exc:  # sqlite3.OperationalError; the driver module varies
            text = str(exc).lower()
            if not ("locked" in text or "busy" in text) or time.monotonic() > until:
                raise
        time.sleep(delay * (1 + random.random()))
        delay = min(delay * 2, 0.5)


class DamagedText(str):
    """Text that was not valid UTF-8 in the database, read with U+FFFD replacements.

    SQLite stores whatever bytes it is given; a damaged row must not make reading the
    trajectory (``vidra show``, training) die with a decode error. Records flag it.
    """


def _decode_text(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        log.warning("a stored text is not valid UTF-8; read with replacement characters")
        return DamagedText(raw.decode("utf-8", "replace"))


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def make_engine(url: str, pool_size: int = 5) -> Engine:
    """Create an engine for ``url`` with vidra's settings for that database.

    Raises:
        ConfigError: a URL SQLAlchemy cannot parse or a database other than SQLite/PostgreSQL.
        BackendUnavailable: PostgreSQL without the ``postgres`` extra.
    """
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ConfigError(
            f"database URL {url!r} is not valid; use sqlite:///path/to/vidra.db or "
            "postgresql+psycopg://user:password@host:5432/dbname"
        ) from exc
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return _sqlite_engine(url, parsed.database)
    if backend == "postgresql":
        if parsed.drivername in ("postgresql", "postgresql+psycopg2"):
            parsed = parsed.set(drivername="postgresql+psycopg")
        try:
            import psycopg  # noqa: F401
        except ImportError as exc:
            raise BackendUnavailable("postgresql", "postgres", str(exc)) from exc
        return create_engine(
            parsed, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True,
            json_serializer=json_text,
        )  # fmt: skip
    raise ConfigError(f"database {backend!r} is not supported; use SQLite or PostgreSQL")


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def json_text(value: Any) -> str:
    """JSON for the store's JSON columns: NaN and infinities (an accuracy over no questions)
    are stored as null, which PostgreSQL accepts and SQLite reads back alike."""
    try:
        return json.dumps(value, allow_nan=False)
    except ValueError:
        return json.dumps(_finite(value), allow_nan=False)


def _sqlite_engine(url: str, database: str | None) -> Engine:
    if database and database != ":memory:":
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url, connect_args={"timeout": _BUSY_MS / 1000}, json_serializer=json_text
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        dbapi_conn.text_factory = _decode_text
        enable_wal(dbapi_conn)
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={_BUSY_MS}")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        write = conn.get_execution_options().get("vidra_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


def _retryable(exc: DBAPIError) -> bool:
    text = str(exc.orig).lower() if exc.orig is not None else str(exc).lower()
    return any(
        s in text
        for s in (
            "database is locked",
            "database is busy",
            "deadlock detected",
            "could not serialize access",
        )
    )


def with_retry(fn: Callable[[], T], attempts: int = 8, base_delay: float = 0.05) -> T:
    """Run ``fn`` (one whole transaction), retrying lock/serialization conflicts with backoff.

    Raises:
        StorageError: still conflicting after ``attempts`` tries, or another database error.
    """
    for attempt in range(attempts):
        try:
            return fn()
        except (OperationalError, DBAPIError) as exc:
            if not _retryable(exc) or attempt == attempts - 1:
                if _retryable(exc):
                    raise StorageError(
                        f"the database stayed locked after {attempts} tries ({exc.orig}); "
                        "too many concurrent writers for SQLite: use PostgreSQL"
                    ) from exc
                raise
            delay = base_delay * 2**attempt * (0.5 + random.random())
            log.debug("database busy, retry %d in %.2fs", attempt + 1, delay)
            time.sleep(delay)
    raise AssertionError("unreachable")
