"""Rate limits kept in the database, so that replicas together allow what one process would:
requests per person per minute, requests in flight per person, and requests in flight
overall, where a request beyond the capacity waits in the fair queue (bot.store.queue).

Every change is one transaction that no other interleaves with (an advisory lock on
PostgreSQL; on SQLite the write lock its first INSERT or UPDATE takes), like budget holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.store.files_table import RequestSlot
from bot.store.queue import STALE, Adjustment, capacity, lock, settle

WINDOW = timedelta(seconds=60)
KEEP = timedelta(hours=1)  # rows older than this count for nothing


@dataclass(frozen=True)
class Limits:
    per_minute: int
    concurrent: int  # the most in flight, whatever Anthropic allows
    per_user_concurrent: int


@dataclass(frozen=True)
class Over:
    """The limit a request would pass: "per_minute" | "user_busy", the count it found, and
    for per_minute when the oldest request of the window leaves it."""

    reason: str
    count: int
    frees_at: datetime | None = None


@dataclass(frozen=True)
class Waiting:
    """Who asked a waiting request, and when: enough to put it back in its place."""

    user_id: str
    since: datetime


@dataclass(frozen=True)
class Taken:
    """A slot: in flight at once, or waiting with `ahead` requests before it."""

    id: int
    ahead: int | None = None  # None: in flight


class RateStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def take(
        self, user_id: str, limits: Limits, *, now: datetime, seconds: float, owner: str
    ) -> Taken | Over:
        """A slot for a request of `user_id`, or the limit it would pass. A slot never given
        back (its process died) stops counting as in flight after `seconds`."""
        async with self._sessions() as session:
            await session.begin()
            await lock(session)
            # In line behind whoever waits already; `settle` decides.
            slot = _waiting_row(None, Waiting(user_id, now), owner, now, seconds)
            session.add(slot)
            await session.flush()
            over = await _over(session, slot.id, user_id, limits, now)
            if over is not None:
                await session.rollback()
                return over
            allowed, paused = await capacity(session, limits.concurrent, now)
            places = await settle(session, now=now, allowed=allowed, paused=paused, seconds=seconds)
            await session.execute(delete(RequestSlot).where(RequestSlot.started_at < now - KEEP))
            await session.commit()
            return Taken(slot.id, places.get(slot.id))

    async def tick(
        self,
        owner: str,
        waiting: dict[int, Waiting],
        *,
        ceiling: int,
        now: datetime,
        seconds: float,
        change: Adjustment | None = None,
    ) -> dict[int, int | None]:
        """For the waiting requests of process `owner`: None for each now in flight, else
        how many are ahead of it."""
        ids = list(waiting)
        async with self._sessions() as session:
            await session.begin()
            await lock(session)
            if ids:
                await session.execute(
                    update(RequestSlot)
                    .where(RequestSlot.id.in_(ids), RequestSlot.owner == owner)
                    .values(seen_at=now)
                )
                # Another process took this one for dead (its heartbeat lapsed: a busy
                # SQLite) and dropped its waiters; it ticks, so it lives: back in line,
                # where they were.
                present = set(
                    (
                        await session.scalars(select(RequestSlot.id).where(RequestSlot.id.in_(ids)))
                    ).all()
                )
                for slot_id in ids:
                    if slot_id not in present:
                        session.add(_waiting_row(slot_id, waiting[slot_id], owner, now, seconds))
                await session.flush()
            allowed, paused = await capacity(session, ceiling, now, change)
            places = await settle(session, now=now, allowed=allowed, paused=paused, seconds=seconds)
            await session.commit()
        return {i: places.get(i) for i in ids}

    async def give_back(self, slot_id: int) -> None:
        """The request is over: no longer in flight (it still counts for its minute)."""
        async with self._sessions() as session, session.begin():
            await session.execute(
                update(RequestSlot)
                .where(RequestSlot.id == slot_id)
                .values(done=True, waiting=False)
            )


def _waiting_row(
    slot_id: int | None, waiting: Waiting, owner: str, now: datetime, seconds: float
) -> RequestSlot:
    return RequestSlot(
        id=slot_id,
        user_id=waiting.user_id,
        started_at=waiting.since,
        expires_at=waiting.since + timedelta(seconds=seconds),
        done=False,
        waiting=True,
        owner=owner,
        seen_at=now,
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
    # Waiting requests count too: the per-person cap bounds how many one person queues.
    mine = select(func.count()).where(
        others,
        RequestSlot.user_id == user_id,
        RequestSlot.done.is_(False),
        or_(
            RequestSlot.waiting.is_(False) & (RequestSlot.expires_at > now),
            RequestSlot.waiting.is_(True) & (RequestSlot.seen_at >= now - STALE),
        ),
    )
    count = int(await session.scalar(mine) or 0)
    if count >= limits.per_user_concurrent:
        return Over("user_busy", count)
    return None
