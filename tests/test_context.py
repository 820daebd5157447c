"""The context budget: newest turns first, exact counts near the limit, never over the window."""

from __future__ import annotations

from bot.engine.context import OMITTED_NOTE, budget_for
from bot.store import Place
from tests.fakes.anthropic import COUNT_TOKENS_PATH, FakeAnthropic, Reply, estimate_tokens
from tests.fakes.slack import FakeSlack
from tests.rig import CHANNEL, TEAM_ID, conversation, make_settings, start_bot, text_of

WINDOW = 4000
MAX_TOKENS = 500
MODEL = "claude-haiku-4-5"


async def test_long_history_is_trimmed_to_the_budget(
    fake_slack: FakeSlack, fake_anthropic: FakeAnthropic, database_url: str
) -> None:
    settings = make_settings(
        fake_slack,
        fake_anthropic,
        database_url,
        claude_context_window=WINDOW,
        claude_max_tokens=MAX_TOKENS,
        max_tokens_long=2000,  # a long answer must leave the small window room for a question
        # A model that does not think: max_tokens is the answer's alone, as budgeted here.
        claude_model=MODEL,
        channel_memory_turns=0,
    )
    budget = budget_for(WINDOW, MAX_TOKENS)
    paragraph = ("lorem ipsum dolor sit amet " * 40).strip()  # ~1,080 chars, ~270 fake tokens
    async with start_bot(settings) as bot:
        first = await bot.mention(f"turn 0 {paragraph}")
        await bot.wait_for_usage(1)
        for i in range(1, 12):
            fake_anthropic.enqueue(Reply(text=f"answer {i} {paragraph}", output_tokens=300))
            await bot.mention(f"turn {i} {paragraph}", thread_ts=first.ts)
            await bot.wait_for_usage(i + 1)
        turns = await bot.running.store.thread_turns(Place(TEAM_ID, CHANNEL, first.ts))

    last = fake_anthropic.message_requests[-1].body
    sent = conversation(last)
    # The newest question is last and whole; older turns were left out, and Claude is told.
    assert sent[-1]["content"] == f"<@U0USER>: turn 11 {paragraph}"
    assert sent[0]["role"] == "user"
    assert len(sent) < len(turns) - 1
    assert text_of(last["system"]).endswith(OMITTED_NOTE)
    # Every request fits the budget by the (fake) API's own count.
    assert all(estimate_tokens(r.body) <= budget for r in fake_anthropic.message_requests)
    # Near the limit, the exact count was asked for.
    assert any(r.path == COUNT_TOKENS_PATH for r in fake_anthropic.requests)


async def test_a_question_too_long_for_the_window_gets_a_clear_message(
    fake_slack: FakeSlack, fake_anthropic: FakeAnthropic, database_url: str
) -> None:
    settings = make_settings(
        fake_slack,
        fake_anthropic,
        database_url,
        claude_context_window=WINDOW,
        claude_max_tokens=MAX_TOKENS,
        max_tokens_long=2000,  # a long answer must leave the small window room for a question
        # A model that does not think: max_tokens is the answer's alone, as budgeted here.
        claude_model=MODEL,
    )
    async with start_bot(settings) as bot:
        mention = await bot.mention("word " * 4000)
        await fake_slack.wait_for(lambda: bool(fake_slack.ephemerals))
        assert await bot.usage() == []

    # Only the asker is told; nothing is posted in the channel and no model call is made.
    [note] = fake_slack.ephemerals
    assert note.params["user"] == "U0USER"
    assert "Your message is too long for me to read at once" in note.params["text"]
    assert fake_slack.thread(CHANNEL, mention.ts) == []
    assert fake_anthropic.message_requests == []
