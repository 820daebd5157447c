"""Stop: the asker (or an admin) cancels the Claude request at once; the text so far stays."""

from __future__ import annotations

from bot.config import Settings
from bot.slack.text import STOP_REFUSED, WORKING_TEXT
from bot.slack.views import STOP_ACTION_ID
from tests.fakes.anthropic import FakeAnthropic, Reply
from tests.fakes.slack import FakeSlack, Message
from tests.rig import CHANNEL, BotUnderTest, Mention, eventually, settle, start_bot

SLOW = Reply(chunks=[f"part{i} " for i in range(100)], delay=0.05, input_tokens=77)


async def streaming_reply(bot: BotUnderTest, fake_slack: FakeSlack) -> tuple[Mention, Message]:
    mention = await bot.mention("tell me a long story")
    await fake_slack.wait_for(
        lambda: any("part3" in m.shown for m in fake_slack.thread(CHANNEL, mention.ts))
    )
    [reply] = fake_slack.thread(CHANNEL, mention.ts)
    return mention, reply


async def test_the_asker_stops_the_answer(
    settings: Settings, fake_slack: FakeSlack, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.enqueue(SLOW)
    async with start_bot(settings) as bot:
        mention, reply = await streaming_reply(bot, fake_slack)
        [button] = reply.buttons
        assert button["action_id"] == STOP_ACTION_ID
        clicked = await bot.click(
            STOP_ACTION_ID, button["value"], message_ts=reply.ts, thread_ts=mention.ts
        )
        assert clicked.status == 200
        [row] = await bot.wait_for_usage(1)
        # The fake sees the connection closed long before its 5 s answer would end.
        await eventually(lambda: fake_anthropic.disconnects == 1, what="disconnect")

    assert row.outcome == "partial"
    assert row.error_kind == "stopped"
    assert row.input_tokens == 77
    assert row.output_tokens >= 4  # at least the deltas that arrived
    assert row.latency_ms < 4000
    [reply] = fake_slack.thread(CHANNEL, mention.ts)
    assert reply.buttons == []
    assert reply.shown.startswith("part0 part1 part2 part3")
    assert "part99" not in reply.shown
    assert reply.shown.endswith("⏹️ Stopped by <@U0USER>.")


async def test_a_stranger_cannot_stop_it_but_an_admin_can(
    settings: Settings, fake_slack: FakeSlack, fake_anthropic: FakeAnthropic
) -> None:
    fake_slack.users["U0ADMIN"] = {"is_admin": True}
    fake_anthropic.enqueue(SLOW)
    async with start_bot(settings) as bot:
        mention, reply = await streaming_reply(bot, fake_slack)
        value = reply.buttons[0]["value"]
        await bot.click(STOP_ACTION_ID, value, user="U0STRANGER", thread_ts=mention.ts)
        await fake_slack.wait_for(lambda: bool(fake_slack.ephemerals))
        await settle(0.2)
        assert await bot.usage() == []  # still streaming
        await bot.click(STOP_ACTION_ID, value, user="U0ADMIN", thread_ts=mention.ts)
        [row] = await bot.wait_for_usage(1)

    [note] = fake_slack.ephemerals
    assert note.params["user"] == "U0STRANGER"
    assert note.params["text"].endswith(STOP_REFUSED)
    assert row.outcome == "partial"
    [reply] = fake_slack.thread(CHANNEL, mention.ts)
    assert reply.shown.endswith("Stopped by <@U0ADMIN>.")


async def test_no_indicator_or_button_remains_whatever_happened(
    settings: Settings, fake_slack: FakeSlack, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.enqueue(
        Reply(text=""),  # the model said nothing
        Reply(chunks=["a", "b"], fault="drop", fault_after=1),
        Reply(status=401),
    )
    async with start_bot(settings) as bot:
        mentions = []
        for i in range(3):
            mentions.append(await bot.mention(f"q{i}"))
            await bot.wait_for_usage(i + 1)

    replies = [fake_slack.thread(CHANNEL, m.ts)[0] for m in mentions]
    for reply in replies:
        assert reply.versions[0].startswith(WORKING_TEXT)
        assert reply.buttons == []
        assert WORKING_TEXT not in reply.shown
        assert ":writing_hand:" not in reply.shown
    assert replies[0].shown == "Claude returned an empty answer. Try rephrasing the question."
