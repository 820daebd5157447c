"""More questions than may fly at once: they wait their turn in a fair queue, their
placeholders say their place, and every one is answered; a wait has a bound."""

from __future__ import annotations

import asyncio
import re

import pytest
from sqlalchemy import select

from bot.slack.views import STOP_ACTION_ID
from bot.store import make_engine
from bot.store.files_table import Capacity
from tests.fakes.anthropic import FakeAnthropic, Reply
from tests.fakes.slack import FakeSlack
from tests.rig import CHANNEL, eventually, make_settings, settle, start_bot

SLOWISH = [Reply(chunks=[f"answer{i} " for i in range(5)], delay=0.1) for _ in range(6)]


def shown_ever(fake_slack: FakeSlack, text: str) -> bool:
    writes = fake_slack.calls_to("chat.postMessage") + fake_slack.calls_to("chat.update")
    return any(text in str(call.params.get("text", "")) for call in writes)


async def test_questions_beyond_the_capacity_wait_and_all_are_answered(
    fake_slack: FakeSlack, fake_anthropic: FakeAnthropic, database_url: str
) -> None:
    settings = make_settings(fake_slack, fake_anthropic, database_url, max_concurrent_requests=2)
    fake_anthropic.enqueue(*SLOWISH)
    async with start_bot(settings) as bot:
        mentions = await asyncio.gather(
            *(bot.mention(f"question {i}", user=f"U0P{i}") for i in range(6))
        )
        rows = await bot.wait_for_usage(6, timeout=30)
        metrics = await bot.metrics()

    assert len(rows) == 6
    assert not fake_slack.ephemerals  # nobody was turned away
    assert 'queue_waits_total{end="ready"}' in metrics
    [count] = re.findall(r"^queue_wait_seconds_count (\S+)$", metrics, re.M)
    assert float(count) == 6
    for mention in mentions:
        [reply] = fake_slack.thread(CHANNEL, mention.ts)
        assert reply.shown.startswith("answer0 answer1")
        assert reply.buttons == []
    # The waiting placeholders said how many were ahead.
    assert shown_ever(fake_slack, "ahead of yours") or shown_ever(fake_slack, "yours is next")
    assert fake_anthropic.max_in_flight <= 2


async def test_a_question_that_waits_too_long_is_told_so_and_costs_nothing(
    fake_slack: FakeSlack, fake_anthropic: FakeAnthropic, database_url: str
) -> None:
    settings = make_settings(
        fake_slack,
        fake_anthropic,
        database_url,
        max_concurrent_requests=1,
        queue_wait_seconds=0.5,
    )
    fake_anthropic.enqueue(Reply(chunks=["slow "] * 30, delay=0.1))
    async with start_bot(settings) as bot:
        first = await bot.mention("first", user="U0ALICE")
        await eventually(lambda: len(fake_anthropic.message_requests) == 1)
        second = await bot.mention("second", user="U0BOB")
        await fake_slack.wait_for(
            lambda: any("waited" in m.shown for m in fake_slack.thread(CHANNEL, second.ts)),
            timeout=5,
        )
        rows = await bot.wait_for_usage(1)
        await settle()

    assert len(fake_anthropic.message_requests) == 1
    assert len(rows) == 1 and rows[0].user_id == "U0ALICE"
    [note] = fake_slack.thread(CHANNEL, second.ts)
    assert note.shown == (
        "⚠️ Too many questions at once: yours waited 0.5 s without its turn coming, so I did "
        "not start on it. Please ask again in a little while."
    )
    assert note.buttons == []
    [answer] = fake_slack.thread(CHANNEL, first.ts)
    assert answer.shown.startswith("slow slow")


async def test_a_stop_while_waiting_ends_the_wait_and_calls_no_model(
    fake_slack: FakeSlack, fake_anthropic: FakeAnthropic, database_url: str
) -> None:
    settings = make_settings(fake_slack, fake_anthropic, database_url, max_concurrent_requests=1)
    fake_anthropic.enqueue(Reply(chunks=["slow "] * 20, delay=0.1), Reply(text="Later."))
    async with start_bot(settings) as bot:
        await bot.mention("first", user="U0ALICE")
        await eventually(lambda: len(fake_anthropic.message_requests) == 1)
        second = await bot.mention("second", user="U0BOB")
        await fake_slack.wait_for(lambda: len(fake_slack.thread(CHANNEL, second.ts)) == 1)
        [waiting] = fake_slack.thread(CHANNEL, second.ts)
        assert "yours is next" in waiting.shown
        [button] = waiting.buttons
        await bot.click(
            STOP_ACTION_ID,
            button["value"],
            user="U0BOB",
            message_ts=waiting.ts,
            thread_ts=second.ts,
        )
        await fake_slack.wait_for(
            lambda: "before it started" in fake_slack.thread(CHANNEL, second.ts)[0].shown
        )
        await bot.wait_for_usage(1)
        await settle()

    assert len(fake_anthropic.message_requests) == 1
    [stopped] = fake_slack.thread(CHANNEL, second.ts)
    assert stopped.shown == "⏹️ Stopped by <@U0BOB> before it started."
    assert stopped.buttons == []


@pytest.mark.both_databases
async def test_two_replicas_share_one_queue(
    fake_slack: FakeSlack, fake_anthropic: FakeAnthropic, database_url: str
) -> None:
    settings = make_settings(fake_slack, fake_anthropic, database_url, max_concurrent_requests=2)
    fake_anthropic.enqueue(*SLOWISH)
    async with start_bot(settings) as one, start_bot(settings) as two:
        replicas = [one, two]
        await asyncio.gather(
            *(replicas[i % 2].mention(f"question {i}", user=f"U0P{i}") for i in range(6))
        )
        rows = await one.wait_for_usage(6, timeout=30)

    assert len(rows) == 6
    assert fake_anthropic.max_in_flight <= 2  # together, no more than one would send


async def allowed_in_flight(database_url: str) -> float:
    engine = make_engine(database_url)
    try:
        async with engine.connect() as conn:
            value = await conn.scalar(select(Capacity.allowed).where(Capacity.name == "claude"))
    finally:
        await engine.dispose()
    assert value is not None
    return float(value)


async def test_a_rate_limit_429_halves_how_many_fly_at_once(
    fake_slack: FakeSlack, fake_anthropic: FakeAnthropic, database_url: str
) -> None:
    settings = make_settings(fake_slack, fake_anthropic, database_url, max_concurrent_requests=8)
    fake_anthropic.enqueue(
        Reply(status=429, headers={"retry-after": "1"}),  # the SDK waits 1 s, then retries
        Reply(text="Answered after the retry."),
    )
    async with start_bot(settings) as bot:
        mention = await bot.mention("hello")
        [row] = await bot.wait_for_usage(1)
        await settle(0.7)  # a tick of the queue shares what was learnt

    assert row.outcome == "complete"
    assert fake_slack.thread_text(CHANNEL, mention.ts) == ["Answered after the retry."]
    assert await allowed_in_flight(database_url) == 4.0  # 8 to start with, halved


async def test_room_in_anthropics_limits_lets_more_fly_while_questions_wait(
    fake_slack: FakeSlack, fake_anthropic: FakeAnthropic, database_url: str
) -> None:
    # No organisation limit: every answer's headers show nearly all of it left.
    settings = make_settings(fake_slack, fake_anthropic, database_url, max_concurrent_requests=20)
    fake_anthropic.enqueue(*(Reply(chunks=["long "] * 20, delay=0.1) for _ in range(16)))
    async with start_bot(settings) as bot:
        await asyncio.gather(
            *(bot.mention(f"q{i}", user=f"U0P{i}", channel=f"C0Q{i}") for i in range(16))
        )
        rows = await bot.wait_for_usage(16, timeout=30)

    assert len(rows) == 16
    # It started at 8 at once and learnt there was room for more while the rest waited.
    assert fake_anthropic.max_in_flight > 8
    assert await allowed_in_flight(database_url) > 8
