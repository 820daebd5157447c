"""Per-channel settings, in the database so that a change is in force at once on every
replica: one row per channel and setting, with who set it and when. A row whose value is
NULL was cleared by someone (the default applies again, and who cleared it is kept)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import DateTime, String, Text, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from bot.store.models import Base


class ChannelSettingRow(Base):
    __tablename__ = "channel_settings"

    team_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    channel_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[str | None] = mapped_column(Text)
    changed_by: Mapped[str] = mapped_column(String(128))
    changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


@dataclass(frozen=True)
class Stored:
    value: str | None  # None: cleared, the default applies
    changed_by: str
    changed_at: datetime


class ChannelSettingsStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def read(self, team_id: str, channel_id: str) -> dict[str, Stored]:
        query = select(ChannelSettingRow).where(
            ChannelSettingRow.team_id == team_id, ChannelSettingRow.channel_id == channel_id
        )
        async with self._sessions() as session:
            rows = (await session.scalars(query)).all()
        return {r.name: Stored(r.value, r.changed_by, r.changed_at) for r in rows}

    async def write(
        self,
        team_id: str,
        channel_id: str,
        name: str,
        value: str | None,
        *,
        user_id: str,
        now: datetime,
    ) -> None:
        values = {
            "team_id": team_id,
            "channel_id": channel_id,
            "name": name,
            "value": value,
            "changed_by": user_id,
            "changed_at": now,
        }
        async with self._sessions() as session, session.begin():
            postgres = (await session.connection()).dialect.name == "postgresql"
            insert = pg_insert if postgres else sqlite_insert
            statement = insert(ChannelSettingRow).values(**values)
            await session.execute(
                statement.on_conflict_do_update(
                    index_elements=["team_id", "channel_id", "name"],
                    set_={"value": value, "changed_by": user_id, "changed_at": now},
                )
            )

    async def configured(self, team_id: str) -> list[str]:
        """The channels of a workspace with any setting of their own."""
        query = (
            select(ChannelSettingRow.channel_id)
            .where(ChannelSettingRow.team_id == team_id)
            .distinct()
            .order_by(ChannelSettingRow.channel_id)
        )
        async with self._sessions() as session:
            return list((await session.scalars(query)).all())
