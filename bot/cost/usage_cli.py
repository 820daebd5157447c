"""`python -m bot usage`: the /usage figures on the command line, as a table, CSV or JSON.

The ledger is only read: a database that is not there, or has no tables yet, is named with
`python -m bot migrate` as the fix, never created.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Literal

from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from bot.config import sqlite_file
from bot.cost.prices import money, usd
from bot.cost.report import (
    DEFAULT_PERIOD,
    UsageArgs,
    UsageReport,
    add,
    build_report,
    cost_text,
    parse_period,
)
from bot.cost.usage_view import fitted_trend, output_text
from bot.errors import first_line
from bot.store import Ledger, Sums, make_engine, make_sessionmaker
from bot.store.ledger import GroupBy

Format = Literal["table", "csv", "json"]
RECONCILE_PERIOD = "7d"
PERIODS = "today, 7d, 30d, 90d or any Nd up to 366d, month, or YYYY-MM-DD..YYYY-MM-DD"

# `python -m bot usage --help`
_DEFAULT_LABEL = parse_period(DEFAULT_PERIOD, date(2026, 1, 1)).label  # "the last 30 days"
USAGE_DESCRIPTION = """\
Usage and cost of Claude from the bot's ledger (the database named by DATABASE_URL),
in UTC days. It only reads: a database that does not exist or has no tables yet is
reported (run python -m bot migrate), never created.

usage reconcile sets the ledger's cost per day and model beside Anthropic's cost
report. It needs ANTHROPIC_ADMIN_API_KEY; the Admin API reports for the whole
organization, so --by, --team and --format csv do not apply to it."""
USAGE_EPILOG = f"""\
periods (--since):
  today                      today so far
  7d, 30d, 90d, ... Nd       the last N days, today included (1 to 366)
  month                      this calendar month so far
  2026-10-01..2026-10-31     from one day to another, both included
  default: {DEFAULT_PERIOD} ({RECONCILE_PERIOD} for reconcile)

examples:
  python -m bot usage                                  a summary of {_DEFAULT_LABEL}
  python -m bot usage --since today
  python -m bot usage --since 90d --by user            one row per person
  python -m bot usage --since month --by model --format csv > models.csv
  python -m bot usage --since 2026-10-01..2026-10-31 --format json
  python -m bot usage --team T0123ABCD --by channel    one workspace, per channel
  python -m bot usage reconcile --since 30d            beside Anthropic's cost report
"""

COLUMNS = (
    ("requests", "REQUESTS"),
    ("input_tokens", "INPUT"),
    ("output_tokens", "OUTPUT"),
    ("cache_write_5m_tokens", "CACHE_W_5M"),
    ("cache_write_1h_tokens", "CACHE_W_1H"),
    ("cache_read_tokens", "CACHE_READ"),
)

MIGRATE = "run `python -m bot migrate` first, or set DATABASE_URL to the bot's database"


class LedgerUnavailable(Exception):
    """The ledger cannot be read; the message says why and what to do, in one line."""


@asynccontextmanager
async def opened_ledger(database_url: str) -> AsyncIterator[Ledger]:
    """The ledger of a migrated database. Creates and changes nothing: a SQLite file is looked
    at read-only first (the bot's connection settings would create a missing file, or turn
    a file that is not the bot's into a WAL database); a database without the bot's tables
    is refused with `python -m bot migrate` as the fix."""
    shown = make_url(database_url).render_as_string(hide_password=True)
    path = sqlite_file(database_url)
    if path is not None and not path.is_file():
        raise LedgerUnavailable(f"No database at {path.absolute()}: {MIGRATE}.")
    if path is not None and _sqlite_revision(path) is None:
        raise LedgerUnavailable(f"{path.absolute()} has none of the bot's tables: {MIGRATE}.")
    engine = make_engine(database_url)
    try:
        if path is None:
            async with engine.connect() as connection:
                revision = await connection.run_sync(_revision)
            if revision is None:
                raise LedgerUnavailable(f"The database {shown} has no tables yet: {MIGRATE}.")
        yield Ledger(make_sessionmaker(engine))
    except (SQLAlchemyError, OSError) as error:
        raise LedgerUnavailable(
            f"Could not read the ledger in {shown} (DATABASE_URL): {first_line(error)}"
        ) from None
    finally:
        await engine.dispose()


def _sqlite_revision(path: Path) -> str | None:
    """The schema revision of a SQLite file, read-only; None when it has none."""
    try:
        uri = f"{path.absolute().as_uri()}?mode=ro"
        with contextlib.closing(sqlite3.connect(uri, uri=True)) as db:
            row = db.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.Error:  # no such table, or not a database at all
        return None
    return str(row[0]) if row else None


def _revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


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
    # No requests cost $0, as the table says; requests that all lack a price have no known
    # cost (estimated_micros has the estimate) rather than a pretended $0.
    known = not sums.requests or sums.requests > sums.unknown_cost_requests
    return {
        "requests": sums.requests,
        "input_tokens": sums.input_tokens,
        "output_tokens": sums.output_tokens,
        "cache_write_5m_tokens": sums.cache_write_5m_tokens,
        "cache_write_1h_tokens": sums.cache_write_1h_tokens,
        "cache_read_tokens": sums.cache_read_tokens,
        # Exact integers; unpriced requests are counted apart, never folded into the cost.
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
    lines = [
        f"Claude usage, {report.period.heading}",
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
