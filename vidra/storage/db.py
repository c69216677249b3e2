"""`Database`: one engine plus the rules every read and write of the store follows.

Writes are whole transactions retried on lock conflicts (`with_retry`) and, briefly, on a
lost connection (the pool pre-pings and reconnects); database errors are translated at this
boundary into one-line `StorageError`s that name the database and the cause:
`DatabaseUnavailable` (down or restarting), `DiskFull`, `DatabaseCorrupt`. Does not know
what the tables mean.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from sqlalchemy import Connection, Engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, IntegrityError

from vidra.errors import (
    DatabaseCorrupt,
    DatabaseUnavailable,
    DiskFull,
    StorageError,
    VidraError,
)
from vidra.storage.engine import WRITE, make_engine, with_retry

__all__ = ["Database", "database_error", "storage_error"]

log = logging.getLogger(__name__)
T = TypeVar("T")

_FULL = ("database or disk is full", "no space left on device", "could not extend file",
         "disk quota exceeded")  # fmt: skip
_CORRUPT = ("file is not a database", "database disk image is malformed")
_DOWN = ("connection refused", "could not connect", "server closed the connection",
         "terminating connection", "the database system is", "connection is closed",
         "connection timeout", "consuming input failed", "ssl connection has been closed",
         "no connection to the server", "connection to server", "connection not open",
         "is the server running", "couldn't get a connection", "pool timeout")  # fmt: skip


class Database:
    """An engine for ``url`` (SQLite or PostgreSQL) with error translation and retries.

    Args:
        url: SQLAlchemy URL.
        pool_size: PostgreSQL connection pool size.
        reconnect_s: how long a write keeps retrying a lost connection before giving up.
    """

    def __init__(self, url: str, pool_size: int = 5, reconnect_s: float = 10.0) -> None:
        self.url = url
        self.engine: Engine = make_engine(url, pool_size)
        parsed = make_url(url)
        self.display = parsed.render_as_string(hide_password=True)
        self.file = (
            Path(parsed.database)
            if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, ":memory:")
            else None
        )
        self.reconnect_s = reconnect_s

    def dispose(self) -> None:
        self.engine.dispose()

    def error(self, exc: BaseException) -> VidraError:
        """The one-line `StorageError` for a database exception (see `storage_error`)."""
        return storage_error(exc, self.display, self.file)

    def write(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn`` in one write transaction; lock conflicts and a briefly lost
        connection are retried, anything else is raised translated."""

        def run() -> T:
            with self.engine.connect().execution_options(**WRITE) as conn, conn.begin():
                return fn(conn)

        until = time.monotonic() + self.reconnect_s
        delay = 0.2
        while True:
            try:
                return with_retry(run)
            except IntegrityError:
                raise  # the caller says what the constraint means
            except VidraError:
                raise
            except DBAPIError as exc:
                err = self.error(exc)
                if not isinstance(err, DatabaseUnavailable) or time.monotonic() > until:
                    raise err from exc
                log.warning("%s; retrying in %.1f s", err, delay)
            time.sleep(delay)
            delay = min(2.0, delay * 2)

    def read(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn`` on a connection (no transaction of ours); errors translated."""
        try:
            with self.engine.connect() as conn:
                return fn(conn)
        except VidraError:
            raise
        except DBAPIError as exc:
            raise self.error(exc) from exc

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        """A connection for streaming reads; errors raised inside are translated."""
        try:
            with self.engine.connect() as conn:
                yield conn
        except VidraError:
            raise
        except DBAPIError as exc:
            raise self.error(exc) from exc


def storage_error(exc: BaseException, display: str, file: Path | None = None) -> VidraError:
    """Translate a database exception into the `StorageError` a user can act on."""
    orig = getattr(exc, "orig", None) or exc
    text = " ".join(str(orig).split())
    low = text.lower()
    where = str(file) if file is not None else display
    if any(s in low for s in _FULL) or _disk_full(file, low):
        return DiskFull(
            f"the disk holding the database {where} is full ({text[:200]}); nothing already "
            "stored was lost: free some space, then run `vidra resume` to finish the jobs"
        )
    if any(s in low for s in _CORRUPT):
        return DatabaseCorrupt(
            f"the database file {where} is damaged ({text[:200]}); check it with "
            f"`sqlite3 {where} 'PRAGMA integrity_check'`, restore a backup, or point "
            "VIDRA_DATABASE_URL at another database"
        )
    if any(s in low for s in _DOWN) or getattr(exc, "connection_invalidated", False):
        return DatabaseUnavailable(
            f"the database {display} is unreachable ({text[:200]}); start it or fix "
            "VIDRA_DATABASE_URL; interrupted jobs stay resumable (`vidra resume`)"
        )
    if "unable to open database file" in low:
        return StorageError(
            f"cannot open the database file {where} ({text[:200]}); check that its folder "
            "exists and is writable (VIDRA_DATA_DIR / VIDRA_DATABASE_URL)"
        )
    return StorageError(f"the database {display} failed: {text[:300]}")


def database_error(exc: BaseException, display: str) -> VidraError | None:
    """The translated `StorageError` when ``exc`` came from a database driver (sqlite3,
    psycopg, SQLAlchemy; e.g. raised by a checkpointer), else None. ``display`` names the
    database in the message."""
    if isinstance(exc, StorageError):
        return exc
    module = type(exc).__module__
    if module.startswith(("sqlite3", "psycopg", "sqlalchemy")):
        return storage_error(exc, display)
    return None


def _disk_full(file: Path | None, low: str) -> bool:
    """SQLite reports a full disk in WAL mode as a disk I/O error: check the free space."""
    if file is None or "disk i/o error" not in low:
        return False
    try:
        return shutil.disk_usage(file.parent).free < 1 << 20
    except OSError:
        return False
