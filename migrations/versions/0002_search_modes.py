"""search modes, filterable fields, word-piece counts for the language check

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 00:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("collections") as batch:
        batch.add_column(
            sa.Column("mode", sa.String(length=8), nullable=False, server_default="auto")
        )
        batch.add_column(
            sa.Column("filterable", sa.JSON(), nullable=False, server_default=sa.text("'{}'"))
        )
    with op.batch_alter_table("documents") as batch:
        batch.add_column(
            sa.Column("word_pieces", sa.Integer(), nullable=False, server_default="0")
        )
        batch.add_column(
            sa.Column("unknown_word_pieces", sa.Integer(), nullable=False, server_default="0")
        )


def downgrade() -> None:
    with op.batch_alter_table("documents") as batch:
        batch.drop_column("unknown_word_pieces")
        batch.drop_column("word_pieces")
    with op.batch_alter_table("collections") as batch:
        batch.drop_column("filterable")
        batch.drop_column("mode")
