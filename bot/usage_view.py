"""The `/usage` report as Block Kit, for an admin's eyes only (sent ephemeral). Pure."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from bot.pricing import money
from bot.report import PERIOD_HELP, UsageReport, add, cost_text
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
MAX_TREND_ROWS = 31


def usage_blocks(report: UsageReport) -> list[dict[str, Any]]:
    t = report.totals
    about = f"<#{report.channel_id}>" if report.channel_id else None
    about = about or (f"<@{report.user_id}>" if report.user_id else "the whole workspace")
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": "Claude usage and cost"}},
        _context(
            f"{about} · {report.period.label} "
            f"({report.period.start} to {report.period.end - timedelta(days=1)}, UTC)"
        ),
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
                _mrkdwn(f"*Output tokens*\n{t.output_tokens:,}"),
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
    blocks.append(_section("*Day by day*\n```\n" + trend(report) + "\n```"))
    blocks.append(_section(_failures(report)))
    return blocks


def trend(report: UsageReport) -> str:
    """One bar per day (per week for long periods), scaled to the biggest."""
    by_day = dict(report.by_day)
    days = report.period.days
    step = 1 if len(days) <= MAX_TREND_ROWS else 7
    rows: list[tuple[str, Sums]] = []
    for i in range(0, len(days), step):
        bucket = days[i : i + step]
        total = Sums()
        for day in bucket:
            add(total, by_day.get(day.isoformat(), Sums()))
        rows.append((_day_label(bucket[0], step), total))
    use_cost = any(s.cost_micros for _, s in rows)
    peak = max((s.cost_micros if use_cost else s.requests) for _, s in rows) or 1
    lines = []
    for label, sums in rows:
        value = sums.cost_micros if use_cost else sums.requests
        bar = BAR * round(BAR_WIDTH * value / peak) if value else "·"
        lines.append(f"{label}  {bar:<{BAR_WIDTH}}  {sums.requests:>6,} req  {cost_text(sums)}")
    return "\n".join(lines)


def _day_label(day: date, step: int) -> str:
    return f"{day:%m-%d}" if step == 1 else f"wk {day:%m-%d}"


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
    t = report.totals
    parts = [
        f"{t.error_requests:,} failed",
        f"{t.partial_requests:,} partial (of which {t.stopped_requests:,} stopped by people)",
        f"{report.refusals:,} refused by a budget (no cost)",
    ]
    return "*Failed or stopped*: " + " · ".join(parts)


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
