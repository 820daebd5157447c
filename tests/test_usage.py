"""/usage for admins: figures equal to what the fake Anthropic reported, priced by hand."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bot.config import Settings
from bot.cost.report import parse_usage_args
from bot.cost.usage_view import NOT_ADMIN, USAGE_HELP
from tests.fakes.anthropic import FakeAnthropic, Reply
from tests.fakes.slack import FakeSlack
from tests.rig import BotUnderTest, make_settings, start_bot

# claude-sonnet-5-5 per million tokens, written out here so the test does not trust the code.
SONNET = {
    "in": Decimal(2),
    "out": Decimal(10),
    "w5m": Decimal("2.5"),
    "w1h": Decimal(4),
    "read": Decimal("0.2"),
}
REPLIES = [
    # channel, user, reply
    ("C0CHAN", "U0USER", Reply(input_tokens=1000, output_tokens=200, cache_creation_5m=3000)),
    (
        "C0OTHER",
        "U0BOB",
        Reply(input_tokens=500, output_tokens=100, cache_read=3000, cache_creation_1h=1000),
    ),
    ("C0CHAN", "U0BOB", Reply(input_tokens=40, output_tokens=7, model="claude-unpriced-9")),
]


def micros(reply: Reply) -> int:
    cost = (
        (reply.input_tokens or 0) * SONNET["in"]
        + (reply.output_tokens or 0) * SONNET["out"]
        + reply.cache_creation_5m * SONNET["w5m"]
        + reply.cache_creation_1h * SONNET["w1h"]
        + reply.cache_read * SONNET["read"]
    )
    return int(cost)


def shown(body: dict[str, Any]) -> str:
    """Every piece of text in a Block Kit payload."""
    texts: list[str] = [str(body.get("text", ""))]

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") in ("mrkdwn", "plain_text"):
                texts.append(str(node.get("text", "")))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(body.get("blocks"))
    return "\n".join(texts)


async def ask_all(bot: BotUnderTest, fake_anthropic: FakeAnthropic) -> None:
    for i, (channel, user, reply) in enumerate(REPLIES):
        fake_anthropic.enqueue(reply)
        await bot.mention(f"question {i}", channel=channel, user=user)
        await bot.wait_for_usage(i + 1)


async def usage(bot: BotUnderTest, fake_slack: FakeSlack, text: str, user: str) -> str:
    key = f"usage-{len(fake_slack.responses)}"
    delivery = await bot.command(
        "/usage", text, user_id=user, response_url=fake_slack.response_url(key)
    )
    assert delivery.status == 200
    await fake_slack.wait_for(lambda: any(k == key for k, _ in fake_slack.responses))
    [body] = [b for k, b in fake_slack.responses if k == key]
    assert body["response_type"] == "ephemeral"
    return shown(body)


async def test_admin_report_matches_what_the_fake_reported(
    settings: Settings, fake_slack: FakeSlack, fake_anthropic: FakeAnthropic
) -> None:
    fake_slack.users["U0ADMIN"] = {"is_admin": True}
    async with start_bot(settings) as bot:
        await ask_all(bot, fake_anthropic)
        report = await usage(bot, fake_slack, "", "U0ADMIN")
        by_channel = await usage(bot, fake_slack, "today <#C0OTHER|other>", "U0ADMIN")
        rows = await bot.usage()

    priced = [r for _c, _u, r in REPLIES if r.model is None]
    known = sum(micros(r) for r in priced)
    assert known == 11_500 + 6_600
    assert [row.cost_micros for row in rows] == [11_500, 6_600, None]
    # The unpriced model of no known family counts at the table's dearest prices:
    # 40 · $10 + 7 · $50 = 750 µ$, shown as an estimate.
    assert [row.estimate_micros for row in rows] == [11_500, 6_600, 750]
    assert f"${known / 1e6:.4f} + ~$0.0008 estimated (1 unpriced)" in report
    assert "*Requests*\n3" in report
    assert f"*Input tokens*\n{sum(r.input_tokens or 0 for _c, _u, r in REPLIES):,}" in report
    assert f"*Output tokens*\n{sum(r.output_tokens or 0 for _c, _u, r in REPLIES):,}" in report
    assert "*Cache writes*\n3,000 (5 min) · 1,000 (1 h)" in report
    assert "*Cache reads*\n3,000" in report
    # Caching: 3,000 reads at $2 instead of $0.20 saves 5,400 µ$; the writes cost
    # 3,000 · 0.5 + 1,000 · 2 = 3,500 µ$ more than plain input.
    assert "saved $0.0019" in report
    assert "1. <#C0CHAN>: $0.0115 + ~$0.0008 estimated (1 unpriced) · 2 req" in report
    assert "2. <#C0OTHER>: $0.0066 · 1 req" in report
    assert "<@U0BOB>" in report
    assert "`claude-unpriced-9`: ~$0.0008 estimated (1 unpriced) · 1 req" in report
    assert "Day by day" in report
    # Narrowed to one channel and today.
    assert "<#C0OTHER> · today" in by_channel
    assert "*Requests*\n1" in by_channel
    assert "$0.0066" in by_channel


async def test_admin_by_setting_and_refusal_for_others_leaks_no_figures(
    fake_slack: FakeSlack, fake_anthropic: FakeAnthropic, database_url: str
) -> None:
    settings = make_settings(fake_slack, fake_anthropic, database_url, admin_user_ids="U0BOSS")
    async with start_bot(settings) as bot:
        await ask_all(bot, fake_anthropic)
        boss = await usage(bot, fake_slack, "7d", "U0BOSS")
        refused = await usage(bot, fake_slack, "7d", "U0USER")
        refused_budget = await usage(bot, fake_slack, "budget workspace daily 5", "U0USER")

    assert "*Requests*\n3" in boss
    for answer in (refused, refused_budget):
        assert answer.strip() == NOT_ADMIN
        assert not re.search(r"\d", answer)


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("yesterday", "`yesterday` is not a period"),
        ("0d", "from 1 to 366"),
        ("2026-11-10..2026-11-01", "ends before it starts"),
        ("2026-02-30..2026-03-01", "not a range of real dates"),
        ("7d 30d", "only one period"),
        ("#general", "pick the channel"),
        ("<#C1|a> <@U1|b>", "not both"),
    ],
)
async def test_bad_arguments_get_the_help(
    settings: Settings, fake_slack: FakeSlack, text: str, complaint: str
) -> None:
    fake_slack.users["U0ADMIN"] = {"is_owner": True}
    async with start_bot(settings) as bot:
        answer = await usage(bot, fake_slack, text, "U0ADMIN")

    assert complaint in answer
    assert USAGE_HELP in answer


def run_cli(database_url: str, *args: str) -> str:
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "DATABASE_URL": database_url, "PYTHONPATH": str(root)}
    result = subprocess.run(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "bot", "usage", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


async def test_command_line_prints_the_same_figures_in_three_formats(
    settings: Settings, fake_anthropic: FakeAnthropic, database_url: str
) -> None:
    async with start_bot(settings) as bot:
        await ask_all(bot, fake_anthropic)

    table = run_cli(database_url, "--since", "7d")
    assert "Cost          $0.0181 + ~$0.0008 estimated (1 unpriced)" in table
    assert "Requests      3 (0 failed" in table
    assert "Cache writes  3,000 (5 min), 1,000 (1 h)" in table

    by_channel = run_cli(database_url, "--by", "channel")
    assert by_channel.splitlines()[0].split()[:2] == ["CHANNEL", "REQUESTS"]
    assert "TOTAL" in by_channel.splitlines()[-1]

    rows = list(
        csv.DictReader(io.StringIO(run_cli(database_url, "--by", "model", "--format", "csv")))
    )
    by_model = {row["model"]: row for row in rows}
    assert by_model["claude-sonnet-5-5"]["cost_micros"] == str(11_500 + 6_600)
    assert by_model["claude-sonnet-5-5"]["cost_usd"] == "0.018100"
    assert by_model["claude-unpriced-9"]["cost_micros"] == ""
    assert by_model["claude-unpriced-9"]["unknown_cost_requests"] == "1"

    report = json.loads(run_cli(database_url, "--format", "json"))
    assert report["totals"]["requests"] == 3
    assert report["totals"]["cost_micros"] == 18_100  # of the requests with a price
    assert report["totals"]["estimated_micros"] == 750
    assert report["totals"]["unknown_cost_requests"] == 1
    assert report["totals"]["input_tokens"] == 1540
    assert {row["channel"] for row in report["top_channels"]} == {"C0CHAN", "C0OTHER"}


@pytest.mark.parametrize(
    ("text", "first", "last", "label"),
    [
        ("today", "2026-11-24", "2026-11-24", "today"),
        ("1d", "2026-11-24", "2026-11-24", "the last day"),
        ("7d", "2026-11-18", "2026-11-24", "the last 7 days"),
        ("90d", "2026-08-27", "2026-11-24", "the last 90 days"),
        ("30d", "2026-10-26", "2026-11-24", "the last 30 days"),
        ("", "2026-10-26", "2026-11-24", "the last 30 days"),
        ("month", "2026-11-01", "2026-11-24", "November 2026 so far"),
        ("2026-10-01..2026-10-31", "2026-10-01", "2026-10-31", "2026-10-01 to 2026-10-31"),
        ("2026-10-01..2026-10-01", "2026-10-01", "2026-10-01", "2026-10-01"),
    ],
)
def test_every_period_form(text: str, first: str, last: str, label: str) -> None:
    args = parse_usage_args(text, date(2026, 11, 24))
    assert args.period.start.isoformat() == first
    assert (args.period.end - timedelta(days=1)).isoformat() == last
    assert args.period.label == label


def test_channel_and_person_arguments_carry_slack_ids() -> None:
    today = date(2026, 11, 24)
    assert parse_usage_args("7d <#C0CHAN|general>", today).channel_id == "C0CHAN"
    assert parse_usage_args("<@U0BOB|bob> today", today).user_id == "U0BOB"
