"""A mention streams Claude's reply into its thread, and everything lands in the store."""

from __future__ import annotations

import itertools

from bot.config import Settings
from bot.slack.text import WORKING_TEXT, WRITING_SUFFIX
from tests.fakes.anthropic import FakeAnthropic, Reply
from tests.fakes.slack import FakeSlack
from tests.rig import CHANNEL, USER, settle, start_bot


async def test_mention_streams_reply_into_thread(
    settings: Settings, fake_slack: FakeSlack, fake_anthropic: FakeAnthropic
) -> None:
    chunks = [f"word{i} " for i in range(20)]
    fake_anthropic.enqueue(Reply(chunks=chunks, delay=0.05, input_tokens=42, output_tokens=20))
    async with start_bot(settings) as bot:
        mention = await bot.mention("what is the answer?")
        assert mention.delivery.status == 200
        [row] = await bot.wait_for_usage(1)

    [reply] = fake_slack.thread(CHANNEL, mention.ts)
    answer = "".join(chunks)
    assert reply.text == answer.rstrip() or reply.text == answer
    assert reply.versions[0] == WORKING_TEXT
    interim = reply.versions[1:-1]
    assert len(interim) >= 2, reply.versions  # 1 s of stream at a 0.2 s interval: several edits
    assert all(v.endswith(WRITING_SUFFIX) for v in interim)
    # The edits only ever grow: the latest text wins, nothing is shown out of order.
    shown = [v.removesuffix(WRITING_SUFFIX) for v in interim]
    assert all(answer.startswith(text) for text in shown)
    assert shown == sorted(shown, key=len)
    # The question reached Claude without the bot's mention.
    [request] = fake_anthropic.message_requests
    assert request.body["messages"] == [
        {"role": "user", "content": "<@U0USER>: what is the answer?"}
    ]
    assert request.body["model"] == settings.claude_model
    assert request.body["stream"] is True
    # The ledger row holds the fake's token counts.
    assert (row.input_tokens, row.output_tokens) == (42, 20)
    assert row.outcome == "complete"
    assert row.stop_reason == "end_turn"
    assert row.channel_id == CHANNEL
    assert row.user_id == USER
    assert row.thread_ts == mention.ts
    assert row.requested_model == row.resolved_model == settings.claude_model
    assert row.request_id and row.request_id.startswith("req_")
    assert row.ttft_ms is not None and row.latency_ms >= row.ttft_ms


async def test_ack_is_immediate(settings: Settings, fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.enqueue(Reply(first_byte_delay=1.0))
    async with start_bot(settings) as bot:
        mention = await bot.mention("slow one")
        # Slack wants its 200 within 3 s; the answer streams in the background.
        assert mention.delivery.status == 200
        assert mention.delivery.elapsed_ms < 1000
        await bot.wait_for_usage(1)


async def test_edits_are_throttled_and_never_overlap(
    settings: Settings, fake_slack: FakeSlack, fake_anthropic: FakeAnthropic
) -> None:
    # 40 deltas over 2 s at a 0.2 s interval; the first edit is held up 0.5 s by Slack.
    fake_anthropic.enqueue(Reply(chunks=[f"w{i} " for i in range(40)], delay=0.05))
    fake_slack.hang_next("chat.update", 0.5)
    async with start_bot(settings) as bot:
        mention = await bot.mention("go")
        await bot.wait_for_usage(1)

    updates = fake_slack.calls_to("chat.update")
    gaps = [b.at - a.at for a, b in itertools.pairwise(updates)]
    # Never more than one write in flight: nothing was sent while the first hung.
    assert gaps[0] >= 0.5
    # About one edit per interval (not one per delta), and never faster than the interval
    # (the final write alone may follow the last interim edit at once).
    assert len(updates) <= 2.5 / settings.stream_edit_interval
    assert all(gap >= settings.stream_edit_interval * 0.9 for gap in gaps[:-1])
    [reply] = fake_slack.thread(CHANNEL, mention.ts)
    assert reply.shown == "".join(f"w{i} " for i in range(40)).strip()


async def test_slack_rate_limit_is_waited_out_and_nothing_is_lost(
    settings: Settings, fake_slack: FakeSlack, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.enqueue(Reply(text="Patience is a virtue."))
    fake_slack.fail_next("chat.update", "ratelimited", retry_after=1)
    async with start_bot(settings) as bot:
        mention = await bot.mention("wait")
        await bot.wait_for_usage(1)

    assert fake_slack.ratelimited_count == 1
    assert fake_slack.thread_text(CHANNEL, mention.ts) == ["Patience is a virtue."]


async def test_redelivery_while_the_first_reply_streams_gets_no_second_reply(
    settings: Settings, fake_slack: FakeSlack, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.enqueue(Reply(chunks=["slow "] * 20, delay=0.05))
    async with start_bot(settings) as bot:
        first = await bot.mention("hello")
        await fake_anthropic.wait_for_requests(1)
        again = await bot.mention("hello", event_id=first.event_id, ts=first.ts, retry_num=1)
        assert again.delivery.status == 200
        await bot.wait_for_usage(1)
        await settle()
        assert len(await bot.usage()) == 1

    assert len(fake_anthropic.message_requests) == 1
    assert len(fake_slack.thread(CHANNEL, first.ts)) == 1
