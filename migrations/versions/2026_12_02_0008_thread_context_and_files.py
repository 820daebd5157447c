"""thread context from Slack and files sent to Claude

Turns read from a Slack thread keep their author's display name; questions keep the images
and PDFs sent with them (as JSON, never the bytes); files uploaded to Anthropic's Files API
are remembered, so that later turns reuse them instead of uploading again.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 01:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("turns", schema=None) as batch_op:
        batch_op.add_column(sa.Column("author_name", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("attachments", sa.Text(), nullable=True))
    op.create_table(
        "uploaded_files",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("team_id", sa.String(length=32), nullable=False),
        sa.Column("source_id", sa.String(length=64), nullable=False),
        sa.Column("file_id", sa.String(length=128), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("media_type", sa.String(length=128), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_uploaded_files")),
        sa.UniqueConstraint("team_id", "source_id", name=op.f("uq_uploaded_files_team_id")),
    )


def downgrade() -> None:
    op.drop_table("uploaded_files")
    with op.batch_alter_table("turns", schema=None) as batch_op:
        batch_op.drop_column("attachments")
        batch_op.drop_column("author_name")
