"""Budgets as honest as the ledger: holds checked and taken atomically in the database,
unpriced requests counted at an estimate, the worst case with the long-prompt tier."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from bot.cost.budgets import BudgetDefaults, Budgets, Hold, Refusal
from bot.cost.prices import load_price_table
from bot.store import make_engine, make_sessionmaker
from bot.store.budget_store import BudgetStore
from bot.store.migrate import upgrade
from tests.fakes.anthropic import FakeAnthropic, Reply
from tests.fakes.slack import FakeSlack
from tests.rig import make_settings, start_bot
from tests.test_usage import usage

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[BudgetStore]:
    await asyncio.to_thread(upgrade, database_url)
    engine = make_engine(database_url)
    try:
        yield BudgetStore(make_sessionmaker(engine))
    finally:
        await engine.dispose()


async def check(budgets: Budgets, user: str) -> Refusal | Hold:
    # 1,000 tokens in and 1,000 out on Sonnet 5.5: at most (2,500 + 10,000) × 1.1 = 13,750 µ$
    # (every prompt token may be a cache write; the workspace may run in the dearer region).
    return await budgets.check(
        team_id="T1",
        channel_id="C1",
        user_id=user,
        model="claude-sonnet-5-5",
        input_tokens=1_000,
        max_tokens=1_000,
        now=NOW,
    )


@pytest.mark.both_databases
async def test_two_requests_at_once_cannot_both_pass_a_budget_that_fits_one(
    store: BudgetStore,
) -> None:
    # Before: the check read each budget across awaits and held afterwards; two concurrent
    # $0.012 requests under a $0.015 daily budget were both admitted in 59 of 60 trials.
    defaults = BudgetDefaults(workspace_daily=15_000, workspace_monthly=1_000_000)
    prices = load_price_table()
    for trial in range(10):
        # Two processes' worth of Budgets objects on one database: no shared memory.
        first, second = (Budgets(store, defaults, prices) for _ in range(2))
        results = await asyncio.gather(check(first, f"U{trial}a"), check(second, f"U{trial}b"))
        held = [r for r in results if isinstance(r, Hold)]
        refused = [r for r in results if isinstance(r, Refusal)]
        assert len(held) == 1 and len(refused) == 1, f"trial {trial}: {results}"
        assert refused[0].estimate_micros == 13_750
        assert refused[0].spent_micros == 13_750  # the other request's hold
        await held[0].release()
    # Released holds count no more: the next request fits again.
    assert isinstance(await check(Budgets(store, defaults, prices), "U0late"), Hold)


@pytest.mark.both_databases
async def test_a_hold_of_a_process_that_died_stops_counting(store: BudgetStore) -> None:
    defaults = BudgetDefaults(workspace_daily=15_000)
    prices = load_price_table()
    dead = await check(Budgets(store, defaults, prices, hold_seconds=0.2), "U0dead")
    assert isinstance(dead, Hold)  # never released: its process is gone
    assert isinstance(await check(Budgets(store, defaults, prices), "U0next"), Refusal)
    await asyncio.sleep(0.3)
    assert isinstance(await check(Budgets(store, defaults, prices), "U0after"), Hold)


async def test_requests_without_a_price_count_at_an_estimate_not_zero(
    fake_slack: FakeSlack, fake_anthropic: FakeAnthropic, database_url: str
) -> None:
    # Before: Fable 5.2 has no cache-write price and the system prompt is always cached, so
    # every request cost "unknown", counted $0, and 50 of them left a budget untouched.
    settings = make_settings(
        fake_slack,
        fake_anthropic,
        database_url,
        claude_model="claude-fable-5-2",
        budget_daily_usd="0.30",
        channel_memory_turns=0,
    )
    fake_slack.users["U0ADMIN"] = {"is_admin": True}
    for _ in range(10):
        fake_anthropic.enqueue(
            Reply(text="ok", input_tokens=10, cache_creation_5m=2_000, output_tokens=400)
        )
    async with start_bot(settings) as bot:
        for _ in range(10):
            before = len(fake_anthropic.message_requests)
            await bot.mention("--short hi")
            await fake_slack.wait_for(
                lambda before=before: (
                    len(fake_anthropic.message_requests) > before  # type: ignore[misc]
                    or bool(fake_slack.ephemerals)
                )
            )
            if fake_slack.ephemerals:
                break
            await bot.wait_for_usage(before + 1)
        answered = len(fake_anthropic.message_requests)
        rows = await bot.usage()
        report = await usage(bot, fake_slack, "today", "U0ADMIN")

    # Fable's dearest known 5-minute write is $12.50: 2,000 × 12.5 + 10 × 8 + 400 × 40.
    assert {r.cost_micros for r in rows} == {None}
    assert {r.estimate_micros for r in rows} == {25_000 + 80 + 16_000}
    assert fake_slack.ephemerals, "the budget never refused"
    assert (
        "would pass the workspace's daily Claude budget" in fake_slack.ephemerals[0].params["text"]
    )
    # Each counts 41,080 µ$ and may cost up to ~106,000 (2,348 tokens at $40, ×1.1 for a
    # region that may cost more): after five, 205,400 + 106,000 would pass $0.30.
    assert answered == 5
    assert "estimated" in report


def test_the_worst_case_includes_the_long_prompt_tier_and_the_cache_write_premium() -> None:
    # Before: 17,000 µ$ estimated for a request that cost 85,000 µ$.
    prices = load_price_table()
    worst = prices.worst_case("claude-haiku-5-5", 150_000, 4_000, cache_write_1h=False)
    assert worst == round((150_000 * 0.625 + 4_000 * 2.50) * 1.1)
