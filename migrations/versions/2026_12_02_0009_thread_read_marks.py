"""how far each Slack thread has been read

Reading a thread's history starts after a mark of its own instead of after the newest stored
message, so that messages a read left out (Slack's limits, a failed read) are read later.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 01:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "thread_reads",
        sa.Column("team_id", sa.String(length=32), nullable=False),
        sa.Column("channel_id", sa.String(length=32), nullable=False),
        sa.Column("thread_ts", sa.String(length=255), nullable=False),
        sa.Column("read_to", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("team_id", "channel_id", "thread_ts", name=op.f("pk_thread_reads")),
    )


def downgrade() -> None:
    op.drop_table("thread_reads")
