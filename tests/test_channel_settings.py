"""Per-channel settings: anyone reads them, admins change them, every replica obeys at once."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from tests.fakes.anthropic import FakeAnthropic, Reply
from tests.fakes.slack import FakeSlack
from tests.rig import (
    CHANNEL,
    BotUnderTest,
    conversation,
    make_settings,
    settle,
    start_bot,
)

ADMIN = "U0ADMIN"
_keys = itertools.count()


async def command(bot: BotUnderTest, fake_slack: FakeSlack, text: str, **fields: str) -> str:
    """Run `/ask <text>` and return what the asker alone was told."""
    key = f"r{next(_keys)}"
    delivery = await bot.command("/ask", text, response_url=fake_slack.response_url(key), **fields)
    if delivery.body:  # answered in the acknowledgement: Slack shows it to the asker alone
        return delivery.body
    await fake_slack.wait_for(lambda: any(k == key for k, _ in fake_slack.responses))
    [body] = [b for k, b in fake_slack.responses if k == key]
    assert body["response_type"] == "ephemeral"
    return str(body["text"])


def system_of(request: Any) -> str:
    return "".join(block["text"] for block in request.body["system"])


@pytest.fixture(autouse=True)
def an_admin(fake_slack: FakeSlack) -> None:
    fake_slack.users[ADMIN] = {"is_admin": True}


async def test_anyone_reads_the_settings_and_only_admins_change_them(
    fake_slack: FakeSlack, fake_anthropic: FakeAnthropic, database_url: str
) -> None:
    async with start_bot(make_settings(fake_slack, fake_anthropic, database_url)) as bot:
        shown = await command(bot, fake_slack, "settings")
        refused = await command(bot, fake_slack, "settings off")
        after_refusal = await command(bot, fake_slack, "settings")
        done = await command(bot, fake_slack, "settings off", user_id=ADMIN)

    assert "• On in this channel: yes (default)" in shown
    assert "• Model: `claude-sonnet-5-5` (default)" in shown
    assert "Admins change this channel's settings" in shown
    assert (
        refused == "Only workspace admins can change this channel's settings; nothing was changed."
    )
    assert "• On in this channel: yes (default)" in after_refusal
    assert done.startswith("Done: on in this channel changed.")
    assert f"• On in this channel: no (set by <@{ADMIN}> on " in done


async def test_a_channel_that_is_off_answers_privately_and_calls_no_model(
    fake_slack: FakeSlack, fake_anthropic: FakeAnthropic, database_url: str
) -> None:
    fake_anthropic.enqueue(Reply(text="Back on."))
    async with start_bot(make_settings(fake_slack, fake_anthropic, database_url)) as bot:
        await command(bot, fake_slack, "settings off", user_id=ADMIN)
        await bot.mention("hello?")
        await fake_slack.wait_for(lambda: bool(fake_slack.ephemerals))
        await bot.command("/ask", "why is the sky blue")
        await fake_slack.wait_for(lambda: len(fake_slack.ephemerals) == 2)
        await settle()
        assert fake_anthropic.message_requests == []
        await command(bot, fake_slack, "settings on", user_id=ADMIN)
        mention = await bot.mention("and now?")
        await bot.wait_for_usage(1)

    note = fake_slack.ephemerals[0].params["text"]
    assert "I'm switched off in this channel" in note
    assert "I'm switched off in this channel" in fake_slack.ephemerals[1].params["text"]
    assert fake_slack.thread_text(CHANNEL, mention.ts) == ["Back on."]


async def test_a_channel_model_and_instructions_reach_claude_and_the_ledger(
    fake_slack: FakeSlack, fake_anthropic: FakeAnthropic, database_url: str
) -> None:
    fake_anthropic.enqueue(Reply(text="One."), Reply(text="Two."))
    async with start_bot(make_settings(fake_slack, fake_anthropic, database_url)) as bot:
        unknown = await command(bot, fake_slack, "settings model gpt-9", user_id=ADMIN)
        await command(bot, fake_slack, "settings model claude-opus-5-5", user_id=ADMIN)
        await command(bot, fake_slack, "settings instructions Answer in French.", user_id=ADMIN)
        await bot.mention("hello")
        await bot.wait_for_usage(1)
        await command(bot, fake_slack, "settings instructions off", user_id=ADMIN)
        await command(bot, fake_slack, "settings model default", user_id=ADMIN)
        await bot.mention("again")
        rows = await bot.wait_for_usage(2)

    assert unknown.startswith("`gpt-9` is not a model I know. Valid models: ")
    assert "`claude-opus-5-5`" in unknown
    first, second = fake_anthropic.message_requests
    assert first.body["model"] == "claude-opus-5-5"
    assert system_of(first).endswith(
        "Instructions for this channel, from its admins:\nAnswer in French."
    )
    assert second.body["model"] == "claude-sonnet-5-5"
    assert "Answer in French" not in system_of(second)
    assert sorted(r.requested_model for r in rows) == ["claude-opus-5-5", "claude-sonnet-5-5"]


async def test_memory_off_sends_only_the_thread(
    fake_slack: FakeSlack, fake_anthropic: FakeAnthropic, database_url: str
) -> None:
    fake_anthropic.enqueue(Reply(text="The first answer."), Reply(text="Second."))
    async with start_bot(make_settings(fake_slack, fake_anthropic, database_url)) as bot:
        await bot.mention("remember the word pineapple")
        await bot.wait_for_usage(1)
        await command(bot, fake_slack, "settings memory off", user_id=ADMIN)
        await bot.mention("what was the word?")
        await bot.wait_for_usage(2)

    texts = [m["content"] for m in conversation(fake_anthropic.message_requests[1].body)]
    assert not any("pineapple" in t for t in texts)


async def test_follow_ups_off_needs_a_mention_again(
    fake_slack: FakeSlack, fake_anthropic: FakeAnthropic, database_url: str
) -> None:
    fake_anthropic.enqueue(Reply(text="First."), Reply(text="Followed."))
    async with start_bot(make_settings(fake_slack, fake_anthropic, database_url)) as bot:
        mention = await bot.mention("start")
        await bot.wait_for_usage(1)
        await command(bot, fake_slack, "settings followups off", user_id=ADMIN)
        await bot.say_in_thread("a reply without a mention", thread_ts=mention.ts)
        await settle(0.5)
        assert len(fake_anthropic.message_requests) == 1
        await command(bot, fake_slack, "settings followups on", user_id=ADMIN)
        await bot.say_in_thread("and another", thread_ts=mention.ts)
        await bot.wait_for_usage(2)

    assert fake_slack.thread_text(CHANNEL, mention.ts) == ["First.", "Followed."]


@pytest.mark.both_databases
async def test_a_change_on_one_replica_is_in_force_on_the_other_at_once(
    fake_slack: FakeSlack, fake_anthropic: FakeAnthropic, database_url: str
) -> None:
    settings = make_settings(fake_slack, fake_anthropic, database_url)
    fake_anthropic.enqueue(Reply(text="Via two."))
    async with start_bot(settings) as one, start_bot(settings) as two:
        await command(one, fake_slack, "settings model claude-haiku-5-5", user_id=ADMIN)
        await two.mention("hello")
        await two.wait_for_usage(1)

    assert fake_anthropic.message_requests[0].body["model"] == "claude-haiku-5-5"


async def test_only_admins_reset_memory_where_admins_said_so(
    fake_slack: FakeSlack, fake_anthropic: FakeAnthropic, database_url: str
) -> None:
    async with start_bot(make_settings(fake_slack, fake_anthropic, database_url)) as bot:
        bad = await command(bot, fake_slack, "settings reset nobody", user_id=ADMIN)
        await command(bot, fake_slack, "settings reset admins", user_id=ADMIN)
        refused = await command(bot, fake_slack, "reset")
        allowed = await command(bot, fake_slack, "reset", user_id=ADMIN)

    assert bad.startswith("Use `anyone` or `admins`.")
    assert "only workspace admins can reset my memory" in refused
    assert allowed.startswith("Done: I'll start fresh")


async def test_channels_off_by_default_and_slack_connect_off_until_an_admin_turns_them_on(
    fake_slack: FakeSlack, fake_anthropic: FakeAnthropic, database_url: str
) -> None:
    fake_anthropic.enqueue(Reply(text="Turned on."), Reply(text="Shared, and on."))
    settings = make_settings(fake_slack, fake_anthropic, database_url, channels_default="off")
    async with start_bot(settings) as bot:
        await bot.mention("anyone here?")
        await fake_slack.wait_for(lambda: len(fake_slack.ephemerals) == 1)
        await command(bot, fake_slack, "settings on", user_id=ADMIN)
        on = await bot.mention("and now?")
        await bot.wait_for_usage(1)
        # A Slack Connect channel, with the workspace default on: still off.
        shared = "C0SHARED"
        await bot.mention("hi from outside", channel=shared, external=True)
        await fake_slack.wait_for(lambda: len(fake_slack.ephemerals) == 2)
        await command(bot, fake_slack, "settings on", user_id=ADMIN, channel_id=shared)
        answered = await bot.mention("and now?", channel=shared, external=True)
        await bot.wait_for_usage(2)

    assert all("switched off" in e.params["text"] for e in fake_slack.ephemerals)
    assert fake_slack.thread_text(CHANNEL, on.ts) == ["Turned on."]
    assert fake_slack.thread_text(shared, answered.ts) == ["Shared, and on."]


async def test_ask_in_a_slack_connect_channel_is_off_until_an_admin_turns_it_on(
    fake_slack: FakeSlack, fake_anthropic: FakeAnthropic, database_url: str
) -> None:
    shared = "C0CONNECT"
    fake_slack.shared_channels.add(shared)
    fake_anthropic.enqueue(Reply(text="Now on."))
    async with start_bot(make_settings(fake_slack, fake_anthropic, database_url)) as bot:
        await bot.command("/ask", "hello from outside", channel_id=shared)
        await fake_slack.wait_for(lambda: len(fake_slack.ephemerals) == 1)
        await settle()
        assert fake_anthropic.message_requests == []
        shown = await command(bot, fake_slack, "settings", channel_id=shared)
        await command(bot, fake_slack, "settings on", user_id=ADMIN, channel_id=shared)
        await bot.command("/ask", "and now?", channel_id=shared)
        await bot.wait_for_usage(1)

    assert "switched off" in fake_slack.ephemerals[0].params["text"]
    assert "• On in this channel: no (default)" in shown
    assert "shared with another organisation (Slack Connect)" in shown
