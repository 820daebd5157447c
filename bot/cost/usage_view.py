"""The `/usage` report as Block Kit, for an admin's eyes only (sent ephemeral). Pure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

from bot.cost.prices import money
from bot.cost.report import PERIOD_HELP, UsageReport, add, cost_text
from bot.store import Sums

USAGE_HELP = (
    "*Usage and cost of Claude* (admins only, shown only to you)\n"
    "• `/usage [period] [#channel | @person]`: the report. Period: " + PERIOD_HELP + ".\n"
    "• `/usage budget`: the budgets in force.\n"
    "• `/usage budget <workspace | #channel | @person> <daily | monthly> <$amount | off | "
    "default>`: set a budget, turn it off, or go back to the bot's default.\n"
    "Days are UTC days."
)
NOT_ADMIN = "Only workspace admins and owners can see usage and costs, or set budgets."
BAR = "█"
BAR_WIDTH = 20
MAX_TREND_ROWS = 31  # up to a month day by day; longer periods are grouped
# A section block's text is capped at 3,000 characters (invalid_blocks beyond).
SECTION_TEXT_LIMIT = 3000

Grain = Literal["day", "week", "month", "year"]
GRAINS: tuple[Grain, ...] = ("day", "week", "month", "year")
TITLES: dict[Grain, str] = {
    "day": "Day by day",
    "week": "Week by week",
    "month": "Month by month",
    "year": "Year by year",
}
LEFT_OUT = "(earlier years left out)"


@dataclass(frozen=True)
class Trend:
    title: str
    text: str

    @property
    def section(self) -> str:
        """The trend as a section block's mrkdwn: the title, then the rows as code."""
        return f"*{self.title}*\n```\n{self.text}\n```"


def usage_blocks(report: UsageReport) -> list[dict[str, Any]]:
    t = report.totals
    about = f"<#{report.channel_id}>" if report.channel_id else None
    about = about or (f"<@{report.user_id}>" if report.user_id else "the whole workspace")
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": "Claude usage and cost"}},
        _context(f"{about} · {report.period.heading}"),
    ]
    if not t.requests and not report.refusals:
        blocks.append(_section("No Claude requests in this period."))
        return blocks
    blocks.append(
        {
            "type": "section",
            "fields": [
                _mrkdwn(f"*Cost*\n{cost_text(t)}"),
                _mrkdwn(f"*Requests*\n{t.requests:,}"),
                _mrkdwn(f"*Input tokens*\n{t.input_tokens:,}"),
                _mrkdwn(f"*Output tokens*\n{output_text(t)}"),
                _mrkdwn(
                    f"*Cache writes*\n{t.cache_write_5m_tokens:,} (5 min) · "
                    f"{t.cache_write_1h_tokens:,} (1 h)"
                ),
                _mrkdwn(f"*Cache reads*\n{t.cache_read_tokens:,}"),
            ],
        }
    )
    blocks.append(_section(_savings(t)))
    if report.top_channels:
        blocks.append(_ranking("Top channels", [(f"<#{k}>", s) for k, s in report.top_channels]))
    if report.top_users:
        users = [(f"<@{k}>" if k else "(unknown)", s) for k, s in report.top_users]
        blocks.append(_ranking("Top people", users))
    if report.by_model:
        blocks.append(_ranking("Cost by model", [(f"`{k}`", s) for k, s in report.by_model]))
    blocks.append(_section(fitted_trend(report).section))
    blocks.append(_section(_failures(report)))
    return blocks


def trend(report: UsageReport) -> str:
    """One bar per day (per week past 31 days), scaled to the biggest; no length limit."""
    grain: Grain = "day" if len(report.period.days) <= MAX_TREND_ROWS else "week"
    return "\n".join(_trend_lines(_trend_rows(report, grain)))


def fitted_trend(report: UsageReport, limit: int = SECTION_TEXT_LIMIT) -> Trend:
    """The finest grouping (day up to 31 days, then week, month, year) whose section fits
    in `limit` characters. Should even years not fit, the latest years that do are shown."""
    grains = GRAINS if len(report.period.days) <= MAX_TREND_ROWS else GRAINS[1:]
    for grain in grains:
        fitted = Trend(TITLES[grain], "\n".join(_trend_lines(_trend_rows(report, grain))))
        if len(fitted.section) <= limit:
            return fitted
    lines = _trend_lines(_trend_rows(report, "year"))
    room = limit - len(Trend(TITLES["year"], LEFT_OUT + "\n").section)
    kept: list[str] = []
    for line in reversed(lines):
        room -= len(line) + 1
        if room < 0:
            break
        kept.append(line)
    return Trend(TITLES["year"], "\n".join([LEFT_OUT, *reversed(kept)]))


def _trend_rows(report: UsageReport, grain: Grain) -> list[tuple[str, Sums]]:
    """The period's days summed into rows of `grain`, labelled, in order (empty rows too)."""
    by_day = dict(report.by_day)
    days = report.period.days
    rows: dict[str, Sums] = {}
    for index, day in enumerate(days):
        label = _label(day, grain, days[index - index % 7])
        add(rows.setdefault(label, Sums()), by_day.get(day.isoformat(), Sums()))
    return list(rows.items())


def _label(day: date, grain: Grain, week_start: date) -> str:
    # Weeks run from the period's first day; months and years are calendar ones (UTC).
    if grain == "day":
        return f"{day:%m-%d}"
    if grain == "week":
        return f"wk {week_start:%m-%d}"
    return day.isoformat()[: 7 if grain == "month" else 4]


def _trend_lines(rows: list[tuple[str, Sums]]) -> list[str]:
    use_cost = any(s.cost_micros for _, s in rows)
    peak = max((s.cost_micros if use_cost else s.requests) for _, s in rows) or 1
    lines = []
    for label, sums in rows:
        value = sums.cost_micros if use_cost else sums.requests
        bar = BAR * round(BAR_WIDTH * value / peak) if value else "·"
        lines.append(f"{label}  {bar:<{BAR_WIDTH}}  {sums.requests:>6,} req  {cost_text(sums)}")
    return lines


def _savings(t: Sums) -> str:
    if not (t.cache_read_tokens or t.cache_write_5m_tokens or t.cache_write_1h_tokens):
        return "*Prompt caching*: no cached tokens in this period."
    saved = t.cache_savings_micros
    verdict = "saved" if saved >= 0 else "cost an extra"
    return (
        f"*Prompt caching* {verdict} {money(abs(saved))}: what the cached tokens would have "
        "cost as plain input, minus what their cache writes and reads cost."
    )


def _failures(report: UsageReport) -> str:
    lines = "\n".join(f"• {part}" for part in outcome_parts(report))
    return f"*Failed, stopped or declined*\n{lines}"


def outcome_parts(report: UsageReport) -> list[str]:
    t = report.totals
    parts = [
        f"{t.error_requests:,} failed",
        f"{t.partial_requests:,} partial (of which {t.stopped_requests:,} stopped by people)",
        f"{t.refused_requests:,} declined by Claude (refusals)",
        f"{report.refusals:,} refused by a budget (no cost)",
    ]
    if t.spend_limited_requests:
        parts.append(
            f"{t.spend_limited_requests:,} refused by the organisation's Anthropic spend limit"
        )
    if t.web_search_requests or t.web_fetch_requests:
        parts.append(f"{t.web_search_requests:,} web searches, {t.web_fetch_requests:,} fetches")
    return parts


def output_text(t: Sums) -> str:
    if not t.thinking_tokens:
        return f"{t.output_tokens:,}"
    return f"{t.output_tokens:,} (of which {t.thinking_tokens:,} thinking)"


def _ranking(title: str, rows: list[tuple[str, Sums]]) -> dict[str, Any]:
    lines = [
        f"{i}. {name}: {cost_text(s)} · {s.requests:,} req" for i, (name, s) in enumerate(rows, 1)
    ]
    return _section(f"*{title}*\n" + "\n".join(lines))


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": _mrkdwn(text)}


def _context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [_mrkdwn(text)]}


def _mrkdwn(text: str) -> dict[str, str]:
    return {"type": "mrkdwn", "text": text}
