"""the searchable video index: clips with captions, and full-text search over them

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02

- video_index: one index per video content and configuration (stride, captioner), built in
  batches and resumable (clips_done / clips_total, status).
- index_clip: a clip's time span, the frames it was captioned from, and the caption.
- full-text search: an FTS5 table kept in step by triggers on SQLite; a generated tsvector
  column with a GIN index on PostgreSQL.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "video_index",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("config_key", sa.String(length=64), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("stride_s", sa.Float(), nullable=False),
        sa.Column("clips_total", sa.Integer(), nullable=False),
        sa.Column("clips_done", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("content_hash", "config_key", name="uq_video_index"),
    )
    op.create_table(
        "index_clip",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("index_id", sa.String(length=32), nullable=False),
        sa.Column("clip_no", sa.Integer(), nullable=False),
        sa.Column("t0", sa.Float(), nullable=False),
        sa.Column("t1", sa.Float(), nullable=False),
        sa.Column("frames", sa.JSON(), nullable=False),
        sa.Column("caption", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["index_id"], ["video_index.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("index_id", "clip_no", name="uq_index_clip"),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "ALTER TABLE index_clip ADD COLUMN caption_tsv tsvector "
            "GENERATED ALWAYS AS (to_tsvector('simple', caption)) STORED"
        )
        op.execute("CREATE INDEX ix_index_clip_tsv ON index_clip USING GIN (caption_tsv)")
        op.execute("CREATE INDEX ix_index_clip_index_t0 ON index_clip (index_id, t0)")
        return
    op.create_index("ix_index_clip_index_t0", "index_clip", ["index_id", "t0"])
    op.execute(
        "CREATE VIRTUAL TABLE index_clip_fts USING fts5("
        "caption, content='index_clip', content_rowid='id', tokenize='unicode61')"
    )
    op.execute(
        "CREATE TRIGGER index_clip_ai AFTER INSERT ON index_clip BEGIN "
        "INSERT INTO index_clip_fts(rowid, caption) VALUES (new.id, new.caption); END"
    )
    op.execute(
        "CREATE TRIGGER index_clip_ad AFTER DELETE ON index_clip BEGIN "
        "INSERT INTO index_clip_fts(index_clip_fts, rowid, caption) "
        "VALUES ('delete', old.id, old.caption); END"
    )
    op.execute(
        "CREATE TRIGGER index_clip_au AFTER UPDATE ON index_clip BEGIN "
        "INSERT INTO index_clip_fts(index_clip_fts, rowid, caption) "
        "VALUES ('delete', old.id, old.caption); "
        "INSERT INTO index_clip_fts(rowid, caption) VALUES (new.id, new.caption); END"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for trigger in ("index_clip_ai", "index_clip_ad", "index_clip_au"):
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        op.execute("DROP TABLE IF EXISTS index_clip_fts")
    op.drop_table("index_clip")
    op.drop_table("video_index")
