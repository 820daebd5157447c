"""Rate limits: per person per minute, and in flight overall with a fair share per person."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from bot.engine.capacity import CapacityLearner
from bot.engine.limits import Limited, RateLimiter, Slot
from bot.engine.queue import FairQueue
from bot.store import Processes, make_engine, make_sessionmaker
from bot.store.migrate import upgrade
from bot.store.models import utcnow
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


def make_limiter(
    store: RateStore,
    clock: Clock,
    *,
    per_minute: int = 100,
    concurrent: int = 10,
    per_user_concurrent: int = 10,
    owner: str = "p1",
    queue_wait: float = 5.0,
) -> RateLimiter:
    queue = FairQueue(
        store,
        CapacityLearner(clock),
        owner=owner,
        ceiling=concurrent,
        slot_seconds=900,
        clock=clock,
        every=0.05,
    )
    return RateLimiter(
        store,
        queue,
        owner=owner,
        per_minute=per_minute,
        concurrent=concurrent,
        per_user_concurrent=per_user_concurrent,
        queue_wait=queue_wait,
        clock=clock,
    )


@pytest.mark.both_databases
async def test_per_minute_limit_says_when_to_try_again(store: RateStore) -> None:
    clock = Clock()
    limiter = make_limiter(store, clock, per_minute=2)
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
async def test_beyond_the_capacity_questions_wait_and_one_person_cannot_take_every_slot(
    store: RateStore,
) -> None:
    limiter = make_limiter(store, Clock(), concurrent=3, per_user_concurrent=2)
    busy = [await limiter.acquire("U_BUSY") for _ in range(3)]
    assert isinstance(busy[2], Limited)
    assert busy[2].reason == "user_busy"
    assert "still working on 2 questions of yours" in busy[2].message
    other = await limiter.acquire("U_OTHER")
    assert isinstance(other, Slot) and other.ahead is None  # the third slot was still free
    third = await limiter.acquire("U_THIRD")
    fourth = await limiter.acquire("U_FOURTH")
    assert isinstance(third, Slot) and isinstance(fourth, Slot)
    assert (third.ahead, fourth.ahead) == (0, 1)  # they wait, in order
    first = busy[0]
    assert isinstance(first, Slot)
    await first.release()
    await first.release()  # releasing twice gives back one slot only
    assert await third.wait()  # its turn came with the slot given back
    assert not await _waits_less_than(fourth, 0.5)  # one slot freed: one started
    await other.release()
    assert await fourth.wait()


async def _waits_less_than(slot: Slot, seconds: float) -> bool:
    try:
        async with asyncio.timeout(seconds):
            return await slot.wait()
    except TimeoutError:
        return False


@pytest.mark.both_databases
async def test_the_queue_is_round_robin_across_people(store: RateStore) -> None:
    clock = Clock()
    limiter = make_limiter(store, clock, concurrent=1, per_user_concurrent=3)
    running = await limiter.acquire("U_ALICE")
    assert isinstance(running, Slot) and running.ahead is None
    # Alice asks twice more, then Bob and Carol once each: Bob and Carol go before
    # Alice's third question, though she asked first.
    waiting = {}
    for name in ("alice2", "alice3", "bob", "carol"):
        clock.now += timedelta(seconds=1)
        slot = await limiter.acquire("U_" + name.rstrip("23").upper())
        assert isinstance(slot, Slot)
        waiting[name] = slot
    # Each place as it was when the question was asked (the line formed as they came).
    assert {n: s.ahead for n, s in waiting.items()} == {
        "alice2": 0,
        "alice3": 1,
        "bob": 0,
        "carol": 1,
    }
    order = []
    current = running
    for _ in range(4):
        await current.release()
        started = await _first_to_start(waiting)
        order.append(started)
        current = waiting.pop(started)
    assert order == ["bob", "carol", "alice2", "alice3"]


async def _first_to_start(waiting: dict[str, Slot]) -> str:
    tasks = {asyncio.create_task(slot.wait()): name for name, slot in waiting.items()}
    done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED, timeout=5)
    for task in pending:
        task.cancel()
    [first] = [tasks[t] for t in done if t.result()]
    return first


@pytest.mark.both_databases
async def test_replicas_share_the_limits_and_cannot_pass_them_together(
    store: RateStore,
) -> None:
    # Two processes' limiters on one database: together they allow what one would.
    clock = Clock()
    one, two = (
        make_limiter(store, clock, concurrent=1, per_user_concurrent=1, owner=owner)
        for owner in ("p1", "p2")
    )
    for _ in range(5):
        got = await asyncio.gather(one.acquire("U1"), two.acquire("U2"))
        slots = [s for s in got if isinstance(s, Slot)]
        assert sorted(s.ahead is None for s in slots) == [False, True], got
        flying = next(s for s in slots if s.ahead is None)
        waiting = next(s for s in slots if s.ahead is not None)
        await flying.release()
        assert await waiting.wait()  # the other replica's question started
        await waiting.release()


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
        metrics = await bot.metrics()

    [note] = fake_slack.ephemerals
    assert note.params["user"] == "U0ALICE"
    assert "questions in the last minute" in note.params["text"]
    assert len(fake_anthropic.message_requests) == 2
    assert 'rate_limit_refusals_total{reason="per_minute"} 1.0' in metrics


@pytest.mark.both_databases
async def test_a_live_process_keeps_its_place_in_line_though_its_ticks_lapsed(
    database_url: str,
) -> None:
    # A busy SQLite can fail a process's queue ticks for a while; its heartbeat says it is
    # alive, so its waiting questions keep their places. A process whose heartbeat lapsed
    # too is taken for dead and its questions are dropped; if it ticks again, it lives, and
    # they are back where they were.
    await asyncio.to_thread(upgrade, database_url)
    engine = make_engine(database_url)
    try:
        sessions = make_sessionmaker(engine)
        store, processes = RateStore(sessions), Processes(sessions)
        clock = Clock()
        clock.now = utcnow() - timedelta(seconds=20)  # the questions came 20 s ago
        await processes.beat("alive", host="h", pid=1)
        alive = make_limiter(store, clock, concurrent=1, owner="alive")
        lapsed = make_limiter(store, clock, concurrent=1, owner="lapsed")
        running = await alive.acquire("U0RUNNING")
        mine, theirs = await alive.acquire("U0MINE"), await lapsed.acquire("U0THEIRS")
        assert isinstance(running, Slot) and running.ahead is None
        assert isinstance(mine, Slot) and isinstance(theirs, Slot)
        clock.now = utcnow()  # no tick since; only "alive" beats on
        await processes.beat("alive", host="h", pid=1)
        later = await alive.acquire("U0LATER")  # taking a slot drops abandoned waiters
        assert isinstance(later, Slot)
        own = {mine.id: mine.asked, later.id: later.asked}
        places = await store.tick("alive", own, ceiling=1, now=clock.now, seconds=900)
        back = await store.tick(
            "lapsed", {theirs.id: theirs.asked}, ceiling=1, now=clock.now, seconds=900
        )
        after = await store.tick("alive", own, ceiling=1, now=clock.now, seconds=900)
    finally:
        await engine.dispose()

    assert places == {mine.id: 0, later.id: 1}  # still first; the lapsed one was dropped
    assert back == {theirs.id: 1}  # back in its place: after Mine, before Later
    assert after == {mine.id: 0, later.id: 2}
