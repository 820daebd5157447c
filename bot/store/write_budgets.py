"""Slack's write budgets in the database: token buckets every replica takes from, so that
two replicas together send what one would and draw no more 429s than one.

A take is one short transaction on the bucket's row: its first statement writes (an
INSERT that does nothing when the row exists), which takes SQLite's write lock at once;
on PostgreSQL the row is locked FOR UPDATE. Either way no other take interleaves.
"""

from __future__ import annotations

from sqlalchemy import case, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.store.files_table import SlackWriteBudget


class WriteBudgetStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def take(
        self,
        key: str,
        *,
        capacity: float,
        rate: float,
        now: float,
        reserve: float = 0.0,
        hold: float = 0.0,
    ) -> float:
        """Take one write from bucket `key` (0.0), or the seconds until one may go, keeping
        `reserve` writes untouched for others. A take with a `hold` stops the refill until
        then, or until `restart`."""
        async with self._sessions() as session, session.begin():
            postgres = (await session.connection()).dialect.name == "postgresql"
            insert = pg_insert if postgres else sqlite_insert
            await session.execute(
                insert(SlackWriteBudget)
                .values(key=key, tokens=capacity, updated_at=now, paused_until=0.0)
                .on_conflict_do_nothing(index_elements=["key"])
            )
            query = select(SlackWriteBudget).where(SlackWriteBudget.key == key)
            row = (await session.scalars(query.with_for_update() if postgres else query)).one()
            tokens = min(capacity, row.tokens + max(0.0, now - row.updated_at) * rate)
            if now < row.paused_until:
                wait = row.paused_until - now
            elif tokens >= 1 + reserve:
                tokens -= 1
                wait = 0.0
            else:
                wait = (1 + reserve - tokens) / rate
            updated = max(now + (hold if wait == 0.0 else 0.0), row.updated_at)
            await session.execute(
                update(SlackWriteBudget)
                .where(SlackWriteBudget.key == key)
                .values(tokens=tokens, updated_at=updated)
            )
            return wait

    async def pause(self, key: str, *, until: float) -> None:
        """Slack said 429: nothing more from this bucket, on any replica, until `until`."""
        async with self._sessions() as session, session.begin():
            await session.execute(
                update(SlackWriteBudget)
                .where(SlackWriteBudget.key == key, SlackWriteBudget.paused_until < until)
                .values(paused_until=until, tokens=0.0)
            )

    async def restart(self, key: str, *, now: float) -> None:
        """The write taken last from `key` (a bucket of one, with a hold) was answered: the
        next is due a whole interval from now, on every replica."""
        async with self._sessions() as session, session.begin():
            await session.execute(
                update(SlackWriteBudget)
                .where(SlackWriteBudget.key == key)
                .values(
                    tokens=case((SlackWriteBudget.tokens > 0, 0.0), else_=SlackWriteBudget.tokens),
                    updated_at=now,
                )
            )
