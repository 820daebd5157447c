"""Processes and the turns they own: heartbeats, and the turns their dead owners left.

Every running bot process keeps a row here, refreshed every few seconds. A reply streaming
in `turns` names its owner; when the owner's heartbeat is stale (or gone, or the process is
known dead), any live process may adopt the turn, once, and close it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.store.conversations import Place
from bot.store.files_table import RequestSlot
from bot.store.models import Outcome, Process, Turn, utcnow


@dataclass(frozen=True)
class Peer:
    id: str
    host: str
    pid: int
    beat_at: datetime


@dataclass(frozen=True)
class Orphan:
    """A reply left streaming by a process that is gone."""

    turn_id: int
    place: Place
    text: str
    progress: dict[str, Any]
    owner: str | None


class Processes:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def beat(self, process_id: str, *, host: str, pid: int) -> None:
        """Say this process is alive (the first beat registers it)."""
        now = utcnow()
        async with self._sessions() as session, session.begin():
            found = await session.execute(
                update(Process).where(Process.id == process_id).values(beat_at=now)
            )
            if not found.rowcount:  # type: ignore[attr-defined]
                session.add(Process(id=process_id, host=host, pid=pid, started_at=now, beat_at=now))

    async def forget(self, *process_ids: str) -> None:
        """Processes that are gone (or leaving): their rows, and their Claude requests,
        which stop counting as in flight now rather than when they expire (a replica that
        died with eight in flight would hold the capacity for a quarter of an hour)."""
        if not process_ids:
            return
        theirs = RequestSlot.owner.in_(process_ids)
        async with self._sessions() as session, session.begin():
            await session.execute(delete(Process).where(Process.id.in_(process_ids)))
            # Waiting ones go (one that was only slow puts them back at its next tick);
            # those in flight are over, though they still count for their minute.
            await session.execute(delete(RequestSlot).where(theirs, RequestSlot.waiting.is_(True)))
            await session.execute(
                update(RequestSlot).where(theirs, RequestSlot.done.is_(False)).values(done=True)
            )

    async def peers(self) -> list[Peer]:
        async with self._sessions() as session:
            rows = (await session.scalars(select(Process))).all()
        # SQLite hands back naive datetimes; they were written in UTC.
        return [Peer(p.id, p.host, p.pid, p.beat_at.replace(tzinfo=UTC)) for p in rows]

    async def orphans(self, *, live: set[str]) -> list[Orphan]:
        """Replies still streaming whose owner is not among the `live` processes."""
        query = (
            select(Turn)
            .where(
                Turn.outcome == Outcome.STREAMING,
                or_(Turn.owner.is_(None), Turn.owner.not_in(live)),
            )
            .order_by(Turn.id)
        )
        async with self._sessions() as session:
            rows = (await session.scalars(query)).all()
        return [
            Orphan(
                t.id,
                Place(t.team_id, t.channel_id, t.thread_ts),
                t.text,
                json.loads(t.progress) if t.progress else {},
                t.owner,
            )
            for t in rows
        ]

    async def adopt(self, orphan: Orphan, process_id: str) -> bool:
        """Take an orphan over; True for exactly one of the processes that try."""
        owner = Turn.owner.is_(None) if orphan.owner is None else Turn.owner == orphan.owner
        async with self._sessions() as session, session.begin():
            taken = await session.execute(
                update(Turn)
                .where(Turn.id == orphan.turn_id, Turn.outcome == Outcome.STREAMING, owner)
                .values(owner=process_id)
            )
        return bool(taken.rowcount)  # type: ignore[attr-defined]
