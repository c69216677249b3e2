"""an index on eval_question.job_id

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05

- ix_eval_question_job_id: training sets leave out evaluation traffic with a correlated
  ``NOT EXISTS (... eval_question.job_id = episode.job_id)`` per episode; without this index
  each probe scans every evaluated question.
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_eval_question_job_id", "eval_question", ["job_id"])


def downgrade() -> None:
    op.drop_index("ix_eval_question_job_id", table_name="eval_question")
