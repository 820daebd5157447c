"""thinking tokens, refusals, cost estimates, tool use, and budget holds in the database

The ledger learns what today's API reports (thinking tokens, where and how fast the request
ran, server tool calls, a refusal's category) and keeps a conservative estimate beside a
cost it cannot price, so budgets never count such a request as $0. Budget holds move from
one process's memory into a table every replica sees.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 00:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _ledger_columns() -> list[sa.Column[object]]:
    return [
        sa.Column("thinking_tokens", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("inference_geo", sa.String(length=32), nullable=True),
        sa.Column("speed", sa.String(length=16), nullable=True),
        sa.Column("web_search_requests", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("web_fetch_requests", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("estimate_micros", sa.BigInteger(), nullable=True),
        sa.Column("stop_detail", sa.String(length=32), nullable=True),
    ]


def _daily_columns() -> list[sa.Column[int]]:
    return [
        sa.Column("thinking_tokens", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("estimated_micros", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("refused_requests", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("spend_limited_requests", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("web_search_requests", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("web_fetch_requests", sa.Integer(), nullable=False, server_default="0"),
    ]


def upgrade() -> None:
    with op.batch_alter_table("usage_ledger", schema=None) as batch_op:
        for column in _ledger_columns():
            batch_op.add_column(column)
    for table in ("usage_daily_channel", "usage_daily_user"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            for column in _daily_columns():
                batch_op.add_column(column)
    # Rows written before this revision were priced or unknown; an unknown one gets no
    # estimate here (the prices of that day are not known), so budgets count it as before.
    op.execute("UPDATE usage_ledger SET estimate_micros = cost_micros")
    op.create_table(
        "budget_holds",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("team_id", sa.String(length=32), nullable=False),
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("target", sa.String(length=128), nullable=False),
        sa.Column("period", sa.String(length=16), nullable=False),
        sa.Column("window", sa.String(length=10), nullable=False),
        sa.Column("micros", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_budget_holds")),
    )
    op.create_index(
        "ix_budget_holds_budget",
        "budget_holds",
        ["team_id", "scope", "target", "period", "window"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_budget_holds_budget", table_name="budget_holds")
    op.drop_table("budget_holds")
    for table in ("usage_daily_channel", "usage_daily_user"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            for column in reversed(_daily_columns()):
                batch_op.drop_column(column.name)
    with op.batch_alter_table("usage_ledger", schema=None) as batch_op:
        for column in reversed(_ledger_columns()):
            batch_op.drop_column(column.name)
