"""rate limits in the database: the requests people started, shared by every replica

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 03:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "request_slots",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("user_id", sa.String(length=128), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("done", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_request_slots")),
    )
    op.create_index("ix_request_slots_user", "request_slots", ["user_id", "started_at"])
    op.create_index("ix_request_slots_in_flight", "request_slots", ["done", "expires_at"])


def downgrade() -> None:
    op.drop_index("ix_request_slots_in_flight", table_name="request_slots")
    op.drop_index("ix_request_slots_user", table_name="request_slots")
    op.drop_table("request_slots")
