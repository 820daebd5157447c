"""the fair queue: requests waiting for a slot, how many may be in flight at once, and
Slack's write budgets shared by every replica

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02 04:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("request_slots") as batch:
        batch.add_column(
            sa.Column("waiting", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch.add_column(sa.Column("owner", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("seen_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "capacity",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("allowed", sa.Float(), nullable=False),
        sa.Column("paused_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_capacity")),
    )
    op.create_table(
        "slack_write_budgets",
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("tokens", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.Column("paused_until", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_slack_write_budgets")),
    )


def downgrade() -> None:
    op.drop_table("slack_write_budgets")
    op.drop_table("capacity")
    with op.batch_alter_table("request_slots") as batch:
        batch.drop_column("seen_at")
        batch.drop_column("owner")
        batch.drop_column("waiting")
