"""Conversation queries: events taken, turns, channel memory. Each method is one transaction."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.store.models import MemoryReset, Outcome, SlackEvent, Turn


@dataclass(frozen=True)
class TurnRecord:
    """A stored turn, detached from the session."""

    id: int
    role: str
    user_id: str | None
    text: str
    outcome: str
    tokens: int | None = None


@dataclass(frozen=True)
class Place:
    """Where a conversation lives: a Slack thread."""

    team_id: str
    channel_id: str
    thread_ts: str


def _record(turn: Turn) -> TurnRecord:
    return TurnRecord(turn.id, turn.role, turn.user_id, turn.text, turn.outcome, turn.tokens)


class Store:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def claim_event(self, event_id: str, team_id: str, event_type: str) -> bool:
        """True the first time an event id is seen; False for every redelivery."""
        async with self._sessions() as session:
            session.add(SlackEvent(event_id=event_id, team_id=team_id, event_type=event_type))
            try:
                await session.commit()
            except IntegrityError:
                return False
        return True

    async def add_turn(
        self,
        place: Place,
        *,
        role: str,
        text: str,
        user_id: str | None,
        ts: str | None,
        outcome: Outcome = Outcome.COMPLETE,
        tokens: int | None = None,
    ) -> int:
        async with self._sessions() as session:
            turn = Turn(
                team_id=place.team_id,
                channel_id=place.channel_id,
                thread_ts=place.thread_ts,
                ts=ts,
                role=role,
                user_id=user_id,
                text=text,
                outcome=outcome,
                tokens=tokens,
            )
            session.add(turn)
            await session.commit()
            return turn.id

    async def thread_turns(self, place: Place) -> list[TurnRecord]:
        """The thread's turns in order, excluding replies still being written."""
        query = (
            select(Turn)
            .where(
                Turn.team_id == place.team_id,
                Turn.channel_id == place.channel_id,
                Turn.thread_ts == place.thread_ts,
                Turn.outcome != Outcome.STREAMING,
            )
            .order_by(Turn.id)
        )
        async with self._sessions() as session:
            rows = (await session.scalars(query)).all()
        return [_record(t) for t in rows]

    async def conversation(self, place: Place, channel_turns: int) -> list[TurnRecord]:
        """What a question in `place` is answered with, oldest first.

        A thread is one conversation; before its first turn come the channel's latest
        `channel_turns` turns from other threads (after the last reset), so a new question
        knows what was said earlier in the channel.
        """
        thread = await self.thread_turns(place)
        if channel_turns <= 0:
            return thread
        async with self._sessions() as session:
            reset = await session.scalar(
                select(func.max(MemoryReset.after_turn_id)).where(
                    MemoryReset.team_id == place.team_id,
                    MemoryReset.channel_id == place.channel_id,
                )
            )
            query = select(Turn).where(
                Turn.team_id == place.team_id,
                Turn.channel_id == place.channel_id,
                Turn.thread_ts != place.thread_ts,
                Turn.outcome != Outcome.STREAMING,
                Turn.id > (reset or 0),
            )
            if thread:
                query = query.where(Turn.id < thread[0].id)
            rows = (
                await session.scalars(query.order_by(Turn.id.desc()).limit(channel_turns))
            ).all()
        return [_record(t) for t in reversed(rows)] + thread

    async def reset_memory(self, team_id: str, channel_id: str, user_id: str | None) -> None:
        """Stop sending the channel's turns so far as context; they stay stored for the ledger."""
        async with self._sessions() as session, session.begin():
            last = await session.scalar(
                select(func.max(Turn.id)).where(
                    Turn.team_id == team_id, Turn.channel_id == channel_id
                )
            )
            session.add(
                MemoryReset(
                    team_id=team_id, channel_id=channel_id, after_turn_id=last or 0, user_id=user_id
                )
            )

    async def set_turn(self, turn_id: int, *, text: str, outcome: Outcome) -> None:
        async with self._sessions() as session, session.begin():
            await session.execute(
                update(Turn).where(Turn.id == turn_id).values(text=text, outcome=outcome)
            )
