"""Conversation queries: events taken, turns, channel memory. Each method is one transaction."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.store.forget import ForgetStore
from bot.store.history import HistoryStore
from bot.store.inserts import insert_new
from bot.store.models import MemoryReset, Outcome, SlackEvent, Turn, utcnow
from bot.store.pending import PendingStore
from bot.store.stops import StopStore


@dataclass(frozen=True)
class TurnRecord:
    """A stored turn, detached from the session."""

    id: int
    role: str
    user_id: str | None
    text: str
    outcome: str
    tokens: int | None = None
    author_name: str | None = None  # a thread message read from Slack: who wrote it
    # Images and PDFs sent with a question: the stored dicts (the engine puts its own
    # objects, bytes and all, in a question it has not stored yet).
    attachments: tuple[Any, ...] = ()


@dataclass(frozen=True)
class Place:
    """Where a conversation lives: a Slack thread."""

    team_id: str
    channel_id: str
    thread_ts: str


def _exchanges(turns: list[Turn]) -> list[tuple[Turn, Turn]]:
    """(question, answer) pairs, in the order they were asked: within each thread, a user's
    turn followed directly by a reply with text."""
    last: dict[str, Turn] = {}
    pairs: list[tuple[Turn, Turn]] = []
    for turn in turns:
        before = last.get(turn.thread_ts)
        last[turn.thread_ts] = turn
        if turn.role == "assistant" and turn.text.strip() and before and before.role == "user":
            pairs.append((before, turn))
    return sorted(pairs, key=lambda pair: pair[0].id)


def _record(turn: Turn) -> TurnRecord:
    attachments = tuple(json.loads(turn.attachments)) if turn.attachments else ()
    return TurnRecord(
        turn.id,
        turn.role,
        turn.user_id,
        turn.text,
        turn.outcome,
        turn.tokens,
        turn.author_name,
        attachments,
    )


class Store(HistoryStore, StopStore, PendingStore, ForgetStore):
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def claim_event(
        self,
        event_id: str,
        team_id: str,
        event_type: str,
        *,
        lease_seconds: float = 60.0,
        now: datetime | None = None,
    ) -> bool:
        """True when this delivery is ours to work on: the first one, or a redelivery of an
        event whose worker died before replying (its lease ran out). False otherwise."""
        now = now or utcnow()
        lease = now + timedelta(seconds=lease_seconds)
        async with self._sessions() as session:
            new = await insert_new(
                session,
                SlackEvent,
                event_id=event_id,
                team_id=team_id,
                event_type=event_type,
                received_at=now,
                status="taken",
                replied=False,
                lease_until=lease,
            )
            if new:
                await session.commit()
                return True
            # Seen before: take it again only if its worker vanished before any reply.
            retaken = await session.execute(
                update(SlackEvent)
                .where(
                    SlackEvent.event_id == event_id,
                    SlackEvent.status == "taken",
                    SlackEvent.replied.is_(False),
                    SlackEvent.lease_until < now,
                )
                .values(lease_until=lease)
            )
            await session.commit()
            return bool(retaken.rowcount)  # type: ignore[attr-defined]

    async def event_replied(self, event_id: str) -> None:
        await self._set_event(event_id, replied=True)

    async def event_done(self, event_id: str) -> None:
        await self._set_event(event_id, status="done", replied=True)

    async def _set_event(self, event_id: str, **values: object) -> None:
        async with self._sessions() as session, session.begin():
            await session.execute(
                update(SlackEvent).where(SlackEvent.event_id == event_id).values(**values)
            )

    async def save_progress(self, turn_id: int, *, text: str, progress: dict[str, Any]) -> None:
        """What a streaming reply shows and has used so far (for crash recovery)."""
        async with self._sessions() as session, session.begin():
            await session.execute(
                update(Turn)
                .where(Turn.id == turn_id, Turn.outcome == Outcome.STREAMING)
                .values(text=text, progress=json.dumps(progress))
            )

    async def open_turn(
        self,
        place: Place,
        *,
        question: str,
        user_id: str,
        ts: str | None,
        tokens: int,
        reply_ts: str | None,
        owner: str,
        progress: dict[str, Any],
        attachments: list[dict[str, Any]] | None = None,
    ) -> int:
        """Store a question and the reply about to stream, owned by a process; the reply's id."""
        async with self._sessions() as session, session.begin():
            common = {
                "team_id": place.team_id,
                "channel_id": place.channel_id,
                "thread_ts": place.thread_ts,
            }
            session.add(
                Turn(
                    **common,
                    role="user",
                    text=question,
                    user_id=user_id,
                    ts=ts,
                    tokens=tokens,
                    attachments=json.dumps(attachments) if attachments else None,
                )
            )
            reply = Turn(
                **common,
                role="assistant",
                text="",
                user_id=None,
                ts=reply_ts,
                outcome=Outcome.STREAMING,
                owner=owner,
                progress=json.dumps(progress),
            )
            session.add(reply)
            await session.flush()
            return reply.id

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
            # In the order people saw them in Slack (a thread message read late comes before
            # the bot's later turns); turns without a ts (/chat) in the order written.
            .order_by(func.coalesce(Turn.ts, ""), Turn.id)
        )
        async with self._sessions() as session:
            rows = (await session.scalars(query)).all()
        return [_record(t) for t in rows]

    async def conversation(self, place: Place, channel_turns: int) -> list[TurnRecord]:
        """What a question in `place` is answered with, oldest first.

        A thread is one conversation; before its first turn come up to `channel_turns` turns
        of the channel's other threads (after the last reset), so a new question knows what
        was said earlier in the channel. Those come as exchanges only (a question and the
        answer that has text): a question that was never answered is not another thread's
        business, and two threads' turns are never run together.
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
            # Orphans are dropped below, so read a little more than is kept.
            limit = channel_turns * 2 + 4
            rows = (await session.scalars(query.order_by(Turn.id.desc()).limit(limit))).all()
        exchanges = _exchanges(list(reversed(rows)))
        kept = exchanges[-((channel_turns + 1) // 2) :]
        return [_record(t) for pair in kept for t in pair] + thread

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
