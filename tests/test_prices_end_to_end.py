"""Prices as the bot applies them to real requests: aliases, the US region, tiny amounts."""

from __future__ import annotations

import pytest

from tests.fakes.anthropic import FakeAnthropic, Reply
from tests.fakes.slack import FakeSlack
from tests.rig import make_settings, start_bot
from tests.test_usage import run_cli, usage


async def test_an_alias_prices_as_its_model_and_us_only_inference_costs_a_tenth_more(
    fake_slack: FakeSlack, fake_anthropic: FakeAnthropic, database_url: str
) -> None:
    settings = make_settings(
        fake_slack, fake_anthropic, database_url, claude_model="claude-sonnet-5-5-latest"
    )
    fake_anthropic.enqueue(
        Reply(text="a", input_tokens=1_000, output_tokens=100),
        Reply(text="b", input_tokens=1_000, output_tokens=100, inference_geo="us"),
    )
    async with start_bot(settings) as bot:
        await bot.mention("--short one")
        await bot.wait_for_usage(1)
        await bot.mention("--short two")
        rows = await bot.wait_for_usage(2)

    # Sonnet 5.5: 1,000 · $2 + 100 · $10 = 3,000 µ$; in the US region 1.1 × that.
    assert [(r.requested_model, r.inference_geo, r.cost_micros) for r in rows] == [
        ("claude-sonnet-5-5-latest", "global", 3_000),
        ("claude-sonnet-5-5-latest", "us", 3_300),
    ]


@pytest.mark.parametrize(("output_tokens", "shown"), [(1, "< $0.0001"), (300, "$0.0002")])
async def test_a_tiny_cost_never_shows_as_nothing(
    fake_slack: FakeSlack,
    fake_anthropic: FakeAnthropic,
    database_url: str,
    output_tokens: int,
    shown: str,
) -> None:
    # Haiku 5.5: 10 · $0.10 + 1 · $0.50 = 1.5 µ$ (was "$0.0000"); 10 · $0.10 + 300 · $0.50
    # = 151 µ$, half-up to "$0.0002" (float formatting gave "$0.0001" for 150).
    settings = make_settings(
        fake_slack, fake_anthropic, database_url, claude_model="claude-haiku-5-5"
    )
    fake_slack.users["U0ADMIN"] = {"is_admin": True}
    fake_anthropic.enqueue(Reply(text="ok", input_tokens=10, output_tokens=output_tokens))
    async with start_bot(settings) as bot:
        await bot.mention("--short tiny")
        [row] = await bot.wait_for_usage(1)
        report = await usage(bot, fake_slack, "today", "U0ADMIN")

    assert row.cost_micros == (2 if output_tokens == 1 else 151)
    assert f"*Cost*\n{shown}" in report
    assert f"Cost          {shown}" in run_cli(database_url, "--since", "today")
    assert "$0.0000" not in report
