"""The shared Slack write scheduler under load: 30 concurrent 4-second replies in 30 channels.

The fake Slack enforces chat.update at 50 a minute for the workspace (burst 10) and
chat.postMessage at 1 a second per channel, answering 429 beyond. Goal: no lost text, no 429
received, every reply complete within 27 s of the model finishing (the floor is about 24 s:
30 final edits at 50 a minute after a burst of 10).

    PYTHONPATH=. .venv/bin/python bench/slack_scheduler.py
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from tests.fakes.anthropic import FakeAnthropic, RecordedRequest, Reply
from tests.fakes.slack import FakeSlack
from tests.rig import make_settings, start_bot

REPLIES = 30
CHUNKS = 40
STREAM_SECONDS = 4.0


def answer(i: int) -> str:
    return "".join(f"reply{i}-word{j} " for j in range(CHUNKS)).strip()


async def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite+aiosqlite:///{Path(folder) / 'bench.db'}"
        async with FakeSlack() as slack, FakeAnthropic() as claude:
            slack.buckets = {"chat.update": (10, 50 / 60)}
            slack.post_per_channel_per_second = 1.0
            slack.post_burst = 1.0
            settings = make_settings(
                slack,
                claude,
                url,
                stream_edit_interval=1.0,
                slack_post_burst=1,
                max_concurrent_requests=REPLIES,
            )
            for i in range(REPLIES):
                text = answer(i)
                chunks = [word + " " for word in text.split(" ")]
                chunks[-1] = chunks[-1].strip()
                claude.enqueue(Reply(chunks=chunks, delay=STREAM_SECONDS / CHUNKS))
            async with start_bot(settings) as bot:
                await slack.wait_for(lambda: bool(slack.calls_to("auth.test")))
                started = time.monotonic()
                mentions = await asyncio.gather(
                    *(bot.mention(f"question {i}", channel=f"C{i:04d}") for i in range(REPLIES))
                )
                await bot.wait_for_usage(REPLIES, timeout=120)
                # The ledger is written when the model finishes; Slack's final edits follow
                # as its budget allows. Measure them, rather than cut them off at shutdown.
                await slack.wait_for(lambda: all_final(slack, mentions), timeout=120)
                elapsed = time.monotonic() - started
            report(slack, claude, mentions, elapsed)


def all_final(slack: FakeSlack, mentions: list) -> bool:  # type: ignore[type-arg]
    for mention in mentions:
        shown = [m.shown for m in slack.thread(mention.channel, mention.ts)]
        if len(shown) != 1 or not shown[0].startswith("reply") or "writing" in shown[0]:
            return False
    return True


def report(slack: FakeSlack, claude: FakeAnthropic, mentions: list, elapsed: float) -> None:  # type: ignore[type-arg]
    # The fake serves its scripted replies in the order requests arrive.
    requests: list[RecordedRequest] = claude.message_requests
    lost = 0
    completion: list[float] = []
    lags: list[float] = []
    for mention in mentions:
        [message] = slack.thread(mention.channel, mention.ts)
        served = int(message.shown.split("-", 1)[0].removeprefix("reply") or -1)
        if not 0 <= served < REPLIES or message.shown != answer(served):
            lost += 1
            continue
        sent = requests[served].sent
        model_done = sent[-1][0]
        updates = [
            (c.at, len(c.params.get("text", "")))
            for c in slack.calls_to("chat.update")
            if c.params.get("ts") == message.ts and c.error is None
        ]
        final_at = max(at for at, _ in updates)
        completion.append(final_at - model_done)
        # How long each piece of the model's text waited before Slack showed it.
        for emitted, length in sent:
            shown = [at for at, visible in updates if at >= emitted and visible >= length * 0.9]
            lags.append((min(shown) if shown else final_at) - emitted)
    writes = [c for c in slack.calls if c.method in ("chat.update", "chat.postMessage")]
    completion.sort()
    p99 = completion[min(len(completion) - 1, round(0.99 * len(completion)) - 1)]
    print(f"{REPLIES} concurrent {STREAM_SECONDS:.0f}-second replies in {REPLIES} channels")
    print("fake Slack: chat.update 50/min (burst 10), chat.postMessage 1/s per channel")
    print(f"  replies with text lost or wrong: {lost}")
    limited = [c.method for c in slack.calls if c.status == 429]
    print(f"  429s received: {slack.ratelimited_count} {limited or ''}")
    print(f"  Slack writes: {len(writes)} ({len(slack.calls_to('chat.update'))} updates)")
    print(
        f"  completion after the model finished: p50 {statistics.median(completion):.1f} s, "
        f"p99 {p99:.1f} s, max {completion[-1]:.1f} s"
    )
    print(f"  longest time visible text lagged the model: {max(lags):.1f} s")
    print(f"  wall time for all replies: {elapsed:.1f} s")


if __name__ == "__main__":
    asyncio.run(main())
