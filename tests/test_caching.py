"""Prompt caching: the stable part of a conversation is marked, and later turns read it."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from bot.config import Settings
from tests.fakes.anthropic import FakeAnthropic
from tests.rig import start_bot


def marks(body: dict[str, object]) -> list[str]:
    """Where the request carries cache_control: "system" and/or "message N"."""
    found = []
    for block in body["system"]:  # type: ignore[union-attr]
        if "cache_control" in block:
            found.append("system")
    for i, message in enumerate(body["messages"]):  # type: ignore[arg-type]
        content = message["content"]
        if isinstance(content, list) and any("cache_control" in b for b in content):
            found.append(f"message {i}")
    return found


async def test_cache_marks_and_cache_reads_flow_into_the_cost(
    settings: Settings, fake_anthropic: FakeAnthropic
) -> None:
    async with start_bot(settings) as bot:
        first = await bot.mention("Tell me about caching.")
        await bot.wait_for_usage(1)
        await bot.mention("And the second turn?", thread_ts=first.ts)
        await bot.wait_for_usage(2)
        await bot.mention("And a third?", thread_ts=first.ts)
        rows = await bot.wait_for_usage(3)

    bodies = [r.body for r in fake_anthropic.message_requests]
    # The system prompt always; then the last message before the newest question.
    assert marks(bodies[0]) == ["system"]
    assert marks(bodies[1]) == ["system", "message 1"]
    assert marks(bodies[2]) == ["system", "message 3"]
    assert all(m["cache_control"] == {"type": "ephemeral"} for m in bodies[0]["system"])
    # Turn 1 writes the system prompt; turn 2 reads it and writes the first exchange;
    # turn 3 reads all of that.
    assert rows[0].cache_write_5m_tokens > 0
    assert rows[0].cache_read_tokens == 0
    assert rows[1].cache_read_tokens == rows[0].cache_write_5m_tokens
    assert rows[2].cache_read_tokens == rows[1].cache_read_tokens + rows[1].cache_write_5m_tokens
    # Reads are priced at $0.20 per million (Sonnet 5.5), writes at $2.50, input at $2.
    for row in rows:
        expected = (
            row.input_tokens * 2
            + row.output_tokens * 10
            + row.cache_write_5m_tokens * Decimal("2.5")
            + row.cache_read_tokens * Decimal("0.2")
        )
        assert row.cost_micros == int(expected.quantize(Decimal(1), ROUND_HALF_UP))
    assert rows[2].cache_savings_micros is not None
    assert rows[2].cache_savings_micros > 0
