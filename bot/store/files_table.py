"""Tables of what is kept of Slack beyond the turns (kept apart: models.py is full): files
uploaded to Anthropic's Files API, how far each thread has been read, Stop clicks, and the
requests people started (rate limits, the fair queue, and how many may be in flight)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, Float, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.sql.expression import false

from bot.store.models import Base, utcnow


class UploadedFile(Base):
    """A Slack file uploaded once to Anthropic's Files API, reused by later turns."""

    __tablename__ = "uploaded_files"
    __table_args__ = (UniqueConstraint("team_id", "source_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    team_id: Mapped[str] = mapped_column(String(32))
    source_id: Mapped[str] = mapped_column(String(64))  # Slack's file id (F…)
    file_id: Mapped[str] = mapped_column(String(128))  # Anthropic's (file_…)
    name: Mapped[str] = mapped_column(String(255))
    media_type: Mapped[str] = mapped_column(String(128))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ThreadRead(Base):
    """How far a Slack thread has been read as context: the next read starts after it.

    Kept apart from the turns, so that messages a read left out (a limit, a failure) are
    read the next time instead of being skipped for good.
    """

    __tablename__ = "thread_reads"

    team_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    channel_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    thread_ts: Mapped[str] = mapped_column(String(255), primary_key=True)
    read_to: Mapped[str] = mapped_column(String(32))


class StopRequest(Base):
    """A Stop click, for the process streaming that reply (it may be another replica)."""

    __tablename__ = "stop_requests"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)  # the Stop button's value
    user_id: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class RequestSlot(Base):
    """A Claude request a person started: counted for the per-minute limit, and in flight
    until done (or, for a process that died, until it expires). Shared by every replica.

    A request beyond the number allowed in flight waits (`waiting`) in the fair queue; its
    process (`owner`) shows it is still waiting by refreshing `seen_at`."""

    __tablename__ = "request_slots"
    __table_args__ = (
        Index("ix_request_slots_user", "user_id", "started_at"),
        Index("ix_request_slots_in_flight", "done", "expires_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(String(128))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    done: Mapped[bool] = mapped_column(Boolean, default=False)
    waiting: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    owner: Mapped[str | None] = mapped_column(String(64))
    seen_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Capacity(Base):
    """How many Claude requests may be in flight, learnt from Anthropic's own limits and
    shared by every replica (one row: "claude")."""

    __tablename__ = "capacity"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    allowed: Mapped[float] = mapped_column(Float)  # requests in flight at once
    paused_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class SlackWriteBudget(Base):
    """A token bucket of Slack's rate limits (one per app token, method and, for posts,
    channel), shared by every replica so that together they stay within what Slack allows.
    Times are Unix seconds: replicas on several machines share the wall clock."""

    __tablename__ = "slack_write_budgets"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    tokens: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)
    paused_until: Mapped[float] = mapped_column(Float, default=0.0)
