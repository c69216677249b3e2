"""`TrajectoryStore`: the SQL record of videos, jobs, episodes, steps, rewards, model versions
and training runs. Pydantic records in and out; every episode is written in one transaction.

One API over parts by aggregate (`VideoPart`, `JobPart`, `EpisodePart`, `RegistryPart`,
`EvalPart`, `IndexPart`),
which share one `Database` (engine, retries, error translation). The parts are mixins, not
interfaces: they split a long class by what it stores and keep one public surface.
"""

from __future__ import annotations

import logging

from vidra.config import Settings, load_settings
from vidra.errors import StorageError
from vidra.storage.db import Database
from vidra.storage.episodes import EpisodePart
from vidra.storage.evals import EvalPart
from vidra.storage.ids import question_key
from vidra.storage.index import IndexPart
from vidra.storage.jobs import TRANSITIONS, JobPart
from vidra.storage.migrate import check_revision, head_revision, upgrade
from vidra.storage.registry import RegistryPart
from vidra.storage.videos import VideoPart

__all__ = ["TRANSITIONS", "TrajectoryStore", "question_key"]

log = logging.getLogger(__name__)


class TrajectoryStore(VideoPart, JobPart, EpisodePart, RegistryPart, EvalPart, IndexPart):
    """The trajectory store on SQLite (default) or PostgreSQL.

    Args:
        url: SQLAlchemy URL; default from ``settings`` (SQLite file under the data dir).
        settings: vidra settings (default: from the environment).
        auto_migrate: create/upgrade the schema on open (default from settings).
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        settings: Settings | None = None,
        auto_migrate: bool | None = None,
    ) -> None:
        self.settings = settings or load_settings()
        st = self.settings.storage
        self.url = url or self.settings.resolved_database_url()
        self.db = Database(self.url, st.pool_size, st.reconnect_s)
        self.engine = self.db.engine
        self.max_text_chars = st.max_text_chars
        migrate = st.auto_migrate if auto_migrate is None else auto_migrate
        try:
            rev = check_revision(self.engine)
            if rev != head_revision():
                if not migrate:
                    raise StorageError(
                        f"database schema is at {rev!r}, vidra needs {head_revision()!r}; "
                        "run `vidra db upgrade`"
                    )
                upgrade(self.engine)
        except StorageError:
            self.db.dispose()
            raise
        except Exception as exc:
            self.db.dispose()
            from sqlalchemy.exc import DBAPIError

            if isinstance(exc, DBAPIError):
                raise self.db.error(exc) from exc
            raise

    def close(self) -> None:
        self.db.dispose()

    def __enter__(self) -> TrajectoryStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
