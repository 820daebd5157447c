"""utc days on postgresql

Revision 0003 gave ledger rows written before it their day from `created_at` as text. On
PostgreSQL that text is in the session's time zone, which need not be UTC, so such rows may
carry the wrong day, and the daily sums built from them too. Here those days are put right
and, if any was wrong, the daily sums are rebuilt from the ledger. SQLite stores the UTC
wall time as text, so it was right there and nothing runs.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 23:45:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_UTC_DAY = "to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')"
_SUM_COLUMNS = (
    "requests, input_tokens, output_tokens, cache_write_5m_tokens, cache_write_1h_tokens, "
    "cache_read_tokens, cost_micros, unknown_cost_requests, cache_savings_micros, "
    "partial_requests, error_requests, stopped_requests"
)
# What the bot adds to the daily sums for each ledger row, as one aggregate.
_SUMS = (
    "count(*), sum(input_tokens), sum(output_tokens), sum(cache_write_5m_tokens), "
    "sum(cache_write_1h_tokens), sum(cache_read_tokens), coalesce(sum(cost_micros), 0), "
    "sum(CASE WHEN cost_micros IS NULL THEN 1 ELSE 0 END), "
    "coalesce(sum(cache_savings_micros), 0), "
    "sum(CASE WHEN outcome = 'partial' THEN 1 ELSE 0 END), "
    "sum(CASE WHEN outcome = 'error' THEN 1 ELSE 0 END), "
    "sum(CASE WHEN error_kind = 'stopped' THEN 1 ELSE 0 END)"
)


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    fixed = bind.exec_driver_sql(
        f"UPDATE usage_ledger SET day = {_UTC_DAY} WHERE day <> {_UTC_DAY}"
    ).rowcount
    if not fixed:
        return
    op.execute("DELETE FROM usage_daily_channel")
    op.execute("DELETE FROM usage_daily_user")
    op.execute(
        "INSERT INTO usage_daily_channel (team_id, day, channel_id, model, " + _SUM_COLUMNS + ") "
        "SELECT team_id, day, channel_id, coalesce(resolved_model, requested_model), "
        + _SUMS
        + " FROM usage_ledger GROUP BY team_id, day, channel_id, "
        "coalesce(resolved_model, requested_model)"
    )
    op.execute(
        "INSERT INTO usage_daily_user (team_id, day, user_id, " + _SUM_COLUMNS + ") "
        "SELECT team_id, day, coalesce(user_id, ''), "
        + _SUMS
        + " FROM usage_ledger GROUP BY team_id, day, coalesce(user_id, '')"
    )


def downgrade() -> None:
    # The right days stay right.
    pass
