"""The usage report, shared by `/usage` in Slack and `python -m bot usage` on the command line.

Periods are whole UTC days. Money is integer micro-dollars until it is shown; a cost that is
unknown (a model without a price) is shown as a conservative estimate, marked as one, never
folded into $0.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, timedelta

from bot.cost.prices import money
from bot.store import Ledger, Scope, Sums
from bot.store.ledger import SUM_FIELDS

DEFAULT_PERIOD = "30d"
TOP = 5
_RANGE = re.compile(r"^(\d{4}-\d{2}-\d{2})\.\.(\d{4}-\d{2}-\d{2})$")
_DAYS = re.compile(r"^(\d{1,3})d$")
_CHANNEL = re.compile(r"^<#([CGD][A-Z0-9]+)(?:\|[^>]*)?>$")
_USER = re.compile(r"^<@([UW][A-Z0-9]+)(?:\|[^>]*)?>$")

PERIOD_HELP = (
    "`today`, `7d`, `30d` (the default), any number of days up to `366d`, `month` "
    "or `YYYY-MM-DD..YYYY-MM-DD`"
)


class UsageArgError(ValueError):
    """A /usage argument that cannot be understood; the message says which and why."""


@dataclass(frozen=True)
class Period:
    start: date
    end: date  # exclusive
    label: str

    @property
    def days(self) -> list[date]:
        return [self.start + timedelta(days=i) for i in range((self.end - self.start).days)]

    @property
    def heading(self) -> str:
        """The label with its dates, each said once: "the last 7 days (2026-11-18 to
        2026-11-24, UTC)", "today (2026-11-24, UTC)", "2026-10-01 to 2026-10-31 (UTC)"."""
        last = self.end - timedelta(days=1)
        dates = f"{self.start}" if last == self.start else f"{self.start} to {last}"
        return f"{self.label} (UTC)" if dates == self.label else f"{self.label} ({dates}, UTC)"


@dataclass(frozen=True)
class UsageArgs:
    period: Period
    channel_id: str | None = None
    user_id: str | None = None

    def scope(self, team_id: str | None) -> Scope:
        """The ledger rows these arguments cover."""
        return Scope(
            start=self.period.start.isoformat(),
            end=self.period.end.isoformat(),
            team_id=team_id,
            channel_id=self.channel_id,
            user_id=self.user_id,
        )


@dataclass
class UsageReport:
    period: Period
    channel_id: str | None
    user_id: str | None
    totals: Sums
    by_model: list[tuple[str, Sums]] = field(default_factory=list)
    top_channels: list[tuple[str, Sums]] = field(default_factory=list)
    top_users: list[tuple[str, Sums]] = field(default_factory=list)
    by_day: list[tuple[str, Sums]] = field(default_factory=list)
    refusals: int = 0


def parse_period(text: str, today: date) -> Period:
    word = text.strip().lower()
    tomorrow = today + timedelta(days=1)
    if word == "today":
        return Period(today, tomorrow, "today")
    if word == "month":
        return Period(today.replace(day=1), tomorrow, f"{today:%B %Y} so far")
    if match := _DAYS.match(word):
        days = int(match.group(1))
        if not 1 <= days <= 366:
            raise UsageArgError(f"`{text}`: a number of days from 1 to 366, please.")
        label = "the last day" if days == 1 else f"the last {days} days"
        return Period(today - timedelta(days=days - 1), tomorrow, label)
    if match := _RANGE.match(word):
        try:
            first, last = (date.fromisoformat(match.group(i)) for i in (1, 2))
        except ValueError:
            raise UsageArgError(f"`{text}` is not a range of real dates.") from None
        if last < first:
            raise UsageArgError(f"`{text}`: the range ends before it starts.")
        label = f"{first}" if first == last else f"{first} to {last}"
        return Period(first, last + timedelta(days=1), label)
    raise UsageArgError(f"`{text}` is not a period. Use {PERIOD_HELP}.")


def parse_usage_args(text: str, today: date) -> UsageArgs:
    period: Period | None = None
    channel_id = user_id = None
    for word in text.split():
        if match := _CHANNEL.match(word):
            channel_id = match.group(1)
        elif match := _USER.match(word):
            user_id = match.group(1)
        elif word.startswith(("#", "@")):
            raise UsageArgError(
                f"`{word}`: pick the channel or person from Slack's list as you type, "
                "so that Slack sends its id."
            )
        elif period is None:
            period = parse_period(word, today)
        else:
            raise UsageArgError(f"`{word}`: only one period, please.")
    if channel_id and user_id:
        raise UsageArgError("Give a channel or a person, not both.")
    return UsageArgs(period or parse_period(DEFAULT_PERIOD, today), channel_id, user_id)


async def build_report(
    ledger: Ledger, args: UsageArgs, *, team_id: str | None, top: int = TOP
) -> UsageReport:
    scope = args.scope(team_id)
    totals = Sums()
    models: dict[str, Sums] = {}
    days: dict[str, Sums] = {}
    for day, model, sums in await ledger.by_day_and_model(scope):
        for bucket in (totals, models.setdefault(model, Sums()), days.setdefault(day, Sums())):
            add(bucket, sums)
    report = UsageReport(
        period=args.period,
        channel_id=args.channel_id,
        user_id=args.user_id,
        totals=totals,
        by_model=sorted(models.items(), key=lambda kv: (-kv[1].cost_micros, -kv[1].requests)),
        by_day=sorted(days.items()),
        refusals=await ledger.refusals(scope),
    )
    if args.channel_id is None:
        report.top_channels = await ledger.grouped(scope, "channel", limit=top)
    if args.user_id is None:
        report.top_users = await ledger.grouped(scope, "user", limit=top)
    return report


def add(total: Sums, more: Sums) -> None:
    for name in SUM_FIELDS:
        setattr(total, name, getattr(total, name) + getattr(more, name))


def cost_text(sums: Sums) -> str:
    """The cost; requests without a price show at their conservative estimate, marked."""
    unpriced = sums.unknown_cost_requests
    if not unpriced:
        return money(sums.cost_micros)
    estimate = f"~{money(sums.estimated_micros)} estimated ({unpriced:,} unpriced)"
    if unpriced == sums.requests:
        return estimate
    return f"{money(sums.cost_micros)} + {estimate}"
