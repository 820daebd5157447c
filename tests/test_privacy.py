"""Privacy: forgetting a thread or a channel on request, and a retention period; the ledger
keeps only its numbers."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select, update

from bot.store import make_engine
from bot.store.models import Turn, UsageRecord, utcnow
from tests.fakes.anthropic import FakeAnthropic, Reply
from tests.fakes.slack import FakeSlack
from tests.rig import CHANNEL, make_settings, settle, start_bot
from tests.test_channel_settings import ADMIN, an_admin, command  # noqa: F401 - a fixture


async def counts(database_url: str) -> tuple[int, int]:
    engine = make_engine(database_url)
    try:
        async with engine.connect() as conn:
            turns = await conn.scalar(select(func.count()).select_from(Turn))
            ledger = await conn.scalar(select(func.count()).select_from(UsageRecord))
    finally:
        await engine.dispose()
    return int(turns or 0), int(ledger or 0)


async def test_forget_in_a_thread_deletes_that_thread_and_keeps_the_numbers(
    fake_slack: FakeSlack, fake_anthropic: FakeAnthropic, database_url: str
) -> None:
    fake_anthropic.enqueue(Reply(text="Kept."), Reply(text="Forgotten."))
    async with start_bot(make_settings(fake_slack, fake_anthropic, database_url)) as bot:
        kept = await bot.mention("a question to keep")
        await bot.wait_for_usage(1)
        gone = await bot.mention("a secret question")
        await bot.wait_for_usage(2)
        assert await counts(database_url) == (4, 2)
        await bot.mention("forget", thread_ts=gone.ts)
        await fake_slack.wait_for(lambda: bool(fake_slack.ephemerals))
        turns, ledger = await counts(database_url)

    assert (turns, ledger) == (2, 2)
    [note] = fake_slack.ephemerals
    assert note.params["thread_ts"] == gone.ts
    assert "I deleted what I had stored of this thread (2 messages)" in note.params["text"]
    assert len(fake_anthropic.message_requests) == 2  # "forget" is not a question
    assert fake_slack.thread_text(CHANNEL, kept.ts) == ["Kept."]


async def test_only_admins_make_the_bot_forget_a_whole_channel(
    fake_slack: FakeSlack, fake_anthropic: FakeAnthropic, database_url: str
) -> None:
    fake_anthropic.enqueue(Reply(text="One."))
    async with start_bot(make_settings(fake_slack, fake_anthropic, database_url)) as bot:
        await bot.mention("hello")
        await bot.wait_for_usage(1)
        refused = await command(bot, fake_slack, "forget")
        assert await counts(database_url) == (2, 1)
        done = await command(bot, fake_slack, "forget", user_id=ADMIN)

    assert refused.startswith("Only workspace admins can make me forget a whole channel")
    assert "of this channel (2 messages)" in done
    assert await counts(database_url) == (0, 1)


async def test_conversation_text_older_than_the_retention_period_is_deleted(
    fake_slack: FakeSlack, fake_anthropic: FakeAnthropic, database_url: str
) -> None:
    fake_anthropic.enqueue(Reply(text="Old."), Reply(text="New."))
    settings = make_settings(
        fake_slack, fake_anthropic, database_url, retention_days=30, recovery_after_seconds=0.3
    )
    async with start_bot(settings) as bot:
        await bot.mention("an old question")
        await bot.wait_for_usage(1)
        engine = make_engine(database_url)
        try:
            async with engine.begin() as conn:
                await conn.execute(update(Turn).values(created_at=utcnow() - timedelta(days=31)))
        finally:
            await engine.dispose()
        await bot.mention("a new question")
        await bot.wait_for_usage(2)
        # A fresh process sweeps at start; this one sweeps once an hour at most.
    async with start_bot(settings) as bot:
        await settle(0.5)
        turns, ledger = await counts(database_url)

    assert (turns, ledger) == (2, 2)


async def test_one_persons_dms_are_never_context_for_anyone_else(
    fake_slack: FakeSlack, fake_anthropic: FakeAnthropic, database_url: str
) -> None:
    fake_anthropic.enqueue(Reply(text="Noted."), Reply(text="Hello Bob."), Reply(text="Yes."))
    async with start_bot(make_settings(fake_slack, fake_anthropic, database_url)) as bot:
        await bot.dm("my salary is 123456", user="U0ALICE", channel="D0ALICE")
        await bot.wait_for_usage(1)
        await bot.dm("hello, what do you know?", user="U0BOB", channel="D0BOB")
        await bot.wait_for_usage(2)
        # Alice's own DM still remembers her conversation.
        await bot.dm("what did I tell you?", user="U0ALICE", channel="D0ALICE")
        await bot.wait_for_usage(3)

    alice, bob, alice_again = fake_anthropic.message_requests
    assert "123456" not in str(bob.body["messages"])
    assert "123456" in str(alice_again.body["messages"])
    assert "123456" in str(alice.body["messages"])
