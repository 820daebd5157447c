"""Channel memory: a new question knows the channel's recent exchanges, until a reset."""

from __future__ import annotations

from bot.config import Settings
from bot.slack.text import RESET_DONE
from bot.store import Place
from tests.fakes.anthropic import FakeAnthropic, Reply
from tests.fakes.slack import FakeSlack
from tests.rig import CHANNEL, TEAM_ID, conversation, make_settings, start_bot, text_of


def contents(fake: FakeAnthropic, index: int) -> list[str]:
    return [m["content"] for m in conversation(fake.message_requests[index].body)]


async def test_top_level_mentions_share_the_channel_memory_until_reset(
    settings: Settings, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.enqueue(
        Reply(text="Noted, the deploy is on Friday."),
        Reply(text="You told me the deploy is on Friday."),
        Reply(text="I don't know."),
    )
    async with start_bot(settings) as bot:
        first = await bot.mention("Remember: the deploy is on Friday.")
        await bot.wait_for_usage(1)
        await bot.mention("What did I tell you earlier?")
        await bot.wait_for_usage(2)
        reset = await bot.command("/ask", "reset")
        await bot.mention("When is the deploy?")
        await bot.wait_for_usage(3)
        # The old turns are kept in the store (for the ledger), only no longer sent.
        kept = await bot.running.store.thread_turns(Place(TEAM_ID, CHANNEL, first.ts))

    assert contents(fake_anthropic, 1) == [
        "<@U0USER>: Remember: the deploy is on Friday.",
        "Noted, the deploy is on Friday.",
        "<@U0USER>: What did I tell you earlier?",
    ]
    assert reset.body == RESET_DONE
    assert contents(fake_anthropic, 2) == ["<@U0USER>: When is the deploy?"]
    assert [t.text for t in kept] == [
        "Remember: the deploy is on Friday.",
        "Noted, the deploy is on Friday.",
    ]


async def test_channel_memory_is_bounded_by_the_setting(
    fake_slack: FakeSlack, fake_anthropic: FakeAnthropic, database_url: str
) -> None:
    settings = make_settings(fake_slack, fake_anthropic, database_url, channel_memory_turns=2)
    async with start_bot(settings) as bot:
        for i in range(3):
            await bot.mention(f"question {i}")
            await bot.wait_for_usage(i + 1)

    # Only the latest 2 turns of the channel (question 1 and its answer) come along.
    assert contents(fake_anthropic, 2) == [
        "<@U0USER>: question 1",
        "Hello from the fake Claude.",
        "<@U0USER>: question 2",
    ]


async def test_several_people_in_a_thread_are_told_apart(
    settings: Settings, fake_anthropic: FakeAnthropic
) -> None:
    async with start_bot(settings) as bot:
        first = await bot.mention("I prefer tabs.", user="U0ALICE")
        await bot.wait_for_usage(1)
        await bot.mention(
            "And I prefer spaces. Who prefers what?", user="U0BOB", thread_ts=first.ts
        )
        await bot.wait_for_usage(2)

    request = fake_anthropic.message_requests[1].body
    assert contents(fake_anthropic, 1) == [
        "<@U0ALICE>: I prefer tabs.",
        "Hello from the fake Claude.",
        "<@U0BOB>: And I prefer spaces. Who prefers what?",
    ]
    assert "Several people may take part" in text_of(request["system"])


async def test_unanswered_questions_of_other_threads_are_not_context(
    settings: Settings, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.enqueue(
        Reply(text="Noted."),
        Reply(fault="midstream_error", fault_after=0),  # fails before any text
        Reply(text="Fine."),
    )
    async with start_bot(settings) as bot:
        await bot.mention("Remember: the deploy is on Friday.")
        await bot.wait_for_usage(1)
        await bot.mention("Please delete the production database.")
        await bot.wait_for_usage(2)
        await bot.mention("When is the deploy?", user="U0OTHER")
        await bot.wait_for_usage(3)

    # The failed question is not glued onto the next person's; exchanges alternate cleanly.
    assert contents(fake_anthropic, 2) == [
        "<@U0USER>: Remember: the deploy is on Friday.",
        "Noted.",
        "<@U0OTHER>: When is the deploy?",
    ]
