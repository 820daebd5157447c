"""Rate limits kept in the database, so that replicas together allow what one process would:
requests per person per minute, and requests in flight overall and per person.

Taking a slot is one transaction that no other take interleaves with (an advisory lock on
PostgreSQL; on SQLite the write lock its first INSERT takes), like the budget holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.store.files_table import RequestSlot

WINDOW = timedelta(seconds=60)
KEEP = timedelta(hours=1)  # rows older than this count for nothing


@dataclass(frozen=True)
class Limits:
    per_minute: int
    concurrent: int
    per_user_concurrent: int


@dataclass(frozen=True)
class Over:
    """The limit a request would pass: "per_minute" | "user_busy" | "busy", the count it
    found, and for per_minute when the oldest request of the window leaves it."""

    reason: str
    count: int
    frees_at: datetime | None = None


class RateStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def take(
        self, user_id: str, limits: Limits, *, now: datetime, seconds: float
    ) -> int | Over:
        """A slot for a request of `user_id` (its id), or the limit it would pass. A slot
        never given back (its process died) stops counting as in flight after `seconds`."""
        async with self._sessions() as session:
            await session.begin()
            if (await session.connection()).dialect.name == "postgresql":
                await session.execute(text("SELECT pg_advisory_xact_lock(hashtext('slots'))"))
            slot = RequestSlot(
                user_id=user_id,
                started_at=now,
                expires_at=now + timedelta(seconds=seconds),
                done=False,
            )
            session.add(slot)
            await session.flush()
            over = await _over(session, slot.id, user_id, limits, now)
            if over is not None:
                await session.rollback()
                return over
            await session.execute(delete(RequestSlot).where(RequestSlot.started_at < now - KEEP))
            await session.commit()
            return slot.id

    async def give_back(self, slot_id: int) -> None:
        """The request is over: no longer in flight (it still counts for its minute)."""
        async with self._sessions() as session, session.begin():
            await session.execute(
                update(RequestSlot).where(RequestSlot.id == slot_id).values(done=True)
            )


async def _over(
    session: AsyncSession, own: int, user_id: str, limits: Limits, now: datetime
) -> Over | None:
    others = RequestSlot.id != own
    recent = select(func.count(), func.min(RequestSlot.started_at)).where(
        others, RequestSlot.user_id == user_id, RequestSlot.started_at > now - WINDOW
    )
    count, oldest = (await session.execute(recent)).one()
    if count >= limits.per_minute:
        frees = oldest if oldest is None or oldest.tzinfo else oldest.replace(tzinfo=now.tzinfo)
        return Over("per_minute", int(count), None if frees is None else frees + WINDOW)
    flying = select(func.count()).where(
        others, RequestSlot.done.is_(False), RequestSlot.expires_at > now
    )
    mine = int(await session.scalar(flying.where(RequestSlot.user_id == user_id)) or 0)
    if mine >= limits.per_user_concurrent:
        return Over("user_busy", mine)
    total = int(await session.scalar(flying) or 0)
    if total >= limits.concurrent:
        return Over("busy", total)
    return None
