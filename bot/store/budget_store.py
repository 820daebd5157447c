"""Budgets as stored: limits set from Slack, money spent per window, refusals, warnings given."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Delete, delete, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.store.inserts import insert_new
from bot.store.models import (
    Budget,
    BudgetHold,
    BudgetRefusal,
    BudgetWarning,
    UsageDailyChannel,
    UsageDailyUser,
    utcnow,
)

WORKSPACE = "workspace"
CHANNEL = "channel"
USER = "user"


@dataclass(frozen=True)
class StoredBudget:
    scope: str
    target: str
    period: str
    limit_micros: int | None  # None: an admin turned this budget off
    set_by: str | None
    set_at: datetime


@dataclass(frozen=True)
class Window:
    """One budget a request must fit: its key, its UTC days [start, end), its limit."""

    scope: str
    target: str
    period: str
    start: str
    end: str
    limit_micros: int


@dataclass(frozen=True)
class Over:
    """The first budget a request would pass, and what it had used (spent plus held)."""

    index: int
    used_micros: int


class BudgetStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def budgets(self, team_id: str) -> list[StoredBudget]:
        query = select(Budget).where(Budget.team_id == team_id).order_by(Budget.id)
        async with self._sessions() as session:
            rows = (await session.scalars(query)).all()
        return [
            StoredBudget(b.scope, b.target, b.period, b.limit_micros, b.set_by, b.set_at)
            for b in rows
        ]

    async def set_budget(
        self,
        team_id: str,
        *,
        scope: str,
        target: str,
        period: str,
        limit_micros: int | None,
        set_by: str,
    ) -> None:
        """Set (or, with None, turn off) a budget, replacing any earlier one for the same key."""
        async with self._sessions() as session, session.begin():
            await session.execute(_matching(team_id, scope, target, period))
            session.add(
                Budget(
                    team_id=team_id,
                    scope=scope,
                    target=target,
                    period=period,
                    limit_micros=limit_micros,
                    set_by=set_by,
                    set_at=utcnow(),
                )
            )

    async def clear_budget(self, team_id: str, *, scope: str, target: str, period: str) -> None:
        """Forget what an admin set, so the settings' default applies again."""
        async with self._sessions() as session, session.begin():
            await session.execute(_matching(team_id, scope, target, period))

    async def spent(self, team_id: str, scope: str, target: str, start: str, end: str) -> int:
        """Micro-dollars spent in UTC days [start, end) by the workspace, a channel or a user:
        known costs plus the conservative estimates of requests without a price."""
        async with self._sessions() as session:
            return await _spent(session, team_id, scope, target, start, end)

    async def hold(
        self, team_id: str, windows: Sequence[Window], micros: int, seconds: float
    ) -> list[int] | Over:
        """Hold `micros` against every window if it fits them all, atomically across every
        process on this database; else the first window it would pass. A hold stops
        counting after `seconds` (its request is long over by then, or its process died).

        Reading what is spent and held and writing the holds happen in one transaction that
        no other check can interleave with: on PostgreSQL a transaction-scoped advisory lock
        per team, on SQLite the write lock its first INSERT takes.
        """
        now = utcnow()
        expires_at = now + timedelta(seconds=seconds)
        async with self._sessions() as session:
            # Closing the session without a commit (a refusal, an error) rolls back.
            await session.begin()
            if (await session.connection()).dialect.name == "postgresql":
                key = f"budget-holds:{team_id}"
                await session.execute(
                    text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": key}
                )
            holds = [
                BudgetHold(
                    team_id=team_id,
                    scope=w.scope,
                    target=w.target,
                    period=w.period,
                    window=w.start,
                    micros=micros,
                    expires_at=expires_at,
                )
                for w in windows
            ]
            session.add_all(holds)
            await session.flush()
            mine = [h.id for h in holds]
            for index, w in enumerate(windows):
                used = await _spent(session, team_id, w.scope, w.target, w.start, w.end)
                used += await _held(session, team_id, w, now, mine)
                if used + micros > w.limit_micros:
                    await session.rollback()
                    return Over(index, used)
            await session.execute(delete(BudgetHold).where(BudgetHold.expires_at <= now))
            await session.commit()
        return mine

    async def release(self, hold_ids: Sequence[int]) -> None:
        if not hold_ids:
            return
        async with self._sessions() as session, session.begin():
            await session.execute(delete(BudgetHold).where(BudgetHold.id.in_(hold_ids)))

    async def record_refusal(
        self,
        team_id: str,
        channel_id: str,
        user_id: str,
        *,
        scope: str,
        period: str,
        estimate_micros: int,
        day: str,
    ) -> None:
        async with self._sessions() as session, session.begin():
            session.add(
                BudgetRefusal(
                    team_id=team_id,
                    channel_id=channel_id,
                    user_id=user_id,
                    scope=scope,
                    period=period,
                    estimate_micros=estimate_micros,
                    day=day,
                )
            )

    async def claim_warning(
        self, team_id: str, scope: str, target: str, period: str, window: str
    ) -> bool:
        """True the first time the 80 % warning is due for this budget and window."""
        async with self._sessions() as session:
            new = await insert_new(
                session,
                BudgetWarning,
                team_id=team_id,
                scope=scope,
                target=target,
                period=period,
                window=window,
            )
            await session.commit()
        return new


async def _spent(
    session: AsyncSession, team_id: str, scope: str, target: str, start: str, end: str
) -> int:
    table = UsageDailyUser if scope == USER else UsageDailyChannel
    query = select(
        func.coalesce(func.sum(table.cost_micros), 0)
        + func.coalesce(func.sum(table.estimated_micros), 0)
    ).where(table.team_id == team_id, table.day >= start, table.day < end)
    if scope == CHANNEL:
        query = query.where(UsageDailyChannel.channel_id == target)
    elif scope == USER:
        query = query.where(UsageDailyUser.user_id == target)
    return int(await session.scalar(query) or 0)


async def _held(
    session: AsyncSession, team_id: str, window: Window, now: datetime, mine: list[int]
) -> int:
    """What other requests in flight hold against this window (expired holds do not count)."""
    query = select(func.coalesce(func.sum(BudgetHold.micros), 0)).where(
        BudgetHold.team_id == team_id,
        BudgetHold.scope == window.scope,
        BudgetHold.target == window.target,
        BudgetHold.period == window.period,
        BudgetHold.window == window.start,
        BudgetHold.expires_at > now,
        BudgetHold.id.not_in(mine),
    )
    return int(await session.scalar(query) or 0)


def _matching(team_id: str, scope: str, target: str, period: str) -> Delete:
    return delete(Budget).where(
        Budget.team_id == team_id,
        Budget.scope == scope,
        Budget.target == target,
        Budget.period == period,
    )
