"""/ask: the channel sees the question and the streamed answer; refusals and help are private."""

from __future__ import annotations

from bot.config import Settings
from bot.slack.listeners import ASK_HELP, CANNOT_POST
from tests.fakes.anthropic import FakeAnthropic, Reply
from tests.fakes.slack import FakeSlack
from tests.rig import CHANNEL, conversation, eventually, make_settings, settle, start_bot


def top_level(fake_slack: FakeSlack, channel: str) -> list[str]:
    return [m.ts for m in fake_slack.messages[channel].values() if m.thread_ts is None]


async def test_ask_posts_the_question_and_streams_the_answer_in_its_thread(
    settings: Settings, fake_slack: FakeSlack, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.enqueue(Reply(chunks=["Forty", "-two", "."], delay=0.05))
    async with start_bot(settings) as bot:
        delivery = await bot.command("/ask", "What is the answer?")
        [row] = await bot.wait_for_usage(1)

    # Acknowledged at once with an empty body: nothing private to show.
    assert delivery.status == 200
    assert delivery.body == ""
    assert delivery.elapsed_ms < 1000
    [asked_ts] = top_level(fake_slack, CHANNEL)
    asked = fake_slack.messages[CHANNEL][asked_ts]
    assert asked.shown == "<@U0USER> asked: What is the answer?"
    [reply] = fake_slack.thread(CHANNEL, asked_ts)
    assert reply.shown == "Forty-two."
    assert reply.buttons == []
    assert row.thread_ts == asked_ts
    assert row.outcome == "complete"
    [request] = fake_anthropic.message_requests
    assert request.body["messages"] == [
        {"role": "user", "content": "<@U0USER>: What is the answer?"}
    ]


async def test_ask_in_a_public_channel_the_bot_has_not_joined(
    settings: Settings, fake_slack: FakeSlack
) -> None:
    # chat:write.public lets the bot post in any public channel without joining it.
    async with start_bot(settings) as bot:
        await bot.command("/ask", "hello?", channel_id="C0PUBLIC")
        await bot.wait_for_usage(1)

    [asked_ts] = top_level(fake_slack, "C0PUBLIC")
    assert fake_slack.thread_text("C0PUBLIC", asked_ts) == ["Hello from the fake Claude."]


async def test_ask_where_slack_refuses_tells_the_user_how_to_fix_it(
    settings: Settings, fake_slack: FakeSlack, fake_anthropic: FakeAnthropic
) -> None:
    fake_slack.channels_not_in.add("G0PRIVATE")  # a private channel the bot is not in
    fake_slack.unknown_channels.add("D0OTHERS")  # a DM between two other people
    async with start_bot(settings) as bot:
        for key, channel in (("private", "G0PRIVATE"), ("dm", "D0OTHERS")):
            delivery = await bot.command(
                "/ask", "hi", channel_id=channel, response_url=fake_slack.response_url(key)
            )
            assert delivery.status == 200
        await fake_slack.wait_for(lambda: len(fake_slack.responses) == 2)
        await settle()
        assert await bot.usage() == []

    assert fake_anthropic.requests == []
    for _key, body in fake_slack.responses:
        assert body["text"] == CANNOT_POST
        assert body["response_type"] == "ephemeral"
    assert "/invite @Claude" in CANNOT_POST


async def test_empty_ask_and_ask_help_show_usage_privately(
    settings: Settings, fake_slack: FakeSlack, fake_anthropic: FakeAnthropic
) -> None:
    async with start_bot(settings) as bot:
        empty = await bot.command("/ask", "")
        helped = await bot.command("/ask", "  help ")
        await settle()

    assert empty.body == helped.body == ASK_HELP
    assert fake_anthropic.requests == []
    assert fake_slack.calls_to("chat.postMessage") == []


async def test_ask_carries_the_channel_memory(
    settings: Settings, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.enqueue(Reply(text="It's Tuesday."), Reply(text="You asked what day it is."))
    async with start_bot(settings) as bot:
        await bot.mention("What day is it?")
        await bot.wait_for_usage(1)
        await bot.command("/ask", "What did I ask you earlier?")
        await bot.wait_for_usage(2)

    assert [m["content"] for m in conversation(fake_anthropic.message_requests[1].body)] == [
        "<@U0USER>: What day is it?",
        "It's Tuesday.",
        "<@U0USER>: What did I ask you earlier?",
    ]


async def test_ask_echo_keeps_mentions_and_channel_links(
    settings: Settings, fake_slack: FakeSlack
) -> None:
    question = "Should <@U0OTHER|bob> post in <#C0CHAN|general> or <#G0PRIV>? <!here> <b>"
    async with start_bot(settings) as bot:
        await bot.command("/ask", question)
        await bot.wait_for_usage(1)

    [asked_ts] = top_level(fake_slack, CHANNEL)
    echo = fake_slack.messages[CHANNEL][asked_ts].shown
    assert "<@U0OTHER|bob>" in echo
    assert "<#C0CHAN|general>" in echo
    assert echo == (
        "<@U0USER> asked: Should <@U0OTHER|bob> post in <#C0CHAN|general> or <#G0PRIV>? "
        "&lt;!here&gt; &lt;b&gt;"
    )


async def test_a_refused_ask_posts_nothing_in_the_channel(
    fake_slack: FakeSlack, fake_anthropic: FakeAnthropic, database_url: str
) -> None:
    settings = make_settings(
        fake_slack, fake_anthropic, database_url, budget_user_daily_usd="0.000001"
    )
    async with start_bot(settings) as bot:
        delivery = await bot.command("/ask", "What is the answer?")
        await eventually(lambda: bool(fake_slack.calls_to("chat.postEphemeral")), what="the note")
        await settle()

    assert delivery.status == 200
    assert fake_slack.calls_to("chat.postMessage") == []
    [note] = fake_slack.calls_to("chat.postEphemeral")
    assert "budget" in str(note.params.get("text"))
    assert fake_anthropic.message_requests == []
