"""Claude sees what people see: a thread's messages read from Slack once, kept, and sent in
order with the bot's own turns; bounded reads; a failed read never fails the answer."""

from __future__ import annotations

import asyncio

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from bot.config import Settings
from bot.slack.history import Me, Read, ThreadHistory
from bot.store import Place, Store, make_engine, make_sessionmaker
from bot.store.migrate import upgrade
from tests.fakes.anthropic import FakeAnthropic, Reply
from tests.fakes.slack import FakeSlack
from tests.rig import CHANNEL, TEAM_ID, conversation, make_settings, start_bot


def just_before(ts: str) -> str:
    seconds, micros = ts.split(".")
    value = int(seconds) * 1_000_000 + int(micros) - 1
    return f"{value // 1_000_000}.{value % 1_000_000:06d}"


def sent_text(fake_anthropic: FakeAnthropic, index: int = -1) -> str:
    body = fake_anthropic.message_requests[index].body
    return "\n".join(m["content"] for m in conversation(body))


async def test_a_summary_of_a_discussion_sees_every_person_in_order(
    settings: Settings, fake_slack: FakeSlack, fake_anthropic: FakeAnthropic
) -> None:
    fake_slack.users.update(
        {
            "U0ANA": {"profile": {"display_name": "Ana"}},
            "U0BEN": {"profile": {"display_name": "Ben"}},
            "U0CY": {"profile": {"display_name": "Cy"}},
        }
    )
    parent = fake_slack.add_message(CHANNEL, "Plan: ship on Friday?", user="U0ANA")
    fake_slack.add_message(CHANNEL, "Friday is tight; Monday.", user="U0BEN", thread_ts=parent)
    fake_slack.add_message(
        CHANNEL, "Monday it is, with a beta on Thursday.", user="U0CY", thread_ts=parent
    )
    fake_slack.add_message(
        CHANNEL, "Release notes bot here", bot_id="B0NOTES", bot_name="notes", thread_ts=parent
    )
    fake_anthropic.enqueue(Reply(text="You decided: Monday, beta Thursday."), Reply(text="Yes."))
    async with start_bot(settings) as bot:
        mention = await bot.mention("summarise what we decided", user="U0ANA", thread_ts=parent)
        await bot.wait_for_usage(1)
        fake_slack.add_message(CHANNEL, "And who writes the notes?", user="U0BEN", thread_ts=parent)
        await bot.mention("did Ben ask something?", user="U0ANA", thread_ts=parent)
        await bot.wait_for_usage(2)
        turns = await bot.running.store.thread_turns(Place(TEAM_ID, CHANNEL, parent))

    first = sent_text(fake_anthropic, 0)
    order = [
        "Ana (<@U0ANA>): Plan: ship on Friday?",
        "Ben (<@U0BEN>): Friday is tight; Monday.",
        "Cy (<@U0CY>): Monday it is, with a beta on Thursday.",
        "notes (an app): Release notes bot here",
        "<@U0ANA>: summarise what we decided",
    ]
    positions = [first.index(line) for line in order]
    assert positions == sorted(positions)
    # The second question reads only from where the first read stopped (just before the
    # first question), and the bot's own reply is its stored turn, never read back.
    reads = fake_slack.calls_to("conversations.replies")
    assert len(reads) == 2
    assert "oldest" not in reads[0].params
    assert reads[1].params["oldest"] == just_before(mention.ts)
    second = sent_text(fake_anthropic, 1)
    assert second.count("You decided: Monday, beta Thursday.") == 1
    assert second.count("Plan: ship on Friday?") == 1
    assert "Ben (<@U0BEN>): And who writes the notes?" in second
    assert [t.author_name for t in turns if t.author_name] == [
        "Ana",
        "Ben",
        "Cy",
        "notes (an app)",
        "Ben",
    ]


async def test_memory_of_the_thread_survives_a_restart_without_reading_it_again(
    settings: Settings, fake_slack: FakeSlack, fake_anthropic: FakeAnthropic
) -> None:
    parent = fake_slack.add_message(CHANNEL, "The budget is 40k.", user="U0ANA")
    async with start_bot(settings) as bot:
        await bot.mention("note that", thread_ts=parent)
        await bot.wait_for_usage(1)
    async with start_bot(settings) as bot:
        await bot.mention("what was the budget?", thread_ts=parent)
        await bot.wait_for_usage(2)

    assert "The budget is 40k." in sent_text(fake_anthropic, 1)
    assert sent_text(fake_anthropic, 1).count("The budget is 40k.") == 1
    first_read, second_read = (c.params for c in fake_slack.calls_to("conversations.replies"))
    # The read mark is in the database: after the restart only newer messages are read.
    assert "oldest" not in first_read
    assert second_read["oldest"] == just_before(first_read["latest"])


async def test_a_500_message_thread_is_read_in_bounded_pages(
    fake_slack: FakeSlack, fake_anthropic: FakeAnthropic, database_url: str
) -> None:
    settings = make_settings(fake_slack, fake_anthropic, database_url, thread_history_messages=50)
    parent, _replies = fake_slack.add_thread(CHANNEL, 500, users=["U0ANA", "U0BEN"])
    async with start_bot(settings) as bot:
        await bot.mention("--short what is the latest?", thread_ts=parent)
        await bot.wait_for_usage(1)
        turns = await bot.running.store.thread_turns(Place(TEAM_ID, CHANNEL, parent))

    reads = fake_slack.calls_to("conversations.replies")
    assert [int(r.params["limit"]) for r in reads] == [50] * len(reads)
    assert len(reads) <= 20  # at most READ_CAP (1,000) messages read, never the whole thread
    context = [t for t in turns if t.author_name]
    assert len(context) == 50  # the thread's first message and the newest 49
    sent = sent_text(fake_anthropic)
    assert "message 0" in sent and "message 500" in sent and "message 400" not in sent


async def test_a_failed_history_read_never_fails_the_answer(
    settings: Settings, fake_slack: FakeSlack, fake_anthropic: FakeAnthropic
) -> None:
    parent = fake_slack.add_message(CHANNEL, "Some plan", user="U0ANA")
    fake_slack.fail_next("conversations.replies", "internal_error", status=500)
    fake_anthropic.enqueue(Reply(text="Answered anyway."))
    async with start_bot(settings) as bot:
        mention = await bot.mention("summarise", thread_ts=parent)
        await bot.wait_for_usage(1)
        await fake_slack.wait_for(lambda: bool(fake_slack.ephemerals))

        # The next question reads what the failed read could not: no gap is left.
        fake_anthropic.enqueue(Reply(text="Now with the plan."))
        await bot.mention("and now?", thread_ts=parent)
        await bot.wait_for_usage(2)

    assert fake_slack.thread_text(CHANNEL, parent)[0] == "Answered anyway."
    assert "Some plan" not in sent_text(fake_anthropic, 0)
    assert "Some plan" in sent_text(fake_anthropic, 1)
    [note] = fake_slack.ephemerals
    assert "couldn't read this thread's earlier messages" in note.params["text"]
    assert note.params["thread_ts"] == parent
    assert mention.delivery.status == 200


async def test_a_commercially_distributed_app_reads_15_messages_once_a_minute(
    fake_slack: FakeSlack, fake_anthropic: FakeAnthropic, database_url: str
) -> None:
    settings = make_settings(
        fake_slack, fake_anthropic, database_url, slack_commercial_distribution=True
    )
    fake_slack.replies_limits = (1, 15)
    parent, _replies = fake_slack.add_thread(CHANNEL, 40)
    async with start_bot(settings) as bot:
        await bot.mention("--short first", thread_ts=parent)
        await bot.wait_for_usage(1)
        await bot.mention("--short second, a moment later", thread_ts=parent)
        await bot.wait_for_usage(2)
        await fake_slack.wait_for(lambda: bool(fake_slack.ephemerals))

    reads = fake_slack.calls_to("conversations.replies")
    assert len(reads) == 1 and int(reads[0].params["limit"]) == 15
    assert all(call.status == 200 for call in reads)  # never a 429 from Slack
    assert "once a minute" in fake_slack.ephemerals[0].params["text"]


@pytest.mark.both_databases
async def test_a_limited_read_takes_up_where_it_stopped_a_minute_later(
    fake_slack: FakeSlack, database_url: str
) -> None:
    # Slack's limit for commercially distributed apps: 15 messages a read, a read a minute.
    # What one read leaves out is read by the next, never skipped for good.
    await asyncio.to_thread(upgrade, database_url)
    engine = make_engine(database_url)
    now = [1_000.0]
    store = Store(make_sessionmaker(engine))
    slack = AsyncWebClient(token="xoxb-test", base_url=fake_slack.api_url)
    history = ThreadHistory(slack, store, keep=200, commercial=True, clock=lambda: now[0])
    parent, replies = fake_slack.add_thread(CHANNEL, 40)
    place = Place(TEAM_ID, CHANNEL, parent)
    question = fake_slack.add_message(CHANNEL, "summarise", thread_ts=parent)
    me = Me("U0BOT", "B0BOT")
    try:
        assert await history.catch_up(place, before=question, me=me) is Read.READ
        assert await history.catch_up(place, before=question, me=me) is Read.LIMITED
        now[0] += 61
        assert await history.catch_up(place, before=question, me=me) is Read.READ
        now[0] += 61
        assert await history.catch_up(place, before=question, me=me) is Read.READ
        turns = await store.thread_turns(place)
    finally:
        await engine.dispose()

    assert [int(c.params["limit"]) for c in fake_slack.calls_to("conversations.replies")] == [
        15,
        15,
        15,
    ]
    # All 41 in order, none twice.
    assert [t.text for t in turns] == [f"message {i}" for i in range(41)]
    assert len(replies) == 40


async def test_a_message_being_answered_is_not_stored_again_as_context(
    settings: Settings, fake_slack: FakeSlack, fake_anthropic: FakeAnthropic
) -> None:
    # Two follow-ups at once: the second one's read sees the first question before that
    # question's own turn is written. It must not become a context turn as well.
    fake_anthropic.enqueue(Reply(text="First."))
    async with start_bot(settings) as bot:
        first = await bot.mention("Hello?")
        await bot.wait_for_usage(1)
        fake_anthropic.enqueue(Reply(text="slow", delay=0.05, chunks=["s"] * 10), Reply(text="b"))
        await bot.say_in_thread("question A", thread_ts=first.ts)
        await bot.say_in_thread("question B", thread_ts=first.ts)
        await bot.wait_for_usage(3)
        turns = await bot.running.store.thread_turns(Place(TEAM_ID, CHANNEL, first.ts))

    texts = [t.text for t in turns]
    assert texts.count("question A") == 1 and texts.count("question B") == 1
