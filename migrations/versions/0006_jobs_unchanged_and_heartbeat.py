"""jobs count the documents they found unchanged, and beat while they run

A job counts the documents submitted with the content already indexed; a running job records
a heartbeat with its progress, so a job whose worker died can be told from a slow one.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 00:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(
            sa.Column("documents_unchanged", sa.Integer(), nullable=False, server_default="0")
        )
        batch.add_column(sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("heartbeat_at")
        batch.drop_column("documents_unchanged")
