"""Checkpointer choice: LangGraph's SQLite saver beside the SQLite store, or its Postgres
saver on the store's PostgreSQL database. Episodes are keyed by ``<job id>:<rollout>``.

The Postgres saver runs over a small connection pool that checks connections before use, so
a long-lived client survives a database restart (a single connection would stay broken).
Database errors at open are raised as one-line `StorageError`s.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from vidra.config import Settings
from vidra.storage.db import storage_error
from vidra.storage.engine import enable_wal

__all__ = ["checkpoint_threads", "open_checkpointer", "thread_id"]


def thread_id(job_id: str, rollout: int) -> str:
    return f"{job_id}:{rollout}"


@contextmanager
def open_checkpointer(settings: Settings) -> Iterator[Any]:
    """A ready-to-use checkpointer for the configured database (closed on exit)."""
    url = make_url(settings.resolved_database_url())
    if url.get_backend_name() == "postgresql":
        with _postgres(url, settings) as pg_saver:
            yield pg_saver
        return
    from langgraph.checkpoint.sqlite import SqliteSaver

    db = Path(url.database or ":memory:")
    path = db.with_name(db.stem + "-checkpoints.db") if url.database else Path(":memory:")
    try:
        if url.database:
            path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(str(path), check_same_thread=False, timeout=30)
        enable_wal(conn)
    except (sqlite3.Error, OSError) as exc:
        raise storage_error(exc, str(path), path) from exc
    try:
        saver: Any = SqliteSaver(conn)
        try:
            saver.setup()
        except sqlite3.Error as exc:
            raise storage_error(exc, str(path), path) from exc
        yield saver
    finally:
        conn.close()


@contextmanager
def _postgres(url: Any, settings: Settings) -> Iterator[Any]:
    from langgraph.checkpoint.postgres import PostgresSaver
    from psycopg.rows import dict_row
    from psycopg_pool import ConnectionPool, PoolTimeout

    dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
    shown = url.render_as_string(hide_password=True)
    pool = ConnectionPool(
        dsn,
        min_size=1,
        max_size=max(2, settings.storage.pool_size),
        kwargs={"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row},
        check=ConnectionPool.check_connection,
        timeout=max(1.0, settings.storage.reconnect_s),
        open=False,
    )
    try:
        pool.open(wait=True, timeout=max(1.0, settings.storage.reconnect_s))
        saver = PostgresSaver(pool)  # type: ignore[arg-type]
        saver.setup()
    except (PoolTimeout, Exception) as exc:
        pool.close()
        if type(exc).__module__.startswith(("psycopg", "psycopg_pool")):
            raise storage_error(exc, shown) from exc
        raise
    try:
        yield saver
    finally:
        pool.close()


def checkpoint_threads(saver: Any) -> set[str]:
    """Every thread id that has a checkpoint (for cleaning up orphans)."""
    return {c.config["configurable"]["thread_id"] for c in saver.list(None)}
