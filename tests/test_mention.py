"""A mention streams Claude's reply into its thread, and everything lands in the store."""

from __future__ import annotations

from bot.config import Settings
from bot.slack_text import WORKING_TEXT, WRITING_SUFFIX
from tests.fakes.anthropic import FakeAnthropic, Reply
from tests.fakes.slack import FakeSlack
from tests.rig import CHANNEL, USER, start_bot


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
