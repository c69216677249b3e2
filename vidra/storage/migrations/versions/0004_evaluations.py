"""evaluation runs and their questions; a job's subtitles and ground-truth evidence spans

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02

- eval_run: one evaluation of a task (key: task, annotations, model, adapters, config), so a
  re-run finds it and skips finished questions.
- eval_question: each question of a run, the job that answered it and its scores.
- job.subtitles: a subtitle file given to the agents; job.evidence: ground-truth time spans
  that show the answer (used for rewards and hit rates, never shown to an agent).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("job", schema=None) as batch_op:
        batch_op.add_column(sa.Column("subtitles", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("evidence", sa.JSON(), nullable=True))
    op.create_table(
        "eval_run",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("task", sa.String(length=64), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("mlflow_run_id", sa.String(length=64), nullable=True),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("eval_run", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_eval_run_key"), ["key"], unique=False)
    op.create_table(
        "eval_question",
        sa.Column("eval_run_id", sa.String(length=32), nullable=False),
        sa.Column("qid", sa.String(length=400), nullable=False),
        sa.Column("job_id", sa.String(length=32), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("result", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["eval_run_id"], ["eval_run.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["job_id"], ["job.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("eval_run_id", "qid"),
    )


def downgrade() -> None:
    op.drop_table("eval_question")
    with op.batch_alter_table("eval_run", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_eval_run_key"))
    op.drop_table("eval_run")
    with op.batch_alter_table("job", schema=None) as batch_op:
        batch_op.drop_column("evidence")
        batch_op.drop_column("subtitles")
