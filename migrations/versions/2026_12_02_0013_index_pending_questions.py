"""an index for the questions still being answered

Every recovery sweep (every few seconds, in every replica) looks for questions taken and not
answered; slack_events keeps a row for every event ever taken, so without an index that is a
scan of the whole table each time.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02 03:30:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_slack_events_status", "slack_events", ["status", "replied"])


def downgrade() -> None:
    op.drop_index("ix_slack_events_status", table_name="slack_events")
