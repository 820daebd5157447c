"""Budgets as stored: limits set from Slack, money spent per window, refusals, warnings given."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Delete, delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.store.models import (
    Budget,
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
        """Micro-dollars spent in UTC days [start, end) by the workspace, a channel or a user."""
        table = UsageDailyUser if scope == USER else UsageDailyChannel
        query = select(func.coalesce(func.sum(table.cost_micros), 0)).where(
            table.team_id == team_id, table.day >= start, table.day < end
        )
        if scope == CHANNEL:
            query = query.where(UsageDailyChannel.channel_id == target)
        elif scope == USER:
            query = query.where(UsageDailyUser.user_id == target)
        async with self._sessions() as session:
            return int(await session.scalar(query) or 0)

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
            session.add(
                BudgetWarning(
                    team_id=team_id, scope=scope, target=target, period=period, window=window
                )
            )
            try:
                await session.commit()
            except IntegrityError:
                return False
        return True


def _matching(team_id: str, scope: str, target: str, period: str) -> Delete:
    return delete(Budget).where(
        Budget.team_id == team_id,
        Budget.scope == scope,
        Budget.target == target,
        Budget.period == period,
    )
