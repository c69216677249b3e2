"""Checkpointer choice: LangGraph's SQLite saver beside the SQLite store, or its Postgres
saver on the store's PostgreSQL database. Episodes are keyed by ``<job id>:<rollout>``.

The Postgres saver runs over a small connection pool that checks connections before use, so
a long-lived client survives a database restart (a single connection would stay broken).
Database errors at open are raised as one-line `StorageError`s.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
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


def _pool(dsn: str, settings: Settings) -> Any:
    """An opened connection pool that checks each connection before handing it out."""
    from psycopg.rows import dict_row
    from psycopg_pool import ConnectionPool

    wait = max(1.0, settings.storage.reconnect_s)
    pool = ConnectionPool(
        dsn,
        min_size=1,
        max_size=max(2, settings.storage.pool_size),
        kwargs={"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row},
        check=ConnectionPool.check_connection,
        timeout=wait,
        open=False,
    )
    try:
        pool.open(wait=True, timeout=wait)
    except BaseException:
        pool.close()
        raise
    return pool


def _reconnecting_saver(dsn: str, settings: Settings) -> Any:
    """LangGraph's Postgres saver whose pool is replaced when it cannot hand out a
    connection (after an outage the pool's own reconnects back off for a long time)."""
    from langgraph.checkpoint.postgres import PostgresSaver
    from psycopg_pool import PoolClosed, PoolTimeout

    renewing = threading.Lock()

    class ReconnectingSaver(PostgresSaver):
        # LangGraph works on shallow copies of the saver: the pool sits in a box they share,
        # so a pool replaced through any copy is the pool of all of them
        _box: list[Any]

        @property
        def conn(self) -> Any:
            return self._box[0]

        @conn.setter
        def conn(self, value: Any) -> None:
            if not hasattr(self, "_box"):
                self._box = [value]
            self._box[0] = value

        @contextmanager
        def _cursor(self, *, pipeline: bool = False) -> Iterator[Any]:
            stack = ExitStack()
            used = self.conn
            try:
                cur = stack.enter_context(PostgresSaver._cursor(self, pipeline=pipeline))
            except (PoolTimeout, PoolClosed):  # closed: another thread replaced it meanwhile
                with renewing:
                    if self.conn is used:  # not yet replaced by another thread
                        self.conn = _pool(dsn, settings)  # raises while still down
                        used.close()
                cur = stack.enter_context(PostgresSaver._cursor(self, pipeline=pipeline))
            with stack:
                yield cur

    return ReconnectingSaver(_pool(dsn, settings))


@contextmanager
def _postgres(url: Any, settings: Settings) -> Iterator[Any]:
    dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
    shown = url.render_as_string(hide_password=True)
    try:
        saver = _reconnecting_saver(dsn, settings)
        saver.setup()
    except Exception as exc:
        if type(exc).__module__.startswith(("psycopg", "psycopg_pool")):
            raise storage_error(exc, shown) from exc
        raise
    try:
        yield saver
    finally:
        saver.conn.close()


def checkpoint_threads(saver: Any) -> set[str]:
    """Every thread id that has a checkpoint (for cleaning up orphans)."""
    return {c.config["configurable"]["thread_id"] for c in saver.list(None)}
