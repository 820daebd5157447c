"""Typed models. The Alembic migrations are the schema; `alembic check` keeps the two in step.

Column types are plain (strings, integers, text, timestamps) so PostgreSQL runs the same SQL.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.sql.expression import false as sa_false

# Stable constraint names, so migrations can alter them on every backend.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


# /chat conversations are named by their caller (up to 100 characters) and kept per user;
# Slack's own ids are far shorter.
USER = 128
THREAD = 255


def utcnow() -> datetime:
    return datetime.now(UTC)


class Outcome(StrEnum):
    STREAMING = "streaming"  # a reply being written; never sent to Claude as history
    COMPLETE = "complete"
    PARTIAL = "partial"  # some text, then a failure or a stop
    ERROR = "error"  # no text at all
    REFUSED = "refused"  # Claude declined (stop_reason "refusal"), with or without some text


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class SlackEvent(Base):
    """An Events API delivery we took; the unique event_id makes a redelivery a no-op."""

    __tablename__ = "slack_events"
    # The recovery sweep's question: which are taken and not answered yet.
    __table_args__ = (Index("ix_slack_events_status", "status", "replied"),)

    event_id: Mapped[str] = mapped_column(String(THREAD), primary_key=True)
    team_id: Mapped[str] = mapped_column(String(32))
    event_type: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # taken → (replied) → done. A worker that dies before replying lets its lease run out,
    # and Slack's next delivery of the event is taken again.
    status: Mapped[str] = mapped_column(String(16), server_default="done")
    replied: Mapped[bool] = mapped_column(Boolean, server_default=sa_false())
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # A question taken but not answered yet: the process on it, and what a live process
    # needs to answer it should that one die first (the surface's own JSON).
    owner: Mapped[str | None] = mapped_column(String(64))
    payload: Mapped[str | None] = mapped_column(Text)


class Turn(Base):
    """One message of a conversation: the user's question or the bot's reply."""

    __tablename__ = "turns"
    __table_args__ = (
        Index("ix_turns_thread", "team_id", "channel_id", "thread_ts", "id"),
        Index("ix_turns_channel", "team_id", "channel_id", "id"),
        Index("ix_turns_outcome", "outcome"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    team_id: Mapped[str] = mapped_column(String(32))
    channel_id: Mapped[str] = mapped_column(String(32))
    thread_ts: Mapped[str] = mapped_column(String(THREAD))
    ts: Mapped[str | None] = mapped_column(String(32))
    role: Mapped[str] = mapped_column(String(16))
    user_id: Mapped[str | None] = mapped_column(String(USER))
    text: Mapped[str] = mapped_column(Text)
    tokens: Mapped[int | None] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(16), default=Outcome.COMPLETE)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # While a reply streams: its messages and what it has used so far (JSON), so that a
    # restart after a crash can close it properly.
    progress: Mapped[str | None] = mapped_column(Text)
    # The process streaming the reply (`processes.id`); its heartbeat says it is alive.
    owner: Mapped[str | None] = mapped_column(String(64))
    # A thread message read from Slack as context: its author's display name.
    author_name: Mapped[str | None] = mapped_column(String(255))
    # Images and PDFs sent with a question (JSON list, never the bytes).
    attachments: Mapped[str | None] = mapped_column(Text)


class Process(Base):
    """A running bot process: a heartbeat row, refreshed every few seconds while it lives."""

    __tablename__ = "processes"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    beat_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class MemoryReset(Base):
    """A fresh start in a channel: turns up to `after_turn_id` are no longer sent as context."""

    __tablename__ = "memory_resets"
    __table_args__ = (Index("ix_memory_resets_channel", "team_id", "channel_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    team_id: Mapped[str] = mapped_column(String(32))
    channel_id: Mapped[str] = mapped_column(String(32))
    after_turn_id: Mapped[int] = mapped_column(Integer)
    user_id: Mapped[str | None] = mapped_column(String(USER))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class UsageRecord(Base):
    """One row per Claude request: what was asked for, what answered, what it used."""

    __tablename__ = "usage_ledger"
    __table_args__ = (
        Index("ix_usage_ledger_created_at", "created_at"),
        Index("ix_usage_ledger_channel", "team_id", "channel_id", "created_at"),
        Index("ix_usage_ledger_user", "team_id", "user_id", "created_at"),
        Index("ix_usage_ledger_team_day", "team_id", "day"),
        Index("ix_usage_ledger_channel_day", "team_id", "channel_id", "day"),
        Index("ix_usage_ledger_user_day", "team_id", "user_id", "day"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    team_id: Mapped[str] = mapped_column(String(32))
    channel_id: Mapped[str] = mapped_column(String(32))
    thread_ts: Mapped[str | None] = mapped_column(String(THREAD))
    user_id: Mapped[str | None] = mapped_column(String(USER))
    turn_id: Mapped[int | None] = mapped_column(ForeignKey("turns.id", ondelete="SET NULL"))
    requested_model: Mapped[str] = mapped_column(String(64))
    resolved_model: Mapped[str | None] = mapped_column(String(64))
    input_tokens: Mapped[int] = mapped_column(Integer, default=0)
    output_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cache_write_5m_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cache_write_1h_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cache_read_tokens: Mapped[int] = mapped_column(Integer, default=0)
    stop_reason: Mapped[str | None] = mapped_column(String(32))
    request_id: Mapped[str | None] = mapped_column(String(64))
    ttft_ms: Mapped[int | None] = mapped_column(Integer)
    latency_ms: Mapped[int] = mapped_column(Integer, default=0)
    outcome: Mapped[str] = mapped_column(String(16))
    error_kind: Mapped[str | None] = mapped_column(String(32))
    # Priced when written, from the price table named by price_version; None = unknown.
    cost_micros: Mapped[int | None] = mapped_column(BigInteger)
    cache_savings_micros: Mapped[int | None] = mapped_column(BigInteger)
    price_version: Mapped[str | None] = mapped_column(String(64))
    day: Mapped[str] = mapped_column(String(10), server_default="")  # UTC, YYYY-MM-DD
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # Part of output_tokens (billed as output), as Anthropic breaks it out.
    thinking_tokens: Mapped[int] = mapped_column(Integer, default=0)
    inference_geo: Mapped[str | None] = mapped_column(String(32))
    speed: Mapped[str | None] = mapped_column(String(16))
    web_search_requests: Mapped[int] = mapped_column(Integer, default=0)
    web_fetch_requests: Mapped[int] = mapped_column(Integer, default=0)
    # The conservative figure budgets count when cost_micros is unknown (= it when known).
    estimate_micros: Mapped[int | None] = mapped_column(BigInteger)
    stop_detail: Mapped[str | None] = mapped_column(String(32))  # a refusal's category


class _DailySums:
    """Running sums per UTC day, kept in the transaction that writes each ledger row, so
    reports read thousands of rows instead of millions."""

    requests: Mapped[int] = mapped_column(Integer, default=0)
    input_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    output_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    cache_write_5m_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    cache_write_1h_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    cache_read_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    cost_micros: Mapped[int] = mapped_column(BigInteger, default=0)  # of priced requests
    unknown_cost_requests: Mapped[int] = mapped_column(Integer, default=0)
    cache_savings_micros: Mapped[int] = mapped_column(BigInteger, default=0)
    partial_requests: Mapped[int] = mapped_column(Integer, default=0)
    error_requests: Mapped[int] = mapped_column(Integer, default=0)
    stopped_requests: Mapped[int] = mapped_column(Integer, default=0)
    thinking_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    estimated_micros: Mapped[int] = mapped_column(BigInteger, default=0)  # of unpriced requests
    refused_requests: Mapped[int] = mapped_column(Integer, default=0)
    spend_limited_requests: Mapped[int] = mapped_column(Integer, default=0)
    web_search_requests: Mapped[int] = mapped_column(Integer, default=0)
    web_fetch_requests: Mapped[int] = mapped_column(Integer, default=0)


class UsageDailyChannel(_DailySums, Base):
    __tablename__ = "usage_daily_channel"
    # Stored in primary-key order on SQLite: a report's day range is one contiguous read.
    __table_args__ = {"sqlite_with_rowid": False}  # noqa: RUF012 - SQLAlchemy's own attribute

    team_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    day: Mapped[str] = mapped_column(String(10), primary_key=True)
    channel_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    model: Mapped[str] = mapped_column(String(64), primary_key=True)


class UsageDailyUser(_DailySums, Base):
    __tablename__ = "usage_daily_user"
    __table_args__ = {"sqlite_with_rowid": False}  # noqa: RUF012 - SQLAlchemy's own attribute

    team_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    day: Mapped[str] = mapped_column(String(10), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(USER), primary_key=True)


class Budget(Base):
    """A budget an admin set from Slack; limit_micros None means "no budget" (overrides
    the settings' default). Without a row, the settings' default applies."""

    __tablename__ = "budgets"
    __table_args__ = (UniqueConstraint("team_id", "scope", "target", "period"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    team_id: Mapped[str] = mapped_column(String(32))
    scope: Mapped[str] = mapped_column(String(16))  # workspace | channel | user
    target: Mapped[str] = mapped_column(String(USER))  # "" for the workspace
    period: Mapped[str] = mapped_column(String(16))  # daily | monthly
    limit_micros: Mapped[int | None] = mapped_column(BigInteger)
    set_by: Mapped[str | None] = mapped_column(String(32))
    set_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class BudgetRefusal(Base):
    """A request refused before any model call; costs nothing, counted in the report."""

    __tablename__ = "budget_refusals"
    __table_args__ = (Index("ix_budget_refusals_team_day", "team_id", "day"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    team_id: Mapped[str] = mapped_column(String(32))
    channel_id: Mapped[str] = mapped_column(String(32))
    user_id: Mapped[str | None] = mapped_column(String(USER))
    scope: Mapped[str] = mapped_column(String(16))
    period: Mapped[str] = mapped_column(String(16))
    estimate_micros: Mapped[int] = mapped_column(BigInteger)
    day: Mapped[str] = mapped_column(String(10))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class BudgetWarning(Base):
    """The 80 % warning, given once per budget and period window."""

    __tablename__ = "budget_warnings"
    __table_args__ = (UniqueConstraint("team_id", "scope", "target", "period", "window"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    team_id: Mapped[str] = mapped_column(String(32))
    scope: Mapped[str] = mapped_column(String(16))
    target: Mapped[str] = mapped_column(String(USER))
    period: Mapped[str] = mapped_column(String(16))
    window: Mapped[str] = mapped_column(String(10))  # the window's first day
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class BudgetHold(Base):
    """The worst case of a request in flight, held against one budget until it is recorded.

    Holds live in the database so that every process sees every other's; one that outlives
    its request (a crashed process) stops counting at `expires_at`.
    """

    __tablename__ = "budget_holds"
    __table_args__ = (
        Index("ix_budget_holds_budget", "team_id", "scope", "target", "period", "window"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    team_id: Mapped[str] = mapped_column(String(32))
    scope: Mapped[str] = mapped_column(String(16))
    target: Mapped[str] = mapped_column(String(USER))
    period: Mapped[str] = mapped_column(String(16))
    window: Mapped[str] = mapped_column(String(10))
    micros: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
