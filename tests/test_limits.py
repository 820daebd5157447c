"""Rate limits: per person per minute, and in flight overall with a fair share per person."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from bot.engine.limits import Limited, RateLimiter, Slot
from bot.store import make_engine, make_sessionmaker
from bot.store.migrate import upgrade
from bot.store.rate_limits import RateStore
from tests.fakes.anthropic import FakeAnthropic, Reply
from tests.fakes.slack import FakeSlack
from tests.rig import make_settings, settle, start_bot


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 1, 12, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[RateStore]:
    await asyncio.to_thread(upgrade, database_url)
    engine = make_engine(database_url)
    try:
        yield RateStore(make_sessionmaker(engine))
    finally:
        await engine.dispose()


@pytest.mark.both_databases
async def test_per_minute_limit_says_when_to_try_again(store: RateStore) -> None:
    clock = Clock()
    limiter = RateLimiter(store, per_minute=2, concurrent=10, per_user_concurrent=10, clock=clock)
    for _ in range(2):
        slot = await limiter.acquire("U1")
        assert isinstance(slot, Slot)
        await slot.release()
    clock.now += timedelta(seconds=15)
    refused = await limiter.acquire("U1")
    assert isinstance(refused, Limited)
    assert refused.reason == "per_minute"
    assert "try again in 45 s" in refused.message
    assert isinstance(await limiter.acquire("U2"), Slot)  # someone else is not affected
    clock.now += timedelta(seconds=46)
    assert isinstance(await limiter.acquire("U1"), Slot)  # the window moved on


@pytest.mark.both_databases
async def test_one_busy_person_cannot_take_every_slot(store: RateStore) -> None:
    limiter = RateLimiter(store, per_minute=100, concurrent=3, per_user_concurrent=2, clock=Clock())
    busy = [await limiter.acquire("U_BUSY") for _ in range(3)]
    assert [isinstance(s, Slot) for s in busy] == [True, True, False]
    assert isinstance(busy[2], Limited)
    assert busy[2].reason == "user_busy"
    assert isinstance(await limiter.acquire("U_OTHER"), Slot)  # the third slot is still free
    full = await limiter.acquire("U_THIRD")
    assert isinstance(full, Limited)
    assert full.reason == "busy"
    first = busy[0]
    assert isinstance(first, Slot)
    await first.release()
    await first.release()  # releasing twice gives back one slot only
    assert isinstance(await limiter.acquire("U_THIRD"), Slot)
    assert isinstance(await limiter.acquire("U_FOURTH"), Limited)


@pytest.mark.both_databases
async def test_replicas_share_the_limits_and_cannot_pass_them_together(
    store: RateStore,
) -> None:
    # Two processes' limiters on one database: together they allow what one would.
    one, two = (
        RateLimiter(store, per_minute=100, concurrent=1, per_user_concurrent=1, clock=Clock())
        for _ in range(2)
    )
    for _ in range(10):
        got = await asyncio.gather(one.acquire("U1"), two.acquire("U2"))
        slots = [s for s in got if isinstance(s, Slot)]
        assert len(slots) == 1, got
        await slots[0].release()


async def test_over_the_limit_in_slack_gets_a_clear_note_and_no_model_call(
    fake_slack: FakeSlack, fake_anthropic: FakeAnthropic, database_url: str
) -> None:
    settings = make_settings(
        fake_slack,
        fake_anthropic,
        database_url,
        user_requests_per_minute=1,
        user_max_concurrent_requests=1,
        max_concurrent_requests=2,
    )
    fake_anthropic.enqueue(
        Reply(chunks=["slow "] * 10, delay=0.1), Reply(chunks=["slow "] * 10, delay=0.1)
    )
    async with start_bot(settings) as bot:
        await bot.mention("first", user="U0ALICE")
        await bot.mention("second", user="U0ALICE")
        await bot.mention("meanwhile", user="U0BOB")  # Bob is not held up by Alice
        await bot.wait_for_usage(2)
        await settle()
        metrics = await (await bot.http.get(f"{bot.url}/metrics")).text()

    [note] = fake_slack.ephemerals
    assert note.params["user"] == "U0ALICE"
    assert "questions in the last minute" in note.params["text"]
    assert len(fake_anthropic.message_requests) == 2
    assert 'rate_limit_refusals_total{reason="per_minute"} 1.0' in metrics
