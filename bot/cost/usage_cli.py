"""`python -m bot usage`: the /usage figures on the command line, as a table, CSV or JSON."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta
from typing import Any, Literal

from bot.cost.prices import money, usd
from bot.cost.report import UsageArgs, UsageReport, add, build_report, cost_text
from bot.cost.usage_view import fitted_trend, output_text
from bot.store import Ledger, Sums
from bot.store.ledger import GroupBy

Format = Literal["table", "csv", "json"]
COLUMNS = (
    ("requests", "REQUESTS"),
    ("input_tokens", "INPUT"),
    ("output_tokens", "OUTPUT"),
    ("cache_write_5m_tokens", "CACHE_W_5M"),
    ("cache_write_1h_tokens", "CACHE_W_1H"),
    ("cache_read_tokens", "CACHE_READ"),
)


async def render(
    ledger: Ledger, args: UsageArgs, *, by: GroupBy | None, fmt: Format, team_id: str | None
) -> str:
    if by is None and fmt == "csv":
        by = "day"  # CSV needs rows; days are what a spreadsheet wants
    if by is None:
        report = await build_report(ledger, args, team_id=team_id)
        return _summary(report) if fmt == "table" else json.dumps(_report_json(report), indent=2)
    rows = await ledger.grouped(args.scope(team_id), by)
    if fmt == "json":
        return json.dumps([{by: key, **_sums_json(s)} for key, s in rows], indent=2)
    if fmt == "csv":
        return _csv(by, rows)
    return _table(by, rows)


def _sums_json(sums: Sums) -> dict[str, Any]:
    known = sums.requests - sums.unknown_cost_requests
    return {
        "requests": sums.requests,
        "input_tokens": sums.input_tokens,
        "output_tokens": sums.output_tokens,
        "cache_write_5m_tokens": sums.cache_write_5m_tokens,
        "cache_write_1h_tokens": sums.cache_write_1h_tokens,
        "cache_read_tokens": sums.cache_read_tokens,
        # Exact integers; a cost with unpriced requests says so instead of pretending.
        "cost_micros": sums.cost_micros if known else None,
        "cost_usd": usd(sums.cost_micros) if known else None,
        "unknown_cost_requests": sums.unknown_cost_requests,
        "estimated_micros": sums.estimated_micros,
        "thinking_tokens": sums.thinking_tokens,
        "refused_requests": sums.refused_requests,
        "spend_limited_requests": sums.spend_limited_requests,
        "web_search_requests": sums.web_search_requests,
        "web_fetch_requests": sums.web_fetch_requests,
        "cache_savings_micros": sums.cache_savings_micros,
        "partial_requests": sums.partial_requests,
        "error_requests": sums.error_requests,
        "stopped_requests": sums.stopped_requests,
    }


def _report_json(report: UsageReport) -> dict[str, Any]:
    def listed(rows: list[tuple[str, Sums]], name: str) -> list[dict[str, Any]]:
        return [{name: key, **_sums_json(s)} for key, s in rows]

    return {
        "period": {
            "first_day": report.period.start.isoformat(),
            "last_day": (report.period.end - timedelta(days=1)).isoformat(),
        },
        "channel": report.channel_id,
        "user": report.user_id,
        "totals": _sums_json(report.totals),
        "budget_refusals": report.refusals,
        "by_model": listed(report.by_model, "model"),
        "top_channels": listed(report.top_channels, "channel"),
        "top_users": listed(report.top_users, "user"),
        "by_day": listed(report.by_day, "day"),
    }


def _csv(by: str, rows: list[tuple[str, Sums]]) -> str:
    out = io.StringIO()
    sample = _sums_json(Sums())
    writer = csv.DictWriter(out, fieldnames=[by, *sample], lineterminator="\n")
    writer.writeheader()
    for key, sums in rows:
        writer.writerow(
            {by: key, **{k: "" if v is None else v for k, v in _sums_json(sums).items()}}
        )
    return out.getvalue().rstrip("\n")


def _table(by: str, rows: list[tuple[str, Sums]]) -> str:
    total = Sums()
    for _key, sums in rows:
        add(total, sums)
    header = [by.upper(), *(title for _, title in COLUMNS), "COST"]
    body = [[key or "(none)", *_cells(sums)] for key, sums in rows]
    body.append(["TOTAL", *_cells(total)])
    widths = [max(len(str(row[i])) for row in [header, *body]) for i in range(len(header))]
    lines = [
        "  ".join(
            cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i]) for i, cell in enumerate(row)
        )
        for row in [header, *body]
    ]
    lines.insert(len(lines) - 1, "-" * len(lines[0]))
    return "\n".join(lines)


def _cells(sums: Sums) -> list[str]:
    return [f"{getattr(sums, name):,}" for name, _ in COLUMNS] + [cost_text(sums)]


def _savings(micros: int) -> str:
    if micros >= 0:
        return f"caching saved {money(micros)}"
    return f"cache writes cost {money(-micros)} more than they saved so far"


def _outcomes(report: UsageReport) -> str:
    t = report.totals
    text = (
        f"{t.error_requests:,} failed, {t.partial_requests:,} partial, "
        f"{t.stopped_requests:,} stopped, {t.refused_requests:,} declined by Claude; "
        f"{report.refusals:,} refused by a budget"
    )
    if t.spend_limited_requests:
        text += f", {t.spend_limited_requests:,} by the Anthropic spend limit"
    if t.web_search_requests or t.web_fetch_requests:
        text += f"; {t.web_search_requests:,} web searches, {t.web_fetch_requests:,} fetches"
    return text


def _summary(report: UsageReport) -> str:
    t = report.totals
    last = report.period.end - timedelta(days=1)
    lines = [
        f"Claude usage, {report.period.label} ({report.period.start} to {last}, UTC)",
        "",
        f"Cost          {cost_text(t)}",
        f"Requests      {t.requests:,} ({_outcomes(report)})",
        f"Input         {t.input_tokens:,} tokens",
        f"Output        {output_text(t)} tokens",
        f"Cache writes  {t.cache_write_5m_tokens:,} (5 min), {t.cache_write_1h_tokens:,} (1 h)",
        f"Cache reads   {t.cache_read_tokens:,} ({_savings(t.cache_savings_micros)})",
    ]
    for title, rows in (
        ("By model", report.by_model),
        ("Top channels", report.top_channels),
        ("Top users", report.top_users),
    ):
        if rows:
            lines += ["", title]
            lines += [
                f"  {key or '(none)':<24} {s.requests:>8,} req  {cost_text(s)}" for key, s in rows
            ]
    fitted = fitted_trend(report, limit=10**9)
    lines += ["", fitted.title, fitted.text]
    return "\n".join(lines)
