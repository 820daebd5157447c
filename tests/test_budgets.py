"""Budgets: refused before any model call, warned once at 80 %, reset at the UTC boundary."""

from __future__ import annotations

import re
from datetime import timedelta

from bot.store import Outcome, Place, Scope, UsageRow
from bot.store.models import utcnow
from tests.fakes.anthropic import FakeAnthropic, Reply
from tests.fakes.slack import FakeSlack
from tests.rig import CHANNEL, TEAM_ID, USER, BotUnderTest, make_settings, settle, start_bot


def spend(micros: int) -> UsageRow:
    return UsageRow(
        requested_model="claude-sonnet-5-5",
        resolved_model="claude-sonnet-5-5",
        input_tokens=0,
        output_tokens=micros // 10,  # $10 per million output tokens
        cache_write_5m_tokens=0,
        cache_write_1h_tokens=0,
        cache_read_tokens=0,
        stop_reason="end_turn",
        request_id=None,
        ttft_ms=1,
        latency_ms=1,
        outcome=Outcome.COMPLETE,
        error_kind=None,
        cost_micros=micros,
    )


async def record(bot: BotUnderTest, micros: int, *, days_ago: int = 0) -> None:
    await bot.running.ledger.finish_reply(
        Place(TEAM_ID, CHANNEL, "1.0"),
        turn_id=None,
        text="",
        user_id=USER,
        usage=spend(micros),
        now=utcnow() - timedelta(days=days_ago),
    )


async def test_over_budget_is_refused_before_any_model_call(
    fake_slack: FakeSlack, fake_anthropic: FakeAnthropic, database_url: str
) -> None:
    settings = make_settings(
        fake_slack, fake_anthropic, database_url, budget_user_daily_usd="0.005"
    )
    async with start_bot(settings) as bot:
        mention = await bot.mention("an expensive question")
        await fake_slack.wait_for(lambda: bool(fake_slack.ephemerals))
        await settle()
        assert await bot.usage() == []
        refusals = await bot.running.ledger.refusals(Scope(start="2000-01-01", end="3000-01-01"))

    assert fake_anthropic.requests == []
    assert fake_slack.thread(CHANNEL, mention.ts) == []
    [note] = fake_slack.ephemerals
    text = note.params["text"]
    assert note.params["user"] == USER
    assert "would pass your daily Claude budget of $0.0050" in text
    assert "the bot's default setting" in text
    assert "It resets at" in text
    assert "00:00 UTC" in text
    assert refusals == 1


async def test_the_80_percent_warning_comes_once(
    fake_slack: FakeSlack, fake_anthropic: FakeAnthropic, database_url: str
) -> None:
    # Worst case of one short question (no thinking on Sonnet 5.5): ~420 prompt tokens
    # (mostly the system prompt) · $2.50 (each may be a cache write) + 100 max tokens · $10,
    # × 1.1 (the workspace may run in the dearer US region) ≈ 2,250 µ$.
    settings = make_settings(
        fake_slack,
        fake_anthropic,
        database_url,
        budget_daily_usd="0.0125",
        max_tokens_short=100,
        channel_memory_turns=0,
    )
    fake_anthropic.enqueue(
        Reply(input_tokens=10, output_tokens=1000),  # 10,020 µ$: past 80 % of 12,500
        Reply(input_tokens=10, output_tokens=10),
        Reply(input_tokens=10, output_tokens=10),
    )
    async with start_bot(settings) as bot:
        for i in range(3):
            await bot.mention(f"--short q{i}")
            await bot.wait_for_usage(i + 1)
        await settle()

    warnings = [c.params["text"] for c in fake_slack.ephemerals]
    assert len(warnings) == 1
    # 10,020 µ$ of output and input, plus the system prompt's first cache write.
    expected = (
        r"Heads-up: \$0\.01\d\d of the workspace's daily Claude budget of \$0\.0125 "
        r"is used \(8\d%\)"
    )
    assert re.search(expected, warnings[0])
    assert len(fake_anthropic.message_requests) == 3


async def test_budget_resets_at_the_period_boundary(
    fake_slack: FakeSlack, fake_anthropic: FakeAnthropic, database_url: str
) -> None:
    settings = make_settings(fake_slack, fake_anthropic, database_url, budget_daily_usd="1")
    async with start_bot(settings) as bot:
        await record(bot, 2_000_000, days_ago=1)  # yesterday's $2 is over the $1 of yesterday
        await bot.mention("today is a new day")
        await bot.wait_for_usage(2)
        await record(bot, 995_000)  # today is nearly spent now
        await bot.mention("one more?")
        # (The first answer's budget warnings may come too: they are read after its ledger
        # row, perhaps after the $0.995 above.)
        refusal = "would pass the workspace's daily Claude budget of $1.00"
        await fake_slack.wait_for(
            lambda: any(refusal in e.params["text"] for e in fake_slack.ephemerals)
        )

    assert len(fake_anthropic.message_requests) == 1


async def test_admin_sets_budgets_from_slack(
    fake_slack: FakeSlack, fake_anthropic: FakeAnthropic, database_url: str
) -> None:
    settings = make_settings(fake_slack, fake_anthropic, database_url, budget_user_daily_usd="5")
    fake_slack.users["U0ADMIN"] = {"is_admin": True}

    async def usage(text: str) -> str:
        key = f"k{len(fake_slack.responses)}"
        await bot.command(
            "/usage", text, user_id="U0ADMIN", response_url=fake_slack.response_url(key)
        )
        await fake_slack.wait_for(lambda: any(k == key for k, _ in fake_slack.responses))
        return str(next(b for k, b in fake_slack.responses if k == key)["text"])

    async with start_bot(settings) as bot:
        assert await usage("budget <#C0CHAN|general> daily $0.0001") == (
            "<#C0CHAN>'s daily budget is now $0.0001. "
            "Everyone's next request is checked against it."
        )
        listed = await usage("budget")
        await bot.mention("in the capped channel")
        await fake_slack.wait_for(lambda: bool(fake_slack.ephemerals))
        await bot.mention("elsewhere", channel="C0FREE")
        await bot.wait_for_usage(1)
        assert "back to the bot's setting, no budget" in await usage(
            "budget <#C0CHAN|general> daily default"
        )
        assert "is now off" in await usage("budget <@U0USER> daily off")
        await bot.mention("now free again")
        await bot.wait_for_usage(2)
        bad = await usage("budget <#C0CHAN> weekly 5")

    assert "• Each person, daily: $5.00 (bot setting)" in listed
    assert "<#C0CHAN>'s daily budget: $0.0001 (set by <@U0ADMIN> on" in listed
    refusal = fake_slack.ephemerals[0].params["text"]
    assert "this channel's daily Claude budget of $0.0001 (set by <@U0ADMIN> on" in refusal
    assert "is not a budget I know" in bad


async def test_requests_in_flight_hold_their_worst_case_against_the_budget(
    fake_slack: FakeSlack, fake_anthropic: FakeAnthropic, database_url: str
) -> None:
    # One request's worst case is about 2,250 µ$ (see above); two at once would need 4,500.
    settings = make_settings(
        fake_slack,
        fake_anthropic,
        database_url,
        budget_daily_usd="0.003",
        max_tokens_short=100,
        channel_memory_turns=0,
    )
    fake_anthropic.enqueue(Reply(chunks=["slow "] * 10, delay=0.1, input_tokens=1, output_tokens=1))
    async with start_bot(settings) as bot:
        await bot.mention("--short first")
        await fake_anthropic.wait_for_requests(1)
        await bot.mention("--short second, while the first is being written")
        await fake_slack.wait_for(lambda: bool(fake_slack.ephemerals))
        await bot.wait_for_usage(1)
        await bot.mention("--short third, after the first was recorded")
        await bot.wait_for_usage(2)

    assert (
        "would pass the workspace's daily Claude budget" in fake_slack.ephemerals[0].params["text"]
    )
    assert len(fake_anthropic.message_requests) == 2
