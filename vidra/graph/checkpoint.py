"""Checkpointer choice: LangGraph's SQLite saver beside the SQLite store, or its Postgres
saver on the store's PostgreSQL database. Episodes are keyed by ``<job id>:<rollout>``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from vidra.config import Settings
from vidra.storage.engine import enable_wal

__all__ = ["open_checkpointer", "thread_id"]


def thread_id(job_id: str, rollout: int) -> str:
    return f"{job_id}:{rollout}"


@contextmanager
def open_checkpointer(settings: Settings) -> Iterator[Any]:
    """A ready-to-use checkpointer for the configured database (closed on exit)."""
    url = make_url(settings.resolved_database_url())
    if url.get_backend_name() == "postgresql":
        from langgraph.checkpoint.postgres import PostgresSaver

        dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
        with PostgresSaver.from_conn_string(dsn) as pg_saver:
            pg_saver.setup()
            yield pg_saver
        return
    from langgraph.checkpoint.sqlite import SqliteSaver

    db = Path(url.database or ":memory:")
    path = db.with_name(db.stem + "-checkpoints.db") if url.database else Path(":memory:")
    if url.database:
        path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), check_same_thread=False, timeout=30)
    enable_wal(conn)
    try:
        saver: Any = SqliteSaver(conn)
        saver.setup()
        yield saver
    finally:
        conn.close()
