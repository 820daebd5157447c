"""Claude failures show in Slack as a short plain note; partial text is kept; the bot serves on."""

from __future__ import annotations

from typing import Any

import pytest

from bot.config import Settings
from bot.store import Place
from tests.fakes.anthropic import FakeAnthropic, Reply
from tests.fakes.slack import FakeSlack
from tests.rig import CHANNEL, TEAM_ID, make_settings, start_bot

FAST_RETRY = {"retry-after-ms": "1"}
PARTIAL = ["The answer ", "starts ", "here "]

# name: (scripted replies, settings overrides, words the note must contain, partial text kept)
CASES: dict[str, tuple[list[Reply], dict[str, Any], str, bool]] = {
    "overloaded": ([Reply(status=529, headers=FAST_RETRY)] * 3, {}, "overloaded", False),
    "rate_limited": ([Reply(status=429, headers=FAST_RETRY)] * 3, {}, "rate limit", False),
    "authentication": ([Reply(status=401)], {}, "API key", False),
    "timeout": (
        [Reply(first_byte_delay=1.5)],
        {"anthropic_timeout": 0.3, "anthropic_max_retries": 0},
        "took too long",
        False,
    ),
    "dropped": (
        [Reply(chunks=[*PARTIAL, "never"], fault="drop", fault_after=3)],
        {},
        "dropped",
        True,
    ),
    "cut_off": (
        [Reply(chunks=[*PARTIAL, "never"], fault="eof", fault_after=3)],
        {},
        "cut off",
        True,
    ),
    "garbled_event": (
        [Reply(chunks=[*PARTIAL, "never"], fault="garbage", fault_after=3)],
        {},
        "dropped",
        True,
    ),
    "midstream_error": (
        [Reply(chunks=[*PARTIAL, "never"], fault="midstream_error", fault_after=3)],
        {},
        "overloaded",
        True,
    ),
}


@pytest.mark.parametrize("case", list(CASES))
async def test_failure_leaves_a_readable_note_and_next_mention_works(
    case: str,
    fake_slack: FakeSlack,
    fake_anthropic: FakeAnthropic,
    database_url: str,
) -> None:
    replies, overrides, note_words, keeps_partial = CASES[case]
    settings: Settings = make_settings(fake_slack, fake_anthropic, database_url, **overrides)
    fake_anthropic.enqueue(*replies, Reply(text="All good now."))
    async with start_bot(settings) as bot:
        failed = await bot.mention("Tell me something")
        [row] = await bot.wait_for_usage(1, timeout=15)
        after = await bot.mention("Try again")
        rows = await bot.wait_for_usage(2, timeout=15)
        turns = await bot.running.store.thread_turns(Place(TEAM_ID, CHANNEL, failed.ts))

    [reply] = fake_slack.thread_text(CHANNEL, failed.ts)
    assert note_words in reply
    assert "⚠️" in reply
    for leak in ("Traceback", "Error:", "Exception", "httpx", "anthropic."):
        assert leak not in reply
    if keeps_partial:
        assert reply.startswith("".join(PARTIAL).strip())
        assert "never" not in reply
        assert row.outcome == "partial"
        assert turns[-1].outcome == "partial"
        assert turns[-1].text == "".join(PARTIAL)
        # The usage the stream reported before it broke is kept (input from message_start).
        assert row.input_tokens > 0
    else:
        assert reply.startswith("⚠️")
        assert row.outcome == "error"
        assert turns[-1].outcome == "error"
    assert row.error_kind
    # The bot keeps serving: the next mention gets a whole answer.
    assert fake_slack.thread_text(CHANNEL, after.ts) == ["All good now."]
    assert rows[1].outcome == "complete"


async def test_retries_are_recorded_once_in_the_ledger(
    settings: Settings, fake_slack: FakeSlack, fake_anthropic: FakeAnthropic
) -> None:
    # The SDK retries a 529 before any text arrives; the user sees only the answer.
    fake_anthropic.enqueue(Reply(status=529, headers=FAST_RETRY), Reply(text="Made it."))
    async with start_bot(settings) as bot:
        mention = await bot.mention("Hello")
        [row] = await bot.wait_for_usage(1)

    assert len(fake_anthropic.message_requests) == 2
    assert fake_slack.thread_text(CHANNEL, mention.ts) == ["Made it."]
    assert row.outcome == "complete"
