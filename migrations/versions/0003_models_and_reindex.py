"""a model per collection, re-indexing into a new generation of vectors, job kinds

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 00:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OLD_MINILM_NAME = "sentence-transformers/all-MiniLM-L6-v2"
_MINILM_NAME = "all-MiniLM-L6-v2"


def upgrade() -> None:
    with op.batch_alter_table("collections") as batch:
        batch.add_column(sa.Column("store_name", sa.String(length=80), nullable=True))
        batch.add_column(
            sa.Column("generation", sa.Integer(), nullable=False, server_default="0")
        )
        batch.add_column(sa.Column("reindex", sa.JSON(), nullable=True))
    collections = sa.table(
        "collections",
        sa.column("name", sa.String),
        sa.column("store_name", sa.String),
        sa.column("model", sa.String),
    )
    op.execute(collections.update().values(store_name=collections.c.name))
    op.execute(
        collections.update()
        .where(collections.c.model == _OLD_MINILM_NAME)
        .values(model=_MINILM_NAME)
    )
    with op.batch_alter_table("collections") as batch:
        batch.alter_column("store_name", existing_type=sa.String(length=80), nullable=False)
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(
            sa.Column("kind", sa.String(length=16), nullable=False, server_default="ingest")
        )


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("kind")
    collections = sa.table("collections", sa.column("model", sa.String))
    op.execute(
        collections.update()
        .where(collections.c.model == _MINILM_NAME)
        .values(model=_OLD_MINILM_NAME)
    )
    with op.batch_alter_table("collections") as batch:
        batch.drop_column("reindex")
        batch.drop_column("generation")
        batch.drop_column("store_name")
