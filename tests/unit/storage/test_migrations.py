"""Alembic migrations: first use creates the schema; unknown newer revisions are refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from vidra.cli import main
from vidra.errors import SchemaVersionError, StorageError
from vidra.storage import TrajectoryStore, current_revision, head_revision


def test_default_sqlite_is_created_and_migrated_on_first_use(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VIDRA_DATA_DIR", str(tmp_path / "home"))
    store = TrajectoryStore()
    assert store.url == f"sqlite:///{tmp_path / 'home' / 'vidra.db'}"
    assert (tmp_path / "home" / "vidra.db").exists()
    assert current_revision(store.engine) == head_revision()
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    store.close()


def test_newer_revision_is_refused(db_url: str) -> None:
    TrajectoryStore(db_url).close()
    store = TrajectoryStore(db_url)
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999_from_the_future'"))
    store.close()
    with pytest.raises(SchemaVersionError, match=r"9999_from_the_future.*upgrade vidra"):
        TrajectoryStore(db_url)


def test_no_auto_migrate_asks_for_db_upgrade(db_url: str) -> None:
    with pytest.raises(StorageError, match="vidra db upgrade"):
        TrajectoryStore(db_url, auto_migrate=False)


def test_db_cli(
    db_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("VIDRA_DATABASE_URL", db_url)
    assert main(["db", "current"]) == 0
    assert "none" in capsys.readouterr().out
    assert main(["db", "upgrade"]) == 0
    assert head_revision() in capsys.readouterr().out
    assert main(["db", "current"]) == 0
    assert head_revision() in capsys.readouterr().out


def test_bad_urls() -> None:
    from vidra.errors import ConfigError

    with pytest.raises(ConfigError, match="not valid"):
        TrajectoryStore("not a url")
    with pytest.raises(ConfigError, match="not supported"):
        TrajectoryStore("mysql://u@h/db")


def test_upgrade_from_an_older_revision(tmp_path: Path) -> None:
    from vidra.storage import upgrade
    from vidra.storage.engine import make_engine

    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = make_engine(url)
    assert upgrade(engine, "0001") == "0001"
    with engine.connect() as conn:
        cols = [r[1] for r in conn.exec_driver_sql("PRAGMA table_info(step)")]
    assert "messages" not in cols
    store = TrajectoryStore(url)  # migrates to head on open
    assert current_revision(store.engine) == head_revision() != "0001"
    with store.engine.connect() as conn:
        cols = [r[1] for r in conn.exec_driver_sql("PRAGMA table_info(step)")]
    assert "messages" in cols
    store.close()


def test_leaving_out_evaluation_traffic_probes_an_index(db_url: str) -> None:
    """Training sets leave out evaluated episodes with a per-episode ``NOT EXISTS`` on
    ``eval_question.job_id``; the schema indexes it, and SQLite's plan uses the index."""
    from sqlalchemy import inspect, select

    from vidra.storage.orm import EpisodeRow
    from vidra.storage.queries import EpisodeFilter

    with TrajectoryStore(db_url) as store:
        indexes = inspect(store.engine).get_indexes("eval_question")
        assert any(i["column_names"] == ["job_id"] for i in indexes)
        if store.engine.dialect.name != "sqlite":
            return
        with store.engine.connect() as conn:
            stmt = select(EpisodeRow.id).where(*EpisodeFilter(evaluations=False).clauses(conn))
            sql = str(stmt.compile(store.engine, compile_kwargs={"literal_binds": True}))
            plan = " ".join(str(r[-1]) for r in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}"))
    assert "ix_eval_question_job_id" in plan, plan
