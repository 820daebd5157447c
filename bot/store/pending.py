"""Questions taken but not answered yet, kept with their claims: if the process that took one
dies before answering, a live process (or the restarted one) answers it. A question
acknowledged to Slack is never lost. A mixin of `Store`; each method is one transaction."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.store.history import aware
from bot.store.models import SlackEvent

# The owner of a question handed back (Slack could not take its reply): not a live process,
# so the next recovery sweep of any process takes it.
NOBODY = ""


@dataclass(frozen=True)
class Pending:
    claim: str
    owner: str | None
    payload: dict[str, Any]
    received_at: datetime


class PendingStore:
    _sessions: async_sessionmaker[AsyncSession]

    async def keep_question(self, claim: str, owner: str, payload: dict[str, Any]) -> None:
        """Keep what it takes to answer a claimed question, and who is answering it."""
        async with self._sessions() as session, session.begin():
            await session.execute(
                update(SlackEvent)
                .where(SlackEvent.event_id == claim)
                .values(owner=owner, payload=json.dumps(payload))
            )

    async def note_placeholder(self, claim: str, channel: str, ts: str) -> None:
        """The message a question waits in (its place in line): should its process die,
        whoever answers it instead removes this message, so no "waiting" note is left
        behind beside the answer (bot.slack.recovery)."""
        async with self._sessions() as session, session.begin():
            row = await session.get(SlackEvent, claim, with_for_update=True)
            if row is None or row.payload is None:
                return
            payload = json.loads(row.payload)
            payload["placeholder"] = {"channel": channel, "ts": ts}
            row.payload = json.dumps(payload)

    async def pending_questions(self, *, live: set[str]) -> list[Pending]:
        """Questions taken, never answered, whose process is not among the `live` ones."""
        query = select(SlackEvent).where(
            SlackEvent.status == "taken",
            SlackEvent.replied.is_(False),
            SlackEvent.payload.is_not(None),
            SlackEvent.owner.is_not(None),
            SlackEvent.owner.not_in(live),
        )
        async with self._sessions() as session:
            rows = (await session.scalars(query.order_by(SlackEvent.received_at))).all()
        return [
            Pending(r.event_id, r.owner, json.loads(r.payload or "{}"), aware(r.received_at))
            for r in rows
        ]

    async def hand_back_question(self, claim: str) -> None:
        """Slack could not take its reply: any process's next recovery sweep tries again."""
        async with self._sessions() as session, session.begin():
            await session.execute(
                update(SlackEvent)
                .where(SlackEvent.event_id == claim, SlackEvent.payload.is_not(None))
                .values(status="taken", replied=False, owner=NOBODY)
            )

    async def adopt_question(self, pending: Pending, owner: str) -> bool:
        """Take a dead process's question over; True for exactly one of those that try."""
        async with self._sessions() as session, session.begin():
            taken = await session.execute(
                update(SlackEvent)
                .where(
                    SlackEvent.event_id == pending.claim,
                    SlackEvent.owner == pending.owner,
                    SlackEvent.replied.is_(False),
                    SlackEvent.status == "taken",
                )
                .values(owner=owner)
            )
        return bool(taken.rowcount)  # type: ignore[attr-defined]
