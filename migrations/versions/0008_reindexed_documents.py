"""a re-index records what it has written, per document

Its parts share the documents through this record, and a re-index resumed after an
interruption skips what it holds; the rows go when the re-index swaps in or is given up.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 23:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "reindexed_documents",
        sa.Column("job_id", sa.String(36), nullable=False),
        sa.Column("document_id", sa.String(256), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("chunk_count", sa.Integer(), nullable=False),
        sa.Column("word_pieces", sa.Integer(), nullable=False),
        sa.Column("unknown_word_pieces", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["jobs.id"],
            name="fk_reindexed_documents_job_id_jobs",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("job_id", "document_id", name="pk_reindexed_documents"),
    )


def downgrade() -> None:
    op.drop_table("reindexed_documents")
