"""What one streamed reply costs in Slack calls, and how fast Slack's events are acknowledged.

Runs the real app against the fake Slack and fake Anthropic servers on loopback:
one mention answered by a 20-delta stream spread over 2 seconds, at the default edit interval;
one 60,000-character answer; then a run of mentions to time the acknowledgement Slack waits
for (its limit is 3 s).

    make bench        # or: PYTHONPATH=. .venv/bin/python bench/reply_cost.py
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
from collections import Counter
from pathlib import Path

from tests.fakes.anthropic import FakeAnthropic, Reply
from tests.fakes.slack import FakeSlack
from tests.rig import BotUnderTest, make_settings, start_bot

DELTAS = 20
STREAM_SECONDS = 2.0
ACK_SAMPLES = 50
LONG_ANSWER = 60_000
LONG_STREAM_SECONDS = 15.0


async def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite+aiosqlite:///{Path(folder) / 'bench.db'}"
        async with FakeSlack() as slack, FakeAnthropic() as claude:
            settings = make_settings(slack, claude, url, stream_edit_interval=1.0)
            async with start_bot(settings) as bot:
                await slack.wait_for(lambda: bool(slack.calls_to("auth.test")))
                await reply_cost(bot, slack, claude)
                await long_reply_cost(bot, slack, claude)
                await ack_times(bot, claude)


async def reply_cost(bot: BotUnderTest, slack: FakeSlack, claude: FakeAnthropic) -> None:
    chunks = [f"word{i} " for i in range(DELTAS)]
    claude.enqueue(Reply(chunks=chunks, delay=STREAM_SECONDS / DELTAS))
    before = len(slack.calls)
    await bot.mention("bench")
    await bot.wait_for_usage(1)
    calls = Counter(c.method for c in slack.calls[before:] if c.method != "auth.test")
    total = sum(calls.values())
    print(f"one reply, {DELTAS} deltas over {STREAM_SECONDS:.0f} s, edit interval 1.0 s:")
    for method, count in sorted(calls.items()):
        print(f"  {method:<20} {count}")
    print(f"  {'total Slack writes':<20} {total}")


async def long_reply_cost(bot: BotUnderTest, slack: FakeSlack, claude: FakeAnthropic) -> None:
    paragraph = "A sentence of a long answer, repeated to fill the paragraph. " * 8
    answer = "\n\n".join(f"{i}. {paragraph.strip()}" for i in range(200))[:LONG_ANSWER]
    chunks = [answer[i : i + 40] for i in range(0, len(answer), 40)]  # ~1,500 deltas
    claude.enqueue(Reply(chunks=chunks, delay=LONG_STREAM_SECONDS / len(chunks)))
    before = len(slack.calls)
    mention = await bot.mention("bench long")
    await bot.wait_for_usage(2, timeout=60)
    calls = Counter(c.method for c in slack.calls[before:] if c.method != "auth.test")
    messages = slack.thread(mention.channel, mention.ts)
    whole = "\n\n".join(m.shown for m in messages) == answer
    print(f"one {len(answer):,}-character reply streamed over {LONG_STREAM_SECONDS:.0f} s:")
    print(f"  messages in the thread {len(messages)}   text arrived whole: {whole}")
    for method, count in sorted(calls.items()):
        print(f"  {method:<20} {count}")
    print(f"  {'total Slack writes':<20} {sum(calls.values())}")


async def ack_times(bot: BotUnderTest, claude: FakeAnthropic) -> None:
    claude.enqueue(*[Reply(text="ok", delay=0.01) for _ in range(ACK_SAMPLES)])
    times: list[float] = []
    for _ in range(ACK_SAMPLES):
        mention = await bot.mention("ack?")
        assert mention.delivery.status == 200
        times.append(mention.delivery.elapsed_ms)
    await bot.wait_for_usage(2 + ACK_SAMPLES, timeout=60)
    times.sort()
    p99 = times[min(len(times) - 1, round(0.99 * len(times)) - 1)]
    print(f"event acknowledgement over {ACK_SAMPLES} mentions (HTTP round trip on loopback):")
    print(f"  p50 {statistics.median(times):.1f} ms   p99 {p99:.1f} ms   max {times[-1]:.1f} ms")


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
