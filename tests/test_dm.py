"""Direct messages: answered without a mention, with memory; never a reply to bots or edits."""

from __future__ import annotations

from bot.config import Settings
from tests.fakes.anthropic import FakeAnthropic, Reply
from tests.fakes.slack import FakeSlack
from tests.rig import DM, USER, conversation, settle, start_bot


async def test_dm_is_answered_in_the_dm_with_memory(
    settings: Settings, fake_slack: FakeSlack, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.enqueue(Reply(text="Hi Ada."), Reply(text="Your name is Ada."))
    async with start_bot(settings) as bot:
        await bot.dm("Hi, I'm Ada.")
        await bot.wait_for_usage(1)
        await bot.dm("What's my name?")
        await bot.wait_for_usage(2)

    replies = [m for m in fake_slack.messages[DM].values() if m.user == fake_slack.bot_user_id]
    # In the DM's main view, the answers stay in the main view (no thread).
    assert [(m.shown, m.thread_ts) for m in replies] == [
        ("Hi Ada.", None),
        ("Your name is Ada.", None),
    ]
    assert [m["content"] for m in conversation(fake_anthropic.message_requests[1].body)] == [
        "<@U0USER>: Hi, I'm Ada.",
        "Hi Ada.",
        "<@U0USER>: What's my name?",
    ]


async def test_dm_in_a_thread_is_answered_in_that_thread(
    settings: Settings, fake_slack: FakeSlack
) -> None:
    async with start_bot(settings) as bot:
        root = await bot.dm("Start")
        await bot.wait_for_usage(1)
        await bot.dm("Follow-up in a thread", thread_ts=root)
        await bot.wait_for_usage(2)

    assert fake_slack.thread_text(DM, root) == ["Hello from the fake Claude."]


async def test_bots_edits_deletions_and_own_messages_get_no_reply(
    settings: Settings, fake_slack: FakeSlack, fake_anthropic: FakeAnthropic
) -> None:
    ignored = [
        {"user": "U0OTHERBOT", "bot_id": "B0OTHER", "text": "beep", "ts": "1.1"},
        {"subtype": "bot_message", "bot_id": "B0OTHER", "text": "beep", "ts": "1.2"},
        {"user": fake_slack.bot_user_id, "bot_id": fake_slack.bot_id, "text": "me", "ts": "1.3"},
        {
            "subtype": "message_changed",
            "message": {"user": USER, "text": "edited", "ts": "1.4"},
            "ts": "1.5",
        },
        {"subtype": "message_deleted", "deleted_ts": "1.4", "ts": "1.6"},
        # A channel message (not a DM) without a mention is not for the bot.
        {"user": USER, "text": "chatting", "ts": "1.7", "channel_type": "channel"},
    ]
    async with start_bot(settings) as bot:
        for event in ignored:
            await bot.message_event({"channel": DM, "channel_type": "im", **event})
        await settle()
        assert await bot.usage() == []

    assert fake_anthropic.requests == []
    assert fake_slack.calls_to("chat.postMessage") == []
