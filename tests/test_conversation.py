"""Thread memory comes from the database: across mentions and restarts, never across channels."""

from __future__ import annotations

from bot.config import Settings
from tests.fakes.anthropic import FakeAnthropic, Reply
from tests.fakes.slack import FakeSlack
from tests.rig import CHANNEL, conversation, settle, start_bot


async def test_follow_up_in_thread_sends_earlier_turns(
    settings: Settings, fake_slack: FakeSlack, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.enqueue(Reply(text="Paris."), Reply(text="About 2.1 million."))
    async with start_bot(settings) as bot:
        first = await bot.mention("What is the capital of France?")
        await bot.wait_for_usage(1)
        await bot.mention("And its population?", thread_ts=first.ts)
        await bot.wait_for_usage(2)

    second = conversation(fake_anthropic.message_requests[1].body)
    assert second == [
        {"role": "user", "content": "<@U0USER>: What is the capital of France?"},
        {"role": "assistant", "content": "Paris."},
        {"role": "user", "content": "<@U0USER>: And its population?"},
    ]
    # Both replies are in the one thread; the bot's own turns come from the store: the one
    # read of the thread's history (above) added nothing twice.
    assert fake_slack.thread_text(CHANNEL, first.ts) == ["Paris.", "About 2.1 million."]
    assert len(fake_slack.calls_to("conversations.replies")) == 1


async def test_memory_survives_restart_on_same_database(
    settings: Settings, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.enqueue(Reply(text="Noted: your name is Ada."), Reply(text="Ada."))
    async with start_bot(settings) as bot:
        first = await bot.mention("My name is Ada.")
        await bot.wait_for_usage(1)
    async with start_bot(settings) as bot:
        await bot.mention("What is my name?", thread_ts=first.ts)
        rows = await bot.wait_for_usage(2)

    assert [m["content"] for m in conversation(fake_anthropic.message_requests[1].body)] == [
        "<@U0USER>: My name is Ada.",
        "Noted: your name is Ada.",
        "<@U0USER>: What is my name?",
    ]
    assert [r.outcome for r in rows] == ["complete", "complete"]


async def test_other_channel_never_sees_the_thread(
    settings: Settings, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.enqueue(Reply(text="The code word is heron."), Reply(text="I don't know."))
    async with start_bot(settings) as bot:
        first = await bot.mention("Remember the code word heron.")
        await bot.wait_for_usage(1)
        # Same thread ts, other channel: a different conversation.
        await bot.mention("What is the code word?", channel="C0OTHER", thread_ts=first.ts)
        await bot.wait_for_usage(2)

    messages = fake_anthropic.message_requests[1].body["messages"]
    assert messages == [{"role": "user", "content": "<@U0USER>: What is the code word?"}]
    assert "heron" not in str(fake_anthropic.message_requests[1].body)


async def test_redelivered_event_gets_no_second_reply(
    settings: Settings, fake_slack: FakeSlack, fake_anthropic: FakeAnthropic
) -> None:
    async with start_bot(settings) as bot:
        first = await bot.mention("Hello?")
        await bot.wait_for_usage(1)
        # Slack's retry after a timeout: same event id, X-Slack-Retry-Num 1.
        retry = await bot.mention("Hello?", event_id=first.event_id, ts=first.ts, retry_num=1)
        # A plain duplicate delivery of the same event id, no retry header.
        again = await bot.mention("Hello?", event_id=first.event_id, ts=first.ts)
        assert retry.delivery.status == again.delivery.status == 200
        await settle()
        assert len(await bot.usage()) == 1

    assert len(fake_anthropic.message_requests) == 1
    assert len(fake_slack.thread(CHANNEL, first.ts)) == 1
    assert len(fake_slack.calls_to("chat.postMessage")) == 1


async def test_retry_of_an_event_never_seen_is_answered(
    settings: Settings, fake_slack: FakeSlack, fake_anthropic: FakeAnthropic
) -> None:
    # The first delivery never reached us (e.g. the bot was restarting): the retry is the
    # only chance to answer, and it is not a second reply.
    async with start_bot(settings) as bot:
        mention = await bot.mention("Are you there?", retry_num=1)
        await bot.wait_for_usage(1)

    assert fake_slack.thread_text(CHANNEL, mention.ts) == ["Hello from the fake Claude."]


async def test_empty_mention_gets_a_prompt_without_a_model_call(
    settings: Settings, fake_slack: FakeSlack, fake_anthropic: FakeAnthropic
) -> None:
    async with start_bot(settings) as bot:
        mention = await bot.mention("")
        await fake_slack.wait_for(lambda: bool(fake_slack.thread(CHANNEL, mention.ts)))
        await settle()

    [reply] = fake_slack.thread_text(CHANNEL, mention.ts)
    assert "Mention me with a question" in reply
    assert fake_anthropic.message_requests == []


async def test_other_peoples_mentions_are_kept_in_the_question(
    settings: Settings, fake_anthropic: FakeAnthropic
) -> None:
    async with start_bot(settings) as bot:
        await bot.mention("what does <@U0ALICE> mean by   this?")
        await bot.wait_for_usage(1)

    [message] = fake_anthropic.message_requests[0].body["messages"]
    assert message["content"] == "<@U0USER>: what does <@U0ALICE> mean by this?"
