"""The usage ledger: one row per Claude request, priced when written, plus daily sums.

Each ledger row and its two daily sums (per channel and model, per user) are written in one
transaction, so they always agree. The read side is in `ledger_reports`.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.errors import ClaudeFailure
from bot.store.conversations import Place
from bot.store.ledger_reports import SUM_FIELDS, GroupBy, LedgerReports, Scope, Sums
from bot.store.models import (
    Outcome,
    Turn,
    UsageDailyChannel,
    UsageDailyUser,
    UsageRecord,
    utcnow,
)

__all__ = ["SUM_FIELDS", "GroupBy", "Ledger", "Scope", "Sums", "UsageRow", "day_of"]


@dataclass(frozen=True)
class UsageRow:
    """What one Claude request used and cost; written together with the reply's final text."""

    requested_model: str
    resolved_model: str | None
    input_tokens: int
    output_tokens: int
    cache_write_5m_tokens: int
    cache_write_1h_tokens: int
    cache_read_tokens: int
    stop_reason: str | None
    request_id: str | None
    ttft_ms: int | None
    latency_ms: int
    outcome: Outcome
    error_kind: str | None
    cost_micros: int | None = None
    cache_savings_micros: int | None = None
    price_version: str | None = None
    thinking_tokens: int = 0
    inference_geo: str | None = None
    speed: str | None = None
    web_search_requests: int = 0
    web_fetch_requests: int = 0
    estimate_micros: int | None = None  # what budgets count: the cost, or an estimate of it
    stop_detail: str | None = None


def day_of(moment: datetime) -> str:
    return moment.date().isoformat()


class Ledger(LedgerReports):
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def finish_reply(
        self,
        place: Place,
        *,
        turn_id: int | None,
        text: str,
        user_id: str | None,
        usage: UsageRow,
        now: datetime | None = None,
    ) -> None:
        """Write the reply's final text, its ledger row and the daily sums in one transaction."""
        now = now or utcnow()
        day = day_of(now)
        async with self._sessions() as session, session.begin():
            if turn_id is not None:
                closed = await session.execute(
                    update(Turn)
                    .where(Turn.id == turn_id, Turn.outcome == Outcome.STREAMING)
                    .values(text=text, outcome=usage.outcome, tokens=usage.output_tokens)
                )
                if not closed.rowcount:  # type: ignore[attr-defined]
                    # Recorded already. Never twice; but a recovery that took this turn for
                    # dead wrote only what was saved: the real figures replace its row.
                    await _replace_interrupted(session, turn_id, text, usage)
                    return
            session.add(
                UsageRecord(
                    team_id=place.team_id,
                    channel_id=place.channel_id,
                    thread_ts=place.thread_ts,
                    user_id=user_id,
                    turn_id=turn_id,
                    day=day,
                    created_at=now,
                    **{f.name: getattr(usage, f.name) for f in fields(UsageRow)},
                )
            )
            sums = _sums_of(usage)
            model = usage.resolved_model or usage.requested_model
            keys = {"team_id": place.team_id, "day": day}
            await _add(
                session,
                UsageDailyChannel,
                {**keys, "channel_id": place.channel_id, "model": model},
                sums,
            )
            await _add(session, UsageDailyUser, {**keys, "user_id": user_id or ""}, sums)


async def _replace_interrupted(
    session: AsyncSession, turn_id: int, text: str, usage: UsageRow
) -> None:
    row = await session.scalar(
        select(UsageRecord).where(
            UsageRecord.turn_id == turn_id, UsageRecord.error_kind == "interrupted"
        )
    )
    if row is None:
        return
    old = UsageRow(**{f.name: getattr(row, f.name) for f in fields(UsageRow)})
    place = Place(row.team_id, row.channel_id, row.thread_ts or "")
    for sign, each in ((-1, old), (1, usage)):
        sums = {name: sign * value for name, value in _sums_of(each).items()}
        model = each.resolved_model or each.requested_model
        keys = {"team_id": place.team_id, "day": row.day}
        await _add(
            session,
            UsageDailyChannel,
            {**keys, "channel_id": place.channel_id, "model": model},
            sums,
        )
        await _add(session, UsageDailyUser, {**keys, "user_id": row.user_id or ""}, sums)
    for f in fields(UsageRow):
        setattr(row, f.name, getattr(usage, f.name))
    await session.execute(
        update(Turn)
        .where(Turn.id == turn_id)
        .values(text=text, outcome=usage.outcome, tokens=usage.output_tokens)
    )


def _sums_of(usage: UsageRow) -> dict[str, int]:
    return {
        "requests": 1,
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "cache_write_5m_tokens": usage.cache_write_5m_tokens,
        "cache_write_1h_tokens": usage.cache_write_1h_tokens,
        "cache_read_tokens": usage.cache_read_tokens,
        "cost_micros": usage.cost_micros or 0,
        "unknown_cost_requests": int(usage.cost_micros is None),
        "cache_savings_micros": usage.cache_savings_micros or 0,
        "partial_requests": int(usage.outcome == Outcome.PARTIAL),
        "error_requests": int(usage.outcome == Outcome.ERROR),
        "stopped_requests": int(usage.error_kind == "stopped"),
        "thinking_tokens": usage.thinking_tokens,
        "estimated_micros": (usage.estimate_micros or 0) if usage.cost_micros is None else 0,
        "refused_requests": int(usage.outcome == Outcome.REFUSED),
        "spend_limited_requests": int(usage.error_kind == ClaudeFailure.SPEND_LIMIT),
        "web_search_requests": usage.web_search_requests,
        "web_fetch_requests": usage.web_fetch_requests,
    }


async def _add(
    session: AsyncSession,
    model: type[UsageDailyChannel] | type[UsageDailyUser],
    keys: dict[str, str],
    sums: dict[str, int],
) -> None:
    """Add to a daily row, creating it when missing (an upsert both SQLite and PostgreSQL run)."""
    dialect = (await session.connection()).dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(model).values(**keys, **sums)
    statement = statement.on_conflict_do_update(
        index_elements=list(keys),
        set_={name: getattr(model, name) + statement.excluded[name] for name in sums},
    )
    await session.execute(statement)
