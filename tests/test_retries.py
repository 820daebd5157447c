"""Retries: Slack 429s and dropped connections are retried; a 4xx that cannot succeed is not."""

from __future__ import annotations

from bot.config import Settings
from tests.fakes.anthropic import FakeAnthropic, Reply
from tests.fakes.slack import FakeSlack
from tests.rig import CHANNEL, start_bot

FAST = {"retry-after-ms": "1"}


async def test_anthropic_429_is_retried_then_succeeds(
    settings: Settings, fake_slack: FakeSlack, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.enqueue(Reply(status=429, headers=FAST), Reply(text="Second time lucky."))
    async with start_bot(settings) as bot:
        mention = await bot.mention("hi")
        [row] = await bot.wait_for_usage(1)

    assert len(fake_anthropic.message_requests) == 2
    retries = [r.headers["x-stainless-retry-count"] for r in fake_anthropic.message_requests]
    assert retries == ["0", "1"]
    assert row.outcome == "complete"
    assert fake_slack.thread_text(CHANNEL, mention.ts) == ["Second time lucky."]


async def test_anthropic_4xx_is_not_retried(
    settings: Settings, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.enqueue(Reply(status=400))
    async with start_bot(settings) as bot:
        await bot.mention("hi")
        [row] = await bot.wait_for_usage(1)

    assert len(fake_anthropic.message_requests) == 1
    assert row.error_kind == "bad_request"


async def test_a_dropped_slack_connection_is_retried(
    settings: Settings, fake_slack: FakeSlack, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.enqueue(Reply(text="Made it through."))
    fake_slack.fail_next("chat.postMessage", "drop")
    async with start_bot(settings) as bot:
        mention = await bot.mention("hi")
        await bot.wait_for_usage(1)

    posts = fake_slack.calls_to("chat.postMessage")
    assert [c.error for c in posts] == ["drop", None]
    assert fake_slack.thread_text(CHANNEL, mention.ts) == ["Made it through."]


async def test_a_slack_error_that_cannot_succeed_is_not_retried(
    settings: Settings, fake_slack: FakeSlack, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.enqueue(Reply(text="Short answer."))
    fake_slack.fail_next("chat.update", "cant_update_message", times=10)
    async with start_bot(settings) as bot:
        await bot.mention("hi")
        await bot.wait_for_usage(1)

    # The answer came at once, so there is only the final write: tried once, not retried.
    assert [c.error for c in fake_slack.calls_to("chat.update")] == ["cant_update_message"]
