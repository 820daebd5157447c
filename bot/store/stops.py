"""Stop clicks shared by every process: any replica records one, the one streaming the reply
finds it within a poll. A mixin of `Store`; each method is one transaction."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.store.files_table import StopRequest
from bot.store.inserts import insert_new
from bot.store.models import utcnow

# A click older than this is for a reply long gone.
STOP_RETENTION = timedelta(hours=1)


class StopStore:
    _sessions: async_sessionmaker[AsyncSession]

    async def request_stop(self, key: str, user_id: str) -> None:
        async with self._sessions() as session:
            # Clicks for replies long gone are cleared here, on the rare path, not by the
            # poll that runs every half second while replies stream.
            stale = StopRequest.created_at < utcnow() - STOP_RETENTION
            await session.execute(delete(StopRequest).where(stale))
            await insert_new(session, StopRequest, key=key, user_id=user_id)  # the first counts
            await session.commit()

    async def take_stops(self, keys: Sequence[str]) -> dict[str, str]:
        """The Stop clicks for these replies (key → who clicked), removed as they are taken."""
        if not keys:
            return {}
        async with self._sessions() as session, session.begin():
            rows = (
                await session.scalars(select(StopRequest).where(StopRequest.key.in_(list(keys))))
            ).all()
            found = {row.key: row.user_id for row in rows}
            if found:
                await session.execute(delete(StopRequest).where(StopRequest.key.in_(list(found))))
        return found
