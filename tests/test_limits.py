"""Rate limits: per person per minute, and in flight overall with a fair share per person."""

from __future__ import annotations

from bot.engine.limits import Limited, RateLimiter, Slot
from tests.fakes.anthropic import FakeAnthropic, Reply
from tests.fakes.slack import FakeSlack
from tests.rig import make_settings, settle, start_bot


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_per_minute_limit_says_when_to_try_again() -> None:
    clock = Clock()
    limiter = RateLimiter(per_minute=2, concurrent=10, per_user_concurrent=10, clock=clock)
    for _ in range(2):
        slot = limiter.acquire("U1")
        assert isinstance(slot, Slot)
        slot.release()
    clock.now += 15
    refused = limiter.acquire("U1")
    assert isinstance(refused, Limited)
    assert refused.reason == "per_minute"
    assert "try again in 45 s" in refused.message
    assert isinstance(limiter.acquire("U2"), Slot)  # someone else is not affected
    clock.now += 46
    assert isinstance(limiter.acquire("U1"), Slot)  # the window moved on


def test_one_busy_person_cannot_take_every_slot() -> None:
    limiter = RateLimiter(per_minute=100, concurrent=3, per_user_concurrent=2)
    busy = [limiter.acquire("U_BUSY") for _ in range(3)]
    assert [isinstance(s, Slot) for s in busy] == [True, True, False]
    assert isinstance(busy[2], Limited)
    assert busy[2].reason == "user_busy"
    assert isinstance(limiter.acquire("U_OTHER"), Slot)  # the third slot is still free
    full = limiter.acquire("U_THIRD")
    assert isinstance(full, Limited)
    assert full.reason == "busy"
    first = busy[0]
    assert isinstance(first, Slot)
    first.release()
    first.release()  # releasing twice gives back one slot only
    assert limiter.in_flight == 2


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
