"""Deadlines: for the first words, for silence mid-stream, and for the whole answer."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fakes.anthropic import FakeAnthropic, Reply
from tests.fakes.slack import FakeSlack
from tests.rig import CHANNEL, make_settings, start_bot

CASES: dict[str, tuple[Reply, dict[str, Any], bool]] = {
    # name: (the fake's answer, settings, text before the deadline)
    "first token": (Reply(first_byte_delay=2.0), {"claude_first_token_seconds": 0.4}, False),
    "stall": (
        Reply(chunks=["quick ", "then ", "silence"], delay=1.5),
        {"claude_stall_seconds": 0.5},
        True,
    ),
    "overall": (
        Reply(chunks=[f"w{i} " for i in range(40)], delay=0.1),
        {"claude_deadline_seconds": 1.0, "claude_stall_seconds": 5},
        True,
    ),
}


@pytest.mark.parametrize("case", list(CASES))
async def test_a_deadline_ends_the_reply_with_a_note_and_bills_what_was_used(
    case: str, fake_slack: FakeSlack, fake_anthropic: FakeAnthropic, database_url: str
) -> None:
    reply, overrides, has_text = CASES[case]
    settings = make_settings(
        fake_slack, fake_anthropic, database_url, anthropic_max_retries=0, **overrides
    )
    fake_anthropic.enqueue(reply, Reply(text="Back to normal."))
    async with start_bot(settings) as bot:
        mention = await bot.mention("go")
        [row] = await bot.wait_for_usage(1, timeout=10)
        after = await bot.mention("again")
        await bot.wait_for_usage(2, timeout=10)

    [shown] = fake_slack.thread_text(CHANNEL, mention.ts)
    assert "Claude took too long to answer" in shown
    assert row.error_kind == "timeout"
    assert row.outcome == ("partial" if has_text else "error")
    assert row.latency_ms < 3000
    if has_text:
        assert shown.startswith(("quick", "w0"))
        assert row.output_tokens >= 1
    assert fake_slack.thread_text(CHANNEL, after.ts) == ["Back to normal."]
