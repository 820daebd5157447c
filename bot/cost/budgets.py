"""Budgets: checked before money is spent, warned about once at 80 %, reset on UTC boundaries.

A budget is a limit in micro-dollars for the workspace, a channel or a user, per UTC day or
UTC calendar month. An admin's setting (stored) wins over the settings' default; an admin
can also turn a budget off. Before each Claude request the worst case (every prompt token
at the highest of its input and cache-write prices, in the long-prompt tier where the prompt
reaches it, plus max_tokens at the output price) must fit what is left of every budget, and
is held against them all, in the database, until the request's cost is in the ledger.
Requests whose model has no price count at a conservative estimate, never at $0.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from bot.cost.prices import PriceTable
from bot.cost.prices import money as dollars
from bot.store.budget_store import CHANNEL, USER, WORKSPACE, BudgetStore, Over
from bot.store.budget_store import Window as HeldWindow

log = logging.getLogger(__name__)

PERIODS = ("daily", "monthly")
# How long a hold counts if its request is never recorded (its process died): well past the
# longest a request may stream.
HOLD_SECONDS = 900.0


WARN_AT = 0.8


@dataclass(frozen=True)
class BudgetDefaults:
    """Micro-dollar limits from the settings (None: no default budget)."""

    workspace_daily: int | None = None
    workspace_monthly: int | None = None
    channel_daily: int | None = None
    channel_monthly: int | None = None
    user_daily: int | None = None
    user_monthly: int | None = None

    def get(self, scope: str, period: str) -> int | None:
        value: int | None = getattr(self, f"{scope}_{period}")
        return value


@dataclass(frozen=True)
class Limit:
    scope: str
    target: str
    period: str
    limit_micros: int
    set_by: str | None  # None: the settings' default
    set_at: datetime | None

    def name(self) -> str:
        whose = {WORKSPACE: "the workspace's", CHANNEL: "this channel's", USER: "your"}[self.scope]
        return f"{whose} {self.period} Claude budget"

    def origin(self) -> str:
        if self.set_by is None or self.set_at is None:
            return "the bot's default setting"
        return f"set by <@{self.set_by}> on {self.set_at:%Y-%m-%d}"


@dataclass(frozen=True)
class Window:
    start: date
    end: date  # exclusive

    @property
    def resets_at(self) -> datetime:
        return datetime.combine(self.end, time(), tzinfo=UTC)


def window(period: str, now: datetime) -> Window:
    today = now.astimezone(UTC).date()
    if period == "daily":
        return Window(today, today + timedelta(days=1))
    first = today.replace(day=1)
    following = (first + timedelta(days=32)).replace(day=1)
    return Window(first, following)


def until(moment: datetime, now: datetime) -> str:
    minutes = max(1, int((moment - now).total_seconds() // 60))
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days} d {hours} h"
    return f"{hours} h {minutes} min" if hours else f"{minutes} min"


@dataclass(frozen=True)
class Refusal:
    limit: Limit
    spent_micros: int
    estimate_micros: int
    resets_at: datetime

    def message(self, now: datetime) -> str:
        return (
            f"I can't answer this now: it could cost up to {dollars(self.estimate_micros)}, "
            f"which would pass {self.limit.name()} of {dollars(self.limit.limit_micros)} "
            f"({self.limit.origin()}; {dollars(self.spent_micros)} used). "
            f"It resets at {self.resets_at:%Y-%m-%d %H:%M} UTC, in {until(self.resets_at, now)}."
        )


@dataclass
class Hold:
    """A request's worst case, held against its budgets until `release` (idempotent)."""

    store: BudgetStore
    ids: list[int] = field(default_factory=list)

    async def release(self) -> None:
        ids, self.ids = self.ids, []
        await self.store.release(ids)


class Budgets:
    def __init__(
        self,
        store: BudgetStore,
        defaults: BudgetDefaults,
        prices: PriceTable,
        hold_seconds: float = HOLD_SECONDS,
    ) -> None:
        self._store = store
        self._defaults = defaults
        self._prices = prices
        self._hold_seconds = hold_seconds

    async def limits(self, team_id: str, channel_id: str, user_id: str) -> list[Limit]:
        stored = {(b.scope, b.target, b.period): b for b in await self._store.budgets(team_id)}
        limits: list[Limit] = []
        for scope, target in ((WORKSPACE, ""), (CHANNEL, channel_id), (USER, user_id)):
            for period in PERIODS:
                row = stored.get((scope, target, period))
                if row is not None:
                    if row.limit_micros is not None:
                        limits.append(
                            Limit(scope, target, period, row.limit_micros, row.set_by, row.set_at)
                        )
                    continue
                default = self._defaults.get(scope, period)
                if default is not None:
                    limits.append(Limit(scope, target, period, default, None, None))
        return limits

    async def check(
        self,
        *,
        team_id: str,
        channel_id: str,
        user_id: str,
        model: str,
        input_tokens: int,
        max_tokens: int,
        now: datetime,
        tool_uses: Mapping[str, int] | None = None,
    ) -> Refusal | Hold:
        """The first budget this request could pass, recorded as a refusal; or, when it fits
        them all, its worst case held against each until the request is recorded, so that
        requests running at once, in any process, cannot pass a budget together."""
        limits = await self.limits(team_id, channel_id, user_id)
        if not limits:
            return Hold(self._store)
        # The bot marks its cache breakpoints with the default 5-minute TTL.
        estimate = self._prices.worst_case(
            model, input_tokens, max_tokens, cache_write_1h=False, tool_uses=tool_uses
        )
        windows = []
        for limit in limits:
            span = window(limit.period, now)
            windows.append(
                HeldWindow(
                    limit.scope,
                    limit.target,
                    limit.period,
                    span.start.isoformat(),
                    span.end.isoformat(),
                    limit.limit_micros,
                )
            )
        held = await self._store.hold(team_id, windows, estimate, self._hold_seconds)
        if not isinstance(held, Over):
            return Hold(self._store, held)
        limit = limits[held.index]
        await self._store.record_refusal(
            team_id,
            channel_id,
            user_id,
            scope=limit.scope,
            period=limit.period,
            estimate_micros=estimate,
            day=now.date().isoformat(),
        )
        return Refusal(limit, held.used_micros, estimate, window(limit.period, now).resets_at)

    async def warnings(
        self, *, team_id: str, channel_id: str, user_id: str, now: datetime
    ) -> list[str]:
        """Warnings due now (80 % used), each given once per budget and window."""
        notes: list[str] = []
        for limit in await self.limits(team_id, channel_id, user_id):
            span = window(limit.period, now)
            spent = await self._store.spent(
                team_id, limit.scope, limit.target, span.start.isoformat(), span.end.isoformat()
            )
            if spent < WARN_AT * limit.limit_micros:
                continue
            claimed = await self._store.claim_warning(
                team_id, limit.scope, limit.target, limit.period, span.start.isoformat()
            )
            if claimed:
                share = spent * 100 // limit.limit_micros
                notes.append(
                    f"Heads-up: {dollars(spent)} of {limit.name()} of "
                    f"{dollars(limit.limit_micros)} is used ({share}%). "
                    f"It resets at {span.resets_at:%Y-%m-%d %H:%M} UTC."
                )
        return notes
