"""The fair queue of Claude requests, in the database so that every replica shares it.

A request beyond the number allowed in flight waits. Its place is round-robin across
people: a person's k-th waiting request ranks after everyone's (k-1)-th, counting what they
were served already (requests in flight, and those started in the last minute), so one
person's burst never starves the others.
Each process ticks for its own waiting requests (one transaction, under the same lock as
taking a slot): it shows they are still wanted, grants whatever the capacity allows to
whoever is first, and learns each one's place.

The capacity (how many may be in flight) is one shared row, changed by the adjustments
each process learnt from Anthropic's answers (bot.engine.capacity).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, delete, func, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import ColumnElement
from sqlalchemy.sql.expression import false

from bot.store.files_table import Capacity, RequestSlot
from bot.store.models import Process

CLAUDE = "claude"
# A waiting request whose process has not ticked for this long is gone (the process died).
STALE = timedelta(seconds=15)
START = 8.0  # how many may be in flight before Anthropic has said anything
SERVED_WINDOW = timedelta(seconds=60)


@dataclass(frozen=True)
class Adjustment:
    """What a process learnt from Anthropic since its last tick."""

    factor: float = 1.0  # < 1: Anthropic said to slow down
    raises: int = 0  # answers that showed room to spare
    paused_until: datetime | None = None  # a 429's retry-after: start nothing new until then

    def __bool__(self) -> bool:
        return self.factor != 1.0 or self.raises > 0 or self.paused_until is not None


async def lock(session: AsyncSession) -> None:
    """Serialise every change to the slots and the queue, from the transaction's start."""
    if (await session.connection()).dialect.name == "postgresql":
        await session.execute(text("SELECT pg_advisory_xact_lock(hashtext('slots'))"))
    else:
        # A write statement (matching nothing) takes SQLite's write lock now, so a read
        # that comes first cannot be overtaken by another writer before this one writes.
        await session.execute(update(Capacity).where(false()).values(allowed=0))


async def capacity(
    session: AsyncSession, ceiling: int, now: datetime, change: Adjustment | None = None
) -> tuple[int, bool]:
    """How many may be in flight now (never above `ceiling`), and whether starts are paused."""
    row = await session.get(Capacity, CLAUDE)
    if row is None:
        row = Capacity(name=CLAUDE, allowed=min(float(ceiling), START), updated_at=now)
        session.add(row)
    allowed = min(float(ceiling), row.allowed)
    if change:
        # Only a queue is evidence that more room is needed; a raise without one is a guess.
        allowed = max(1.0, allowed * change.factor)
        allowed = min(float(ceiling), allowed + change.raises)
        if change.paused_until is not None and not _before(change.paused_until, row.paused_until):
            row.paused_until = change.paused_until
        row.allowed, row.updated_at = allowed, now
    paused = row.paused_until is not None and _before(now, row.paused_until)
    return max(1, int(allowed)), paused


def _before(a: datetime, b: datetime | None) -> bool:
    if b is None:
        return False
    return a < (b if b.tzinfo else b.replace(tzinfo=a.tzinfo))


def flying(now: datetime) -> list[ColumnElement[bool]]:
    return [
        RequestSlot.done.is_(False),
        RequestSlot.waiting.is_(False),
        RequestSlot.expires_at > now,
    ]


async def settle(
    session: AsyncSession, *, now: datetime, allowed: int, paused: bool, seconds: float
) -> dict[int, int]:
    """Grant the free slots to the first in fair order; each one still waiting: how many
    requests are ahead of it."""
    # A waiting request not seen for a while is dropped only if its process is gone too: a
    # live process whose ticks failed for a while (a busy SQLite) keeps its place in line.
    alive = select(Process.id).where(Process.beat_at > now - STALE)
    await session.execute(
        delete(RequestSlot).where(
            RequestSlot.waiting.is_(True),
            RequestSlot.seen_at < now - STALE,
            or_(RequestSlot.owner.is_(None), RequestSlot.owner.not_in(alive)),
        )
    )
    in_flight = int(await session.scalar(select(func.count()).where(*flying(now))) or 0)
    # A person's share so far: requests in flight, and those started in the last minute.
    served = or_(and_(*flying(now)), RequestSlot.started_at > now - SERVED_WINDOW)
    per_user = defaultdict(
        int,
        (
            await session.execute(
                select(RequestSlot.user_id, func.count())
                .where(RequestSlot.waiting.is_(False), served)
                .group_by(RequestSlot.user_id)
            )
        ).all(),
    )
    waiting = (
        await session.execute(
            select(RequestSlot.id, RequestSlot.user_id)
            .where(RequestSlot.waiting.is_(True))
            .order_by(RequestSlot.started_at, RequestSlot.id)
        )
    ).all()
    ranked = []
    for order, (slot_id, user_id) in enumerate(waiting):
        ranked.append((per_user[user_id], order, slot_id))
        per_user[user_id] += 1
    ranked.sort()
    free = 0 if paused else max(0, allowed - in_flight)
    granted = [slot_id for _, _, slot_id in ranked[:free]]
    if granted:
        await session.execute(
            update(RequestSlot)
            .where(RequestSlot.id.in_(granted))
            .values(waiting=False, expires_at=now + timedelta(seconds=seconds))
        )
    return {slot_id: ahead for ahead, (_, _, slot_id) in enumerate(ranked[free:])}
