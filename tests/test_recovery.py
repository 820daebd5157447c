"""Recovery knows which process owns a turn: live turns of any surface are never closed, a
dead owner's turns are closed by a live process, and a finished turn's usage is never lost."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
from sqlalchemy import select, update

from bot.store import Scope, make_engine, make_sessionmaker
from bot.store.models import Process, Turn, utcnow
from tests.fakes.anthropic import FakeAnthropic, Reply
from tests.fakes.slack import FakeSlack
from tests.rig import make_settings, start_bot

TOKEN = "chat-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SLOW = Reply(chunks=[f"w{i} " for i in range(12)], delay=0.25, input_tokens=5000, output_tokens=40)


async def ask_chat(url: str, message: str, **extra: Any) -> dict[str, Any]:
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{url}/chat", json={"message": message, **extra}, headers=AUTH) as response,
    ):
        assert response.status == 200
        body: dict[str, Any] = await response.json()
        return body


async def make_owner_look_dead(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        async with make_sessionmaker(engine)() as session, session.begin():
            await session.execute(update(Process).values(beat_at=utcnow() - timedelta(hours=1)))
    finally:
        await engine.dispose()


async def turns(database_url: str) -> list[Turn]:
    engine = make_engine(database_url)
    try:
        async with make_sessionmaker(engine)() as session:
            return list((await session.scalars(select(Turn).order_by(Turn.id))).all())
    finally:
        await engine.dispose()


@pytest.mark.parametrize("stream", [False, True])
async def test_a_live_chat_turn_is_never_closed_by_another_process(
    fake_slack: FakeSlack, fake_anthropic: FakeAnthropic, database_url: str, stream: bool
) -> None:
    quick = {"recovery_after_seconds": 1, "chat_api_token": TOKEN}
    settings = make_settings(fake_slack, fake_anthropic, database_url, **quick)
    fake_anthropic.enqueue(SLOW)
    async with start_bot(settings) as first:
        request = asyncio.create_task(
            first.http.post(
                f"{first.url}/chat", json={"message": "go", "stream": stream}, headers=AUTH
            )
        )
        await fake_anthropic.wait_for_requests(1)
        # A second process starts and sweeps for orphans, several times, while the turn streams.
        async with start_bot(make_settings(fake_slack, fake_anthropic, database_url, **quick)):
            await asyncio.sleep(2)
        response = await request
        text = await response.text()
        rows = await first.wait_for_usage(1)

    assert "w11" in text
    [row] = rows
    assert (row.outcome, row.error_kind) == ("complete", None)
    assert (row.input_tokens, row.output_tokens) == (5000, 40)


async def test_a_dead_owners_turn_is_closed_and_its_real_usage_replaces_the_guess(
    fake_slack: FakeSlack, fake_anthropic: FakeAnthropic, database_url: str
) -> None:
    settings = make_settings(fake_slack, fake_anthropic, database_url, chat_api_token=TOKEN)
    fake_anthropic.enqueue(SLOW)
    async with start_bot(settings) as first:
        request = asyncio.create_task(ask_chat(first.url, "go", conversation_id="c1"))
        await fake_anthropic.wait_for_requests(1)
        await asyncio.sleep(1.2)  # a progress save or two
        # The owner's heartbeat stops reaching the database (it is alive, but looks dead).
        await make_owner_look_dead(database_url)
        second_settings = make_settings(
            fake_slack, fake_anthropic, database_url, chat_api_token=TOKEN
        )
        async with start_bot(second_settings) as second:
            [closed] = await second.wait_for_usage(1)
            assert (closed.outcome, closed.error_kind) == ("partial", "interrupted")
        body = await request
        rows = await first.usage()
        day = rows[0].day
        sums = await first.running.ledger.grouped(Scope(day, "9999-12-31"), "total")
        [reply] = [t for t in await turns(database_url) if t.role == "assistant"]

    # The real result arrived after all: one row, with what the request really used.
    assert body["reply"].strip().endswith("w11")
    [row] = rows
    assert (row.outcome, row.error_kind) == ("complete", None)
    assert (row.input_tokens, row.output_tokens) == (5000, 40)
    assert (reply.outcome, reply.text) == ("complete", body["reply"])
    # The daily sums the reports and budgets read were corrected with it.
    [(_, total)] = sums
    assert (total.requests, total.output_tokens, total.partial_requests) == (1, 40, 0)
    assert total.cost_micros == row.cost_micros


async def test_a_dead_processs_heartbeat_row_is_removed(
    fake_slack: FakeSlack, fake_anthropic: FakeAnthropic, database_url: str
) -> None:
    settings = make_settings(fake_slack, fake_anthropic, database_url)
    async with start_bot(settings):
        pass  # creates the schema; a clean exit leaves no row
    engine = make_engine(database_url)
    sessions = make_sessionmaker(engine)
    long_ago = utcnow() - timedelta(hours=1)
    async with sessions() as session, session.begin():
        session.add(
            Process(id="gone", host="elsewhere", pid=1, started_at=long_ago, beat_at=long_ago)
        )
    async with start_bot(settings) as bot:
        async with sessions() as session:
            ids = set((await session.scalars(select(Process.id))).all())
        assert ids == {bot.running.recovery.owner}
    await engine.dispose()
