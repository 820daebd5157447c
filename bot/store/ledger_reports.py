"""Reading the ledger for reports: sums per model, channel, user or day, over a scope.

Reports read the daily sums where they can (thousands of rows) and the ledger itself only for
one user's or one channel's detail, through its indexes.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Literal

from sqlalchemy import ColumnElement, Select, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.errors import ClaudeFailure
from bot.store.models import BudgetRefusal, Outcome, UsageDailyChannel, UsageDailyUser, UsageRecord

GroupBy = Literal["total", "model", "channel", "user", "day"]


@dataclass
class Sums:
    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_write_5m_tokens: int = 0
    cache_write_1h_tokens: int = 0
    cache_read_tokens: int = 0
    cost_micros: int = 0  # of the requests whose cost is known
    unknown_cost_requests: int = 0
    cache_savings_micros: int = 0
    partial_requests: int = 0
    error_requests: int = 0
    stopped_requests: int = 0
    thinking_tokens: int = 0  # part of output_tokens
    estimated_micros: int = 0  # conservative estimate of the requests whose cost is unknown
    refused_requests: int = 0  # Claude declined to answer
    spend_limited_requests: int = 0  # refused by the organisation's Anthropic spend limit
    web_search_requests: int = 0
    web_fetch_requests: int = 0


SUM_FIELDS = tuple(f.name for f in fields(Sums))


@dataclass(frozen=True)
class Scope:
    """Which rows a report covers: UTC days [start, end), optionally one team, channel, user."""

    start: str
    end: str
    team_id: str | None = None
    channel_id: str | None = None
    user_id: str | None = None


class LedgerReports:
    """The read side of the ledger."""

    _sessions: async_sessionmaker[AsyncSession]

    async def usage_rows(self) -> list[UsageRecord]:
        """Every ledger row, oldest first (reports aggregate in SQL; this is for tests)."""
        async with self._sessions() as session:
            query = select(UsageRecord).order_by(UsageRecord.id)
            return list((await session.scalars(query)).all())

    async def grouped(
        self, scope: Scope, by: GroupBy, *, limit: int | None = None
    ) -> list[tuple[str, Sums]]:
        """Sums per model, channel, user or day (or a total); biggest cost first, days in order.

        With a limit, the ranking reads two columns and only the winners get all their sums:
        on a big ledger that is most of a report's time.
        """
        source = _source(scope, by)
        async with self._sessions() as session:
            if limit is None or by in ("total", "day"):
                rows = (await session.execute(source.query(by))).all()
                return [(str(row[0]), Sums(*(int(v or 0) for v in row[1:]))) for row in rows]
            ranked = source.ranking().limit(limit)
            keys = [row[0] for row in (await session.execute(ranked)).all()]
            if not keys:
                return []
            rows = (await session.execute(source.query(by).where(source.key.in_(keys)))).all()
        found = {row[0]: Sums(*(int(v or 0) for v in row[1:])) for row in rows}
        return [(str(key), found[key]) for key in keys]

    async def by_day_and_model(self, scope: Scope) -> list[tuple[str, str, Sums]]:
        """One pass for the totals, the cost by model and the trend of a report."""
        day = _source(scope, "day")
        model = _source(scope, "model")
        query = (
            select(day.key, model.key, *day.sums)
            .where(*day.conditions)
            .group_by(day.key, model.key)
        )
        async with self._sessions() as session:
            rows = (await session.execute(query)).all()
        return [(str(r[0]), str(r[1]), Sums(*(int(v or 0) for v in r[2:]))) for r in rows]

    async def refusals(self, scope: Scope) -> int:
        query = select(func.count()).select_from(BudgetRefusal)
        query = query.where(BudgetRefusal.day >= scope.start, BudgetRefusal.day < scope.end)
        for column, value in (
            (BudgetRefusal.team_id, scope.team_id),
            (BudgetRefusal.channel_id, scope.channel_id),
            (BudgetRefusal.user_id, scope.user_id),
        ):
            if value is not None:
                query = query.where(column == value)
        async with self._sessions() as session:
            return int(await session.scalar(query) or 0)


@dataclass
class _Source:
    """Where a report's figures come from, and how they are summed there."""

    key: Any
    sums: list[ColumnElement[Any]]
    conditions: list[ColumnElement[bool]]

    def query(self, by: GroupBy) -> Select[Any]:
        query = select(self.key, *self.sums).where(*self.conditions)
        if by == "total":
            return query
        query = query.group_by(self.key)
        if by == "day":
            return query.order_by(self.key)
        return query.order_by(*self._rank())

    def ranking(self) -> Select[Any]:
        return select(self.key).where(*self.conditions).group_by(self.key).order_by(*self._rank())

    def _rank(self) -> list[ColumnElement[Any]]:
        cost, requests = self.sums[SUM_FIELDS.index("cost_micros")], self.sums[0]
        return [cost.desc(), requests.desc(), self.key]


def _source(scope: Scope, by: GroupBy) -> _Source:
    # Daily sums answer most questions; one user's figures, and users within one channel,
    # need the ledger (through its team/user/day and team/channel/day indexes).
    if scope.user_id is not None or (by == "user" and scope.channel_id is not None):
        return _ledger_source(scope, by)
    table = UsageDailyUser if by == "user" else UsageDailyChannel
    key: Any = {
        "total": func.min(table.day),
        "model": UsageDailyChannel.model,
        "channel": UsageDailyChannel.channel_id,
        "user": UsageDailyUser.user_id,
        "day": table.day,
    }[by]
    sums: list[ColumnElement[Any]] = [func.sum(getattr(table, name)) for name in SUM_FIELDS]
    conditions: list[ColumnElement[bool]] = [table.day >= scope.start, table.day < scope.end]
    if scope.team_id is not None:
        conditions.append(table.team_id == scope.team_id)
    if scope.channel_id is not None:
        conditions.append(UsageDailyChannel.channel_id == scope.channel_id)
    return _Source(key, sums, conditions)


def _ledger_source(scope: Scope, by: GroupBy) -> _Source:
    row = UsageRecord
    key: Any = {
        "total": func.min(row.day),
        "model": func.coalesce(row.resolved_model, row.requested_model),
        "channel": row.channel_id,
        "user": func.coalesce(row.user_id, ""),
        "day": row.day,
    }[by]

    def count_if(condition: ColumnElement[bool]) -> ColumnElement[Any]:
        return func.sum(case((condition, 1), else_=0))

    sums: list[ColumnElement[Any]] = [
        func.count(),
        func.sum(row.input_tokens),
        func.sum(row.output_tokens),
        func.sum(row.cache_write_5m_tokens),
        func.sum(row.cache_write_1h_tokens),
        func.sum(row.cache_read_tokens),
        func.coalesce(func.sum(row.cost_micros), 0),
        count_if(row.cost_micros.is_(None)),
        func.coalesce(func.sum(row.cache_savings_micros), 0),
        count_if(row.outcome == Outcome.PARTIAL),
        count_if(row.outcome == Outcome.ERROR),
        count_if(row.error_kind == "stopped"),
        func.sum(row.thinking_tokens),
        func.coalesce(func.sum(case((row.cost_micros.is_(None), row.estimate_micros))), 0),
        count_if(row.outcome == Outcome.REFUSED),
        count_if(row.error_kind == ClaudeFailure.SPEND_LIMIT),
        func.sum(row.web_search_requests),
        func.sum(row.web_fetch_requests),
    ]
    conditions: list[ColumnElement[bool]] = [row.day >= scope.start, row.day < scope.end]
    for column, value in (
        (row.team_id, scope.team_id),
        (row.channel_id, scope.channel_id),
        (row.user_id, scope.user_id),
    ):
        if value is not None:
            conditions.append(column == value)
    return _Source(key, sums, conditions)
