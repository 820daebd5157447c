"""Forgetting stored conversations: a thread's or a channel's on request, and everything
older than the retention period. The ledger's numbers stay (its rows lose only their link to
the turn); a reply still streaming is left alone. A mixin of `Store`."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.store.models import Outcome, Turn


class ForgetStore:
    _sessions: async_sessionmaker[AsyncSession]

    async def forget(self, team_id: str, channel_id: str, thread_ts: str | None = None) -> int:
        """Delete the stored turns of a thread (or, without one, of the whole channel);
        how many were deleted."""
        where = [
            Turn.team_id == team_id,
            Turn.channel_id == channel_id,
            Turn.outcome != Outcome.STREAMING,
        ]
        if thread_ts is not None:
            where.append(Turn.thread_ts == thread_ts)
        async with self._sessions() as session, session.begin():
            deleted = await session.execute(delete(Turn).where(*where))
        return int(deleted.rowcount)  # type: ignore[attr-defined]

    async def forget_before(self, before: datetime) -> int:
        """Delete every turn (text, attachments' names) stored before `before`."""
        async with self._sessions() as session, session.begin():
            deleted = await session.execute(
                delete(Turn).where(Turn.created_at < before, Turn.outcome != Outcome.STREAMING)
            )
        return int(deleted.rowcount)  # type: ignore[attr-defined]
