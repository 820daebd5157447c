"""process heartbeats, turn owners, and ids wide enough for /chat

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 23:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (table, column, old length, new length, nullable): /chat names conversations and users
# with up to 100 characters, and a conversation is kept per user; claim keys of clicks run
# past 64. SQLite ignores these lengths, so only PostgreSQL is altered (no table rebuild).
WIDER = [
    ("slack_events", "event_id", 64, 255, False),
    ("turns", "thread_ts", 32, 255, False),
    ("turns", "user_id", 32, 128, True),
    ("memory_resets", "user_id", 32, 128, True),
    ("usage_ledger", "thread_ts", 32, 255, True),
    ("usage_ledger", "user_id", 32, 128, True),
    ("usage_daily_user", "user_id", 32, 128, False),
    ("budgets", "target", 32, 128, False),
    ("budget_refusals", "user_id", 32, 128, True),
    ("budget_warnings", "target", 32, 128, False),
]


def _resize(*, wider: bool) -> None:
    if op.get_bind().dialect.name == "sqlite":
        return
    for table, column, old, new, nullable in WIDER:
        before, after = (old, new) if wider else (new, old)
        op.alter_column(
            table,
            column,
            existing_type=sa.String(length=before),
            type_=sa.String(length=after),
            existing_nullable=nullable,
        )


def upgrade() -> None:
    op.create_table(
        "processes",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("beat_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_processes")),
    )
    with op.batch_alter_table("turns", schema=None) as batch_op:
        batch_op.add_column(sa.Column("owner", sa.String(length=64), nullable=True))
    _resize(wider=True)


def downgrade() -> None:
    _resize(wider=False)
    with op.batch_alter_table("turns", schema=None) as batch_op:
        batch_op.drop_column("owner")
    op.drop_table("processes")
