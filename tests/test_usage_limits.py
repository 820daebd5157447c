"""/usage stays inside Slack's Block Kit limits for every period, however busy.

The trend is grouped by day, by week or by month: the finest grouping whose section fits.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

import pytest

from bot.cost.report import UsageReport, parse_usage_args
from bot.cost.usage_view import trend, usage_blocks
from bot.store import Sums
from tests.fakes.slack_store import blocks_error

TODAY = date(2026, 11, 24)
SECTION_TEXT_MAX = 3000  # a section's text (invalid_blocks beyond)
SECTION_FIELD_MAX = 2000  # each of a section's fields
HEADER_TEXT_MAX = 150
MAX_BLOCKS = 50


def sums(requests: int, cost_micros: int, unknown: int = 0) -> Sums:
    return Sums(
        requests=requests,
        input_tokens=requests * 1_000,
        output_tokens=requests * 200,
        cache_read_tokens=requests * 3_000,
        cost_micros=cost_micros,
        unknown_cost_requests=unknown,
        cache_savings_micros=cost_micros // 10,
        error_requests=requests // 100,
        partial_requests=requests // 50,
    )


def report_for(text: str, day: Sums, *, every: int = 1) -> UsageReport:
    """A report of period `text` with `day`'s usage on every `every`-th day."""
    period = parse_usage_args(text, TODAY).period
    by_day = [(d.isoformat(), day) for i, d in enumerate(period.days) if i % every == 0]
    totals = Sums()
    for _day, s in by_day:
        for name, value in vars(s).items():
            setattr(totals, name, getattr(totals, name) + value)
    ranked = [(f"C0CHANNEL{i}", day) for i in range(5)]
    return UsageReport(
        period=period,
        channel_id=None,
        user_id=None,
        totals=totals,
        by_model=[("claude-sonnet-5-5", day), ("claude-unpriced-9", day)],
        top_channels=ranked,
        top_users=[(f"U0PERSON{i}", s) for i, (_c, s) in enumerate(ranked)],
        by_day=by_day,
        refusals=12_345,
    )


def assert_within_limits(blocks: list[dict[str, Any]]) -> None:
    assert len(blocks) <= MAX_BLOCKS
    assert blocks_error(blocks) is None  # the fake Slack's own check
    for block in blocks:
        if block["type"] == "header":
            assert len(block["text"]["text"]) <= HEADER_TEXT_MAX
        if block["type"] == "section":
            if "text" in block:
                assert len(block["text"]["text"]) <= SECTION_TEXT_MAX, block["text"]["text"]
            fields = block.get("fields", [])
            assert len(fields) <= 10
            assert all(len(f["text"]) <= SECTION_FIELD_MAX for f in fields)
        if block["type"] == "context":
            assert all(len(e["text"]) <= SECTION_TEXT_MAX for e in block["elements"])


def trend_section(blocks: list[dict[str, Any]]) -> tuple[str, list[str]]:
    """The trend's title and its rows."""
    [text] = [
        b["text"]["text"]
        for b in blocks
        if b["type"] == "section" and "```" in b.get("text", {}).get("text", "")
    ]
    match = re.fullmatch(r"\*(.+)\*\n```\n(.*)\n```", text, re.DOTALL)
    assert match, text
    return match.group(1), match.group(2).split("\n")


# Busy: big counts, and some of the cost unknown, so every row's text is as long as it gets.
BUSY = sums(123_456, 12_345_678_901, unknown=99_999)
QUIET = sums(3, 12_345)


@pytest.mark.parametrize("day", [BUSY, QUIET], ids=["busy", "quiet"])
@pytest.mark.parametrize(
    "period",
    ["today", "7d", "30d", "31d", "90d", "180d", "366d", "month", "2020-01-01..2026-11-24"],
)
def test_every_period_fits_slacks_block_limits(period: str, day: Sums) -> None:
    blocks = usage_blocks(report_for(period, day))
    assert_within_limits(blocks)
    title, _rows = trend_section(blocks)
    assert title in ("Day by day", "Week by week", "Month by month", "Year by year")


def test_a_busy_year_is_month_by_month() -> None:
    report = report_for("366d", BUSY)
    blocks = usage_blocks(report)
    assert_within_limits(blocks)
    title, rows = trend_section(blocks)
    assert title == "Month by month"
    # 2025-11-24 .. 2026-11-24: thirteen calendar months, labelled YYYY-MM.
    assert [row.split()[0] for row in rows] == [
        "2025-11",
        "2025-12",
        *(f"2026-{m:02d}" for m in range(1, 12)),
    ]
    assert all(" req  " in row and "unpriced" in row for row in rows)


def test_a_quiet_year_with_gaps_still_fits() -> None:
    blocks = usage_blocks(report_for("366d", QUIET, every=3))
    assert_within_limits(blocks)
    title, rows = trend_section(blocks)
    assert title == "Week by week"  # the finest grouping that fits
    assert len(rows) == 53


@pytest.mark.parametrize("day", [BUSY, QUIET], ids=["busy", "quiet"])
def test_ninety_days_are_week_by_week(day: Sums) -> None:
    blocks = usage_blocks(report_for("90d", day))
    title, rows = trend_section(blocks)
    assert title == "Week by week"
    assert len(rows) == 13  # 90 days: twelve weeks and six days
    assert all(row.startswith("wk ") for row in rows)


@pytest.mark.parametrize("day", [BUSY, QUIET], ids=["busy", "quiet"])
def test_thirty_one_days_are_day_by_day(day: Sums) -> None:
    blocks = usage_blocks(report_for("31d", day))
    title, rows = trend_section(blocks)
    assert title == "Day by day"
    assert len(rows) == 31
    assert rows[-1].startswith("11-24 ")


def test_command_line_trend_is_unchanged() -> None:
    """`python -m bot usage` has no block limit: days, or weeks past 31 days, as before."""
    assert len(trend(report_for("31d", BUSY)).split("\n")) == 31
    assert len(trend(report_for("366d", BUSY)).split("\n")) == 53


def test_years_when_months_are_too_many_and_the_latest_years_when_even_those_are() -> None:
    title, rows = trend_section(usage_blocks(report_for("2020-01-01..2026-11-24", BUSY)))
    assert title == "Year by year"
    assert [row.split()[0] for row in rows] == [str(year) for year in range(2020, 2027)]

    blocks = usage_blocks(report_for("1800-01-01..2026-11-24", BUSY, every=30))
    assert_within_limits(blocks)
    title, rows = trend_section(blocks)
    assert title == "Year by year"
    assert rows[0] == "(earlier years left out)"
    assert rows[-1].startswith("2026 ")
    assert 10 < len(rows) < 227
