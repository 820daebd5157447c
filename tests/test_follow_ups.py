"""Follow-ups without a mention in threads the bot answered in; one answer per message; and
never a bot's message, so two bots cannot set each other off."""

from __future__ import annotations

from datetime import timedelta

from bot.config import Settings
from bot.store import message_claim
from bot.store.models import utcnow
from tests.fakes.anthropic import FakeAnthropic, Reply
from tests.fakes.slack import FakeSlack
from tests.rig import CHANNEL, TEAM_ID, make_settings, settle, start_bot


async def test_a_reply_in_an_answered_thread_is_answered_without_a_mention(
    settings: Settings, fake_slack: FakeSlack, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.enqueue(Reply(text="Paris."), Reply(text="About 2.1 million."))
    async with start_bot(settings) as bot:
        first = await bot.mention("What is the capital of France?")
        await bot.wait_for_usage(1)
        await bot.say_in_thread("And its population?", thread_ts=first.ts, user="U0BEN")
        await bot.wait_for_usage(2)

    assert fake_slack.thread_text(CHANNEL, first.ts) == ["Paris.", "About 2.1 million."]
    assert "<@U0BEN>: And its population?" in str(fake_anthropic.message_requests[1].body)


async def test_every_other_message_is_left_alone(
    settings: Settings, fake_slack: FakeSlack, fake_anthropic: FakeAnthropic
) -> None:
    stranger = fake_slack.add_message(CHANNEL, "a thread the bot never joined")
    async with start_bot(settings) as bot:
        answered = await bot.mention("Hello?")
        await bot.wait_for_usage(1)
        top = fake_slack.add_message(CHANNEL, "a top-level message without a mention")
        await bot.event(fake_slack.as_event(CHANNEL, top))
        await bot.say_in_thread("chatting among ourselves", thread_ts=stranger)
        await bot.bot_message("a bot in the answered thread", thread_ts=answered.ts)
        await bot.event_in_channel("message_changed", ts=answered.ts, text="edited")
        await bot.event_in_channel("channel_join", user="U0NEW")
        await bot.event_in_channel("message_deleted", ts=top)
        await settle(0.5)

    assert len(fake_anthropic.message_requests) == 1


async def test_follow_ups_can_be_turned_off(
    fake_slack: FakeSlack, fake_anthropic: FakeAnthropic, database_url: str
) -> None:
    settings = make_settings(fake_slack, fake_anthropic, database_url, follow_ups=False)
    async with start_bot(settings) as bot:
        first = await bot.mention("Hello?")
        await bot.wait_for_usage(1)
        await bot.say_in_thread("and another thing", thread_ts=first.ts)
        await settle(0.5)

    assert len(fake_anthropic.message_requests) == 1


async def test_a_mention_delivered_twice_is_answered_once(
    settings: Settings, fake_slack: FakeSlack, fake_anthropic: FakeAnthropic
) -> None:
    # Slack sends a mention in a channel the app reads as app_mention and as message, with
    # different event ids; in a thread the bot answered in, both would qualify.
    async with start_bot(settings) as bot:
        first = await bot.mention("Hello?")
        await bot.wait_for_usage(1)
        second = await bot.mention("and again, with a mention", thread_ts=first.ts, twice=True)
        await bot.wait_for_usage(2)
        await settle(0.5)

        # The twin that comes late (or Slack's retry of it, minutes later) finds the
        # message answered: its claim is done, whatever its lease.
        key = message_claim(TEAM_ID, CHANNEL, second.ts)
        later = utcnow() + timedelta(minutes=10)
        assert not await bot.running.store.claim_event(key, TEAM_ID, "message", now=later)
        await bot.event(fake_slack.as_event(CHANNEL, second.ts))
        await settle(0.5)

    assert len(fake_anthropic.message_requests) == 2
    assert len(fake_slack.thread_text(CHANNEL, first.ts)) == 2


async def test_other_bots_are_never_answered_unless_allowed(
    fake_slack: FakeSlack, fake_anthropic: FakeAnthropic, database_url: str
) -> None:
    settings = make_settings(fake_slack, fake_anthropic, database_url, bot_allowlist="B0FRIEND")
    async with start_bot(settings) as bot:
        await bot.bot_message("<@U0BOT> are you there?", mention=True)  # another app's bot
        await bot.bot_message("ping", mention=True, user=None)  # an old-style bot_message
        await settle(0.5)
        assert fake_anthropic.message_requests == []
        await bot.bot_message(
            "hello from a friend",
            mention=True,
            bot_id="B0FRIEND",
            app_id="A0FRIEND",
            user="U0FRIEND",
        )
        await bot.wait_for_usage(1)

    assert len(fake_anthropic.message_requests) == 1


async def test_two_bots_mentioning_each_other_do_not_loop(
    settings: Settings, fake_slack: FakeSlack, fake_anthropic: FakeAnthropic
) -> None:
    async with start_bot(settings) as bot:
        first = await bot.mention("start something")
        await bot.wait_for_usage(1)
        # Another bot answers in the thread, mentioning us; then again; we never reply.
        for i in range(3):
            await bot.bot_message(f"<@U0BOT> your turn {i}", thread_ts=first.ts, mention=True)
            await bot.bot_message(f"your turn {i}", thread_ts=first.ts)
        await settle(0.5)

    assert len(fake_anthropic.message_requests) == 1
    assert len(fake_slack.thread_text(CHANNEL, first.ts)) == 1
