"""The table of files uploaded to Anthropic's Files API (kept apart: models.py is full)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

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
