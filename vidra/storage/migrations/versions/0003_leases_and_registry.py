"""job leases (owner, heartbeat); registry versions keyed by tracking store; promotions

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02

- job.owner / job.heartbeat_at: the process running a job holds a lease on it; `resume`
  takes only jobs whose lease expired, so two processes never run one job.
- model_version.tracking_uri / .source: which MLflow store a version lives in (a new
  tracking store numbers from 1 again) and where its artifacts are; unique per store.
- episode.worker: where the episode ran (``host:pid`` or ``ray:<node>:<pid>``).
- training_run.promotion: the champions a cycle moves (all roles together) and how far it got.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("job", schema=None) as batch_op:
        batch_op.add_column(sa.Column("owner", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("episode", schema=None) as batch_op:
        batch_op.add_column(sa.Column("worker", sa.String(length=200), nullable=True))
    with op.batch_alter_table("model_version", schema=None) as batch_op:
        batch_op.add_column(sa.Column("tracking_uri", sa.Text(), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("source", sa.Text(), nullable=True))
        batch_op.drop_constraint("uq_model_version", type_="unique")
        batch_op.create_unique_constraint(
            "uq_model_version_store", ["tracking_uri", "registry_name", "version"]
        )
    with op.batch_alter_table("training_run", schema=None) as batch_op:
        batch_op.add_column(sa.Column("promotion", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("training_run", schema=None) as batch_op:
        batch_op.drop_column("promotion")
    with op.batch_alter_table("model_version", schema=None) as batch_op:
        batch_op.drop_constraint("uq_model_version_store", type_="unique")
        batch_op.create_unique_constraint("uq_model_version", ["registry_name", "version"])
        batch_op.drop_column("source")
        batch_op.drop_column("tracking_uri")
    with op.batch_alter_table("episode", schema=None) as batch_op:
        batch_op.drop_column("worker")
    with op.batch_alter_table("job", schema=None) as batch_op:
        batch_op.drop_column("heartbeat_at")
        batch_op.drop_column("owner")
