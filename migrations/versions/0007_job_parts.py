"""a large ingest job is split into parts that workers share

A part is a job of its own (queued, run, resumed and re-sent like any other) whose parent is
the job the client submitted; the parent runs nothing itself and ends when its last part ends.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 00:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("parts", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("parent_id", sa.String(36), nullable=True))
        batch.create_foreign_key(
            "fk_jobs_parent_id_jobs", "jobs", ["parent_id"], ["id"], ondelete="CASCADE"
        )
        batch.create_index("ix_jobs_parent_id", ["parent_id"])


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_index("ix_jobs_parent_id")
        batch.drop_constraint("fk_jobs_parent_id_jobs", type_="foreignkey")
        batch.drop_column("parent_id")
        batch.drop_column("parts")
