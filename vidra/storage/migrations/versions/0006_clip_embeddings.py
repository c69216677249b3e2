"""per-clip image embeddings for vector search over a video index

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05

- index_clip_embedding: one float32 vector per clip and embedder (an aligned image-text
  encoder such as CLIP or SigLIP), L2-normalised, stored as bytes on both databases. Search
  is exact cosine over one index's clips (at most ``index.max_clips`` of them), so it needs
  no vector extension.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "index_clip_embedding",
        sa.Column("clip_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("index_id", sa.String(length=32), nullable=False),
        sa.Column("embedder", sa.String(length=64), nullable=False),
        sa.Column("dim", sa.Integer(), nullable=False),
        sa.Column("vector", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["clip_id"], ["index_clip.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["index_id"], ["video_index.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("clip_id", "embedder"),
    )
    op.create_index(
        "ix_index_clip_embedding_index", "index_clip_embedding", ["index_id", "embedder"]
    )


def downgrade() -> None:
    op.drop_index("ix_index_clip_embedding_index", table_name="index_clip_embedding")
    op.drop_table("index_clip_embedding")
